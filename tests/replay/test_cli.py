"""``overlaysim replay`` on the command line: outputs, exit status, errors that lose nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.demo_image import write_demo_archive

HEADER = {"format": "overlaysim-trace", "version": 1, "source": "test"}


def jsonl(path: Path, ops: list[dict[str, Any]]) -> str:
    for n, op in enumerate(ops, 1):
        op.setdefault("pid", 1)
        op.setdefault("line", n)
    path.write_text("\n".join(json.dumps(x) for x in [HEADER, *ops]) + "\n")
    return str(path)


@pytest.fixture
def lower(tmp_path: Path) -> str:
    low = tmp_path / "lower"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "conf").write_text("a=1\n" * 1000)
    (low / "bin").mkdir()
    (low / "bin" / "tool").write_text("#!/bin/sh\n")
    return str(low)


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    r = CliRunner(env=env).invoke(main, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def test_replay_summary_report_and_upper(tmp_path: Path, lower: str) -> None:
    trace = jsonl(tmp_path / "t.jsonl", [
        {"op": "exec", "path": "/bin/sh", "argv": ["sh", "-c", "edit"], "ret": 0},
        {"op": "open", "path": "/etc/conf", "flags": os.O_WRONLY | os.O_APPEND, "ret": 3,
         "call": "openat"},
        {"op": "write", "fd": 3, "size": 4, "data": b"b=2\n".hex(), "ret": 4},
        {"op": "chmod", "path": "/bin/tool", "mode": 0o755, "ret": 0, "call": "fchmodat"},
        {"op": "unlink", "path": "/etc/gone", "ret": -1, "err": "ENOENT"},
    ])  # fmt: skip
    report, upper = tmp_path / "r.json", tmp_path / "upper"
    r = invoke("replay", trace, "--lowerdir", lower, "--report", str(report),
               "--write-upper", str(upper))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "copy-ups: 4 (3.9 KiB of data copied)" in r.output
    assert "line 2: sh[1] openat -> copy-up /etc/conf (file, 3.9 KiB)" in r.output
    assert "recorded vs simulated: all agree" in r.output
    rep = json.loads(report.read_text())
    assert [c["path"] for c in rep["copy_ups"]] == ["/etc", "/etc/conf", "/bin", "/bin/tool"]
    assert rep["copy_up_data_bytes"] == 4000 + len("#!/bin/sh\n")
    assert rep["upper"]["files"] == 2 and rep["commit_layer_bytes"] > 4004
    assert (upper / "etc" / "conf").read_text().endswith("a=1\nb=2\n")
    assert os.stat(upper / "bin" / "tool").st_mode & 0o777 == 0o755
    if os.geteuid() == 0:
        assert os.getxattr(upper / "etc", "trusted.overlay.impure") == b"y"


def test_differences_exit_1_and_json(tmp_path: Path, lower: str) -> None:
    trace = jsonl(tmp_path / "t.jsonl", [
        {"op": "mkdir", "path": "/etc", "mode": 0o755, "ret": 0, "call": "mkdir"},
    ])  # fmt: skip
    r = invoke("replay", trace, "--lowerdir", lower, "--json")
    assert r.exit_code == 1
    rep = json.loads(r.stdout)
    assert rep["mismatch_count"] == 1
    assert rep["mismatches"][0] == {"line": 1, "pid": 1, "program": "", "call": "mkdir",
                                    "args": {"path": "/etc", "mode": 0o755},
                                    "recorded": "0", "simulated": "-1 EEXIST"}  # fmt: skip


def test_errors_are_one_line_and_write_nothing(tmp_path: Path, lower: str) -> None:
    trace = jsonl(tmp_path / "t.jsonl", [{"op": "mkdir", "path": "/x", "ret": 0}])
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("mine")
    cases = [
        (["replay", trace], "give the lowers"),
        (["replay", str(tmp_path / "missing.log"), "--lowerdir", lower], "no such trace file"),
        (["replay", trace, "--lowerdir", str(tmp_path / "nope")], "not a directory"),
        (["replay", trace, "--lowerdir", lower, "--write-upper", str(full)], "not empty"),
        (["replay", trace, "--lowerdir", lower, "--options", "upperdir=/x"], "upperdir"),
        (["replay", trace, "--lowerdir", lower, "--options", "bogus=1"], "cannot be mounted"),
        (["replay", trace, "--lowerdir", lower, "--options", "metacopy=on,verity=on"],
         "does not simulate verity"),
        (["replay", trace, "--lowerdir", lower, "--user", "alice"], "UID[:GID]"),
    ]
    for args, message in cases:
        r = invoke(*args)
        assert r.exit_code == 1, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("overlaysim: error:"), r.stderr
        assert message in lines[0], (message, lines[0])
    assert sorted(os.listdir(full)) == ["keep"]


def test_bad_trace_is_a_one_line_error(tmp_path: Path, lower: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(HEADER) + '\n{"op": "mkdir", "pid": 1}\n')
    r = invoke("replay", str(bad), "--lowerdir", lower)
    assert r.exit_code == 1
    assert r.stderr.strip() == f"overlaysim: error: {bad}:2: mkdir: missing 'path'"


def test_what_if_compares_options_side_by_side(tmp_path: Path, lower: str) -> None:
    other = tmp_path / "other"
    (other / "etc").mkdir(parents=True)
    trace = jsonl(tmp_path / "t.jsonl", [
        {"op": "open", "path": "/etc/conf", "flags": os.O_RDWR, "ret": 3},
        {"op": "write", "fd": 3, "size": 1, "data": "41", "ret": 1},
    ])  # fmt: skip
    r = invoke("replay", trace, "--lowerdir", lower, "--what-if", "redirect_dir=on",
               "--what-if", f"lowerdir={other}", "--json")  # fmt: skip
    assert r.exit_code == 0  # the exit status is the base run's: it agrees
    cmp = json.loads(r.stdout)["what_if"]
    assert cmp["columns"] == ["as recorded", "redirect_dir=on", f"lowerdir={other}"]
    rows = {row["what"]: row["values"] for row in cmp["rows"]}
    assert rows["copy-up data bytes"] == [4000, 4000, 0]
    assert rows["calls that differ"] == [0, 0, 1]  # the file is not in the other lowers
    diffs = {d["what_if"]: d for d in cmp["upper_differences"]}
    assert diffs["redirect_dir=on"]["paths_differ"] == 0
    assert "etc/conf" in diffs[f"lowerdir={other}"]["paths"]


def test_replay_into_a_container_of_the_world(tmp_path: Path) -> None:
    world = str(tmp_path / "w.world")
    env = {"OVERLAYSIM_WORLD": world}
    demo = tmp_path / "demo.tar"
    with open(demo, "wb") as f:
        write_demo_archive(f)
    assert invoke("docker", "load", "-i", str(demo), env=env).exit_code == 0
    assert invoke("docker", "create", "--name", "web", "demo", "sleep", "1",
                  env=env).exit_code == 0  # fmt: skip
    trace = jsonl(tmp_path / "t.jsonl", [
        {"op": "open", "path": "/tmp/replayed", "flags": os.O_WRONLY | os.O_CREAT, "mode": 0o644,
         "ret": 3},
        {"op": "write", "fd": 3, "size": 2, "data": b"hi".hex(), "ret": 2},
        {"op": "unlink", "path": "/hello.sh", "ret": 0},
    ])  # fmt: skip
    r = invoke("replay", trace, "--container", "web", env=env)
    assert r.exit_code == 0, r.output
    diff = invoke("docker", "diff", "web", env=env).stdout.splitlines()
    assert "A /tmp/replayed" in diff and "D /hello.sh" in diff
    # a failing replay leaves the world as it was
    bad = jsonl(tmp_path / "bad.jsonl", [{"op": "mkdir", "path": "/tmp/x", "ret": 0},
                                          {"op": "bogus", "pid": 1}])  # fmt: skip
    assert invoke("replay", bad, "--container", "web", env=env).exit_code == 1
    assert "A /tmp/x" not in invoke("docker", "diff", "web", env=env).stdout


def test_convert_writes_jsonl_that_replays_the_same(tmp_path: Path, lower: str) -> None:
    log = tmp_path / "s.log"
    log.write_text(
        '42 openat(AT_FDCWD, "/etc/conf", O_WRONLY|O_APPEND) = 3\n'
        '42 write(3, "x\\n", 2) = 2\n'
        '42 close(3) = 0\n'
        '42 +++ exited with 0 +++\n'
    )
    out = tmp_path / "ops.jsonl"
    r = invoke("replay", "convert", str(log), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "3 ops from 4 lines" in r.stderr or "4 ops from 4 lines" in r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert recs[0]["format"] == "overlaysim-trace"
    assert [x["op"] for x in recs[1:4]] == ["open", "write", "close"]
    a = invoke("replay", str(log), "--lowerdir", lower, "--json")
    b = invoke("replay", str(out), "--lowerdir", lower, "--json")
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert ra["copy_ups"] == rb["copy_ups"] and ra["upper"] == rb["upper"]


def test_lowers_from_an_image_archive(tmp_path: Path) -> None:
    demo = tmp_path / "demo.tar"
    with open(demo, "wb") as f:
        write_demo_archive(f)
    log = tmp_path / "t.log"
    log.write_text('1 openat(AT_FDCWD, "/hello.sh", O_WRONLY|O_APPEND) = 3\n'
                   '1 write(3, "echo more\\n", 10) = 10\n'
                   '1 unlink("/bin") = 0\n'
                   '1 openat(AT_FDCWD, "/nope", O_RDONLY) = -1 ENOENT (No such file or directory)\n')
    r = invoke("replay", str(log), "--image", str(demo), "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["lowerdirs"] == [f"{demo} layer 1", f"{demo} layer 0"]
    assert [(c["path"], c["layer"], c["bytes"]) for c in rep["copy_ups"]] == [
        ("/hello.sh", "lower1", 42)]
    assert [w["path"] for w in rep["whiteouts"]] == ["/bin"]
    if os.geteuid() != 0:
        pytest.skip("writing a whiteout (char 0/0) to the real disk needs root")
    up = tmp_path / "up"
    assert invoke("replay", str(log), "--image", str(demo), "--write-upper", str(up)).exit_code == 0
    assert (up / "hello.sh").read_bytes().endswith(b"echo more\n")
    st = os.lstat(up / "bin")
    assert (st.st_mode & 0o170000, st.st_rdev) == (0o020000, 0)


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from overlaysim.cli.replay import _progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    with _progress(True) as bar:
        assert bar is not None
        bar(16384)
        bar(32768)
    assert "32,768 lines" in fake.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with _progress(True) as bar:
        assert bar is None
