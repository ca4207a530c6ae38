"""``overlaysim report --trace``: the copy-up timeline of a replay, checked in Chromium against
``overlaysim replay --json`` and the upper layer against a real overlay mount doing the same
calls; hostile file names stay text."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.world_opt import ENVVAR
from overlaysim.report.escape import display
from tests.report.browser import Cdp, dump_dom, parse

HEADER = {"format": "overlaysim-trace", "version": 1, "source": "test"}
HOSTILE = "<img src=x onerror=alert(1)>"
QUOTES = "q\"u'o&amp;te"
BADBYTE = "bad\udcffname"  # the byte 0xff, as os.fsdecode gives it
W, A, RMDIR = os.O_WRONLY, os.O_APPEND, 0x200


def _lower(tmp: Path) -> Path:
    low = tmp / "lower"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "conf").write_text("a=1\n" * 1000)
    (low / "bin").mkdir()
    (low / "bin" / "tool").write_text("#!/bin/sh\n")
    (low / "bin" / "old").write_text("old\n")
    (low / "d").mkdir()
    for name in (HOSTILE, QUOTES, BADBYTE):
        with open(os.fsencode(low / name), "w") as f:
            f.write(name.encode("utf-8", "surrogateescape").hex())
    return low


# (op record, what the kernel side does on the real merged dir)
def _ops() -> list[dict[str, Any]]:
    return [
        {"op": "open", "path": "/etc/conf", "flags": W | A, "ret": 3},
        {"op": "write", "fd": 3, "size": 4, "data": b"b=2\n".hex(), "ret": 4},
        {"op": "close", "fd": 3, "ret": 0},
        {"op": "chmod", "path": "/bin/tool", "mode": 0o755, "ret": 0},
        {"op": "unlink", "path": "/bin/old", "ret": 0},
        {"op": "unlink", "path": "/d", "flags": RMDIR, "ret": 0, "call": "rmdir"},
        {"op": "mkdir", "path": "/d", "mode": 0o755, "ret": 0},
        {"op": "open", "path": "/" + HOSTILE, "flags": W, "ret": 3},
        {"op": "close", "fd": 3, "ret": 0},
        {"op": "chmod", "path": "/" + BADBYTE, "mode": 0o600, "ret": 0},
    ]


def _on_kernel(merged: Path) -> None:
    m = os.fsencode(merged)
    with open(m + b"/etc/conf", "a") as f:
        f.write("b=2\n")
    os.chmod(m + b"/bin/tool", 0o755)
    os.unlink(m + b"/bin/old")
    os.rmdir(m + b"/d")
    os.mkdir(m + b"/d", 0o755)
    os.close(os.open(m + b"/" + os.fsencode(HOSTILE), os.O_WRONLY))
    os.chmod(m + b"/" + os.fsencode(BADBYTE), 0o600)


def _trace(tmp: Path) -> str:
    path = tmp / "t.jsonl"
    ops = _ops()
    for n, op in enumerate(ops, 1):
        op.setdefault("pid", 1)
        op.setdefault("line", n)
    path.write_text("\n".join(json.dumps(x) for x in [HEADER, *ops]) + "\n")
    return str(path)


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    r = CliRunner(env=env).invoke(main, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def _kernel_upper(tmp: Path, lower: Path) -> dict[str, str]:
    """The upper dir a real overlay mount leaves after the same calls: path -> kind."""
    up, work, merged = tmp / "k_upper", tmp / "k_work", tmp / "k_merged"
    for d in (up, work, merged):
        d.mkdir()
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lower},upperdir={up},workdir={work}", str(merged)],
                       capture_output=True, text=True, check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount an overlay here: {r.stderr.strip()}")
    try:
        _on_kernel(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(os.fsencode(up)):
        for name in dirs + files:
            p = os.path.join(root, name)
            s = os.lstat(p)
            rel = os.fsdecode(p[len(os.fsencode(up)) :])
            if stat.S_ISCHR(s.st_mode) and s.st_rdev == 0:
                out[rel] = "whiteout"
            elif stat.S_ISDIR(s.st_mode):
                try:
                    opaque = os.getxattr(p, "trusted.overlay.opaque") == b"y"
                except OSError as e:
                    assert e.errno == errno.ENODATA
                    opaque = False
                out[rel] = "opaque" if opaque else "dir"
            else:
                out[rel] = "file"
    return out


def test_replay_timeline_and_upper_match_replay_and_the_kernel(tmp_path: Path) -> None:
    lower = _lower(tmp_path)
    trace = _trace(tmp_path)
    page = tmp_path / "replay.html"
    r = _cli("report", "--trace", trace, "--lowerdir", str(lower), "-o", str(page))
    assert r.exit_code == 0, r.output
    rep = json.loads(_cli("replay", trace, "--lowerdir", str(lower), "--json").output)
    dom = parse(dump_dom(page.as_uri() + "#explain=/bin/old", tmp_path / "profile"))
    # the timeline: one bar per copy-up, in the replay's order, with its bytes
    bars = dom.find("rect", "copyup")
    assert [(b.attrs["data-path"], int(b.attrs["data-bytes"])) for b in bars] == \
        [(display(c["path"]), c["bytes"]) for c in rep["copy_ups"]]  # names shown printable
    s = dom.by_id("copyup-summary")
    assert int(s.attrs["data-count"]) == rep["counts"]["copy_ups"] == len(bars)
    assert int(s.attrs["data-bytes"]) == rep["copy_up_bytes"]
    conf = next(b for b in bars if b.attrs["data-path"] == "/etc/conf")
    assert int(conf.attrs["data-bytes"]) == (lower / "etc" / "conf").stat().st_size  # whole file
    # the upper band and its rows: what a real overlay mount left in its upper dir
    kernel = _kernel_upper(tmp_path, lower)
    upper = dom.find("g", "band")[0]
    assert upper.attrs["data-role"] == "upper"
    assert int(upper.attrs["data-entries"]) == len(kernel)
    assert int(upper.attrs["data-whiteouts"]) == list(kernel.values()).count("whiteout") == 1
    assert int(upper.attrs["data-opaque"]) == list(kernel.values()).count("opaque") == 1
    data = json.loads(dom.by_id("report-data").all_text())
    rows = {data["paths"][int(x.attrs["data-i"])]: x for x in dom.find("g", "row")}
    for path, kind in kernel.items():
        cell = [c for c in rows[path].iter() if "cell" in c.classes and c.attrs["data-band"] == "0"]
        assert cell, path
        assert ("whiteout" in cell[0].classes) == (kind == "whiteout")
        assert ("opaque" in cell[0].classes) == (kind == "opaque")
    assert "whiteout" in dom.by_id("explain-text").all_text()  # /bin/old, clicked via #explain=


def test_hostile_names_stay_text(tmp_path: Path) -> None:
    lower = _lower(tmp_path)
    page = tmp_path / "hostile.html"
    r = _cli("report", "--trace", _trace(tmp_path), "--lowerdir", str(lower), "-o", str(page))
    assert r.exit_code == 0, r.output
    b = Cdp(page.as_uri(), tmp_path / "profile")
    try:
        assert b.eval("document.querySelectorAll('img,[onerror]').length") == 0
        paths = b.eval("JSON.parse(document.getElementById('report-data').textContent).paths")
        titles = b.eval("Array.from(document.querySelectorAll('#paths .row text title'))"
                        ".map(function (t) { return t.textContent; })")  # fmt: skip
        i = paths.index("/" + HOSTILE)
        b.click(f'#paths .row[data-i="{i}"] text')
        shown = b.eval("document.getElementById('explain-path').textContent")
    finally:
        b.close()
    assert {"/" + HOSTILE, "/" + QUOTES} <= set(paths)
    assert "/bad\\xffname" in titles and "/" + HOSTILE in titles
    assert shown == "/" + HOSTILE


def test_trace_replayed_into_a_container_leaves_the_world_alone(world: str,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    trace = tmp_path / "c.jsonl"
    ops = [{"op": "open", "path": "/root/saved.txt", "flags": W | A, "ret": 3, "pid": 1,
            "line": 1}, {"op": "close", "fd": 3, "ret": 0, "pid": 1, "line": 2}]  # fmt: skip
    trace.write_text("\n".join(json.dumps(x) for x in [HEADER, *ops]) + "\n")
    before = Path(world).read_bytes()
    page = tmp_path / "c.html"
    r = _cli("report", "web", "--trace", str(trace), "-o", str(page), env={ENVVAR: world})
    assert r.exit_code == 0, r.output
    assert Path(world).read_bytes() == before
    js = json.loads(_cli("explain", "--json", "web:/root/saved.txt", env={ENVVAR: world}).output)
    dom = parse(dump_dom(page.as_uri(), tmp_path / "profile"))
    bars = {b.attrs["data-path"]: int(b.attrs["data-bytes"]) for b in dom.find("rect", "copyup")}
    assert bars == {"/root": 0, "/root/saved.txt": js["merged"]["size"]}
    assert dom.find("g", "band")[0].attrs["data-entries"] == "2"


def test_trace_needs_lowers(tmp_path: Path) -> None:
    r = _cli("report", "--trace", _trace(tmp_path), "-o", str(tmp_path / "x.html"))
    assert r.exit_code == 1 and "--lowerdir" in r.output and r.output.count("\n") == 1


def test_a_big_lower_is_capped_touched_paths_first(tmp_path: Path) -> None:
    low = tmp_path / "big"
    (low / "many").mkdir(parents=True)
    for i in range(3000):
        (low / "many" / f"f{i:04d}").write_text("x" * 100)
    trace = tmp_path / "b.jsonl"
    ops = [{"op": "chmod", "path": "/many/f2999", "mode": 0o600, "ret": 0, "pid": 1, "line": 1}]
    trace.write_text("\n".join(json.dumps(x) for x in [HEADER, *ops]) + "\n")
    page = tmp_path / "big.html"
    r = _cli("report", "--trace", str(trace), "--lowerdir", str(low), "--max-paths", "40",
             "-o", str(page))  # fmt: skip
    assert r.exit_code == 0, r.output
    html = page.read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html).group(1))  # type: ignore[union-attr]
    assert len(data["paths"]) == 40 and "/many/f2999" in data["paths"]  # the copied-up name
    assert 'data-total="3001"' in html and len(html) < 40 * 12_000  # grows with the cap only
    bands = re.findall(r'data-role="(\w+)" data-entries="(\d+)" data-bytes="(\d+)"', html)
    assert bands == [("upper", "2", "100"), ("lower1", "3001", "300000")]  # totals stay exact
