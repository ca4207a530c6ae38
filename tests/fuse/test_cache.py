"""The kernel caches names, attributes and pages of the FUSE mount; nothing it serves from
that cache is ever stale. Each test runs the same shell steps on a kernel overlay and on
``overlaysim mount`` over the same lowers, stats every name from a separate process before
and after each step (so the kernel's caches are warm when the step runs), and compares what
the two mounts showed: types, modes, owners, sizes, link counts, contents, and which ctimes
and atimes moved. Never timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]

#: Stats (and reads) every name under the mount from a process of its own.
_OBSERVE = textwrap.dedent("""
    import hashlib, json, os, stat, sys
    out = {}
    for top, dirs, files in os.walk(".", followlinks=False):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            p = os.path.join(top, name)[2:]
            s = os.lstat(p)
            e = {"mode": oct(s.st_mode), "nlink": s.st_nlink, "uid": s.st_uid, "gid": s.st_gid,
                 "ctime": s.st_ctime_ns, "atime": s.st_atime_ns, "mtime": s.st_mtime_ns}
            if stat.S_ISREG(s.st_mode):
                e["size"] = s.st_size
                with open(p, "rb") as f:
                    e["data"] = hashlib.sha1(f.read()).hexdigest()[:12]
            out[p] = e
    print(json.dumps(out))
""")
#: Stats only, reading nothing (so no atime moves).
_STAT = _OBSERVE.replace('with open(p, "rb") as f:', "if 0:").replace(
    'e["data"] = hashlib.sha1(f.read()).hexdigest()[:12]', "pass"
)


def _look(mnt: Path, script: str = _STAT) -> dict[str, dict[str, Any]]:
    res = subprocess.run([sys.executable, "-c", script], cwd=mnt, capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    data: dict[str, dict[str, Any]] = json.loads(res.stdout)
    return data


def _moves(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a step changed, as comparable facts: everything but times as seen, and for
    times only whether they moved (the two mounts have their own clocks)."""
    out: dict[str, Any] = {}
    for p, e in after.items():
        fact = {k: v for k, v in e.items() if k not in ("ctime", "atime", "mtime")}
        old = before.get(p)
        for k in ("ctime", "mtime", "atime"):
            fact[k + " moved"] = old is not None and old[k] != e[k]
        out[p] = fact
    return out


Step = tuple[str, str]  # (shell command run in the mount, what to observe after: "stat"/"read")


def _play(mnt: Path, steps: list[Step]) -> list[Any]:
    seen = []
    before = _look(mnt)
    for cmd, how in steps:
        time.sleep(0.02)  # the kernel's timestamps are coarse: let a change show
        res = subprocess.run(["sh", "-c", cmd], cwd=mnt, capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
        after = _look(mnt, _OBSERVE if how == "read" else _STAT)
        seen.append({"step": cmd, "rc": res.returncode, "moves": _moves(before, after)})
        before = after if how == "stat" else _look(mnt)
    return seen


def _compare(tmp_path: Path, build: Callable[[Path], list[str]], steps: list[Step],
             opts: str = "") -> None:  # fmt: skip
    layers = fh.Layers(tmp_path, build)
    got: dict[str, list[Any]] = {}

    def on(side: str) -> Callable[[Path], None]:
        def workload(mnt: Path) -> None:
            got[side] = _play(mnt, steps)

        return workload

    fh.on_kernel(layers, on("kernel"), opts)
    fh.on_fuse(layers, on("fuse"), tmp_path / "run", opts)
    for k, f in zip(got["kernel"], got["fuse"], strict=True):
        assert f == k, f"after `{k['step']}`:\nkernel {k}\nfuse   {f}"


def _tree(base: Path) -> list[str]:
    low = base / "l"
    (low / "d1" / "d2" / "d3").mkdir(parents=True)
    (low / "d1" / "d2" / "d3" / "f").write_text("deep\n")
    (low / "x").write_text("x-lower\n")
    (low / "y").write_text("y\n")
    os.link(low / "x", low / "x2")
    (low / "gone").mkdir()
    (low / "gone" / "g").write_text("g\n")
    return ["l"]


def test_hard_links_made_on_the_mount_share_size_mode_owner_and_nlink(tmp_path: Path) -> None:
    _compare(tmp_path, _tree, [
        ("echo one > a && ln a b && ln a c", "read"),
        ("echo two >> a", "stat"),          # b and c: size, mtime, ctime
        ("chmod 600 b", "stat"),            # a and c: mode, ctime
        ("chown 1:2 c", "stat"),            # a and b: owner
        ("truncate -s 2 b", "read"),        # a and c: size and pages
        ("rm a", "stat"),                   # b and c: nlink
        ("mv b bb", "stat"),                # c: ctime
        ("touch -m -d @5 c", "read"),       # bb: mtime
    ])  # fmt: skip


@pytest.mark.parametrize("opts", ["", "index=on"])
def test_lower_hard_links_after_a_copy_up(tmp_path: Path, opts: str) -> None:
    """index=off: the copied-up name leaves the link (x2 stays the lower's); index=on: both
    names are the one upper file, whose size and nlink x2 must show at once."""
    _compare(tmp_path, _tree, [
        ("cat x x2 >/dev/null", "stat"),
        ("echo more >> x", "read"),
        ("chmod 640 x2", "stat"),
        ("rm x", "read"),
    ], opts)  # fmt: skip


def test_copy_up_stamps_the_ancestors_and_the_file(tmp_path: Path) -> None:
    _compare(tmp_path, _tree, [
        ("touch d1/d2/d3/new", "stat"),     # d1, d2 copied up (ctime); d3 is the parent
        ("python3 -c \"import os; os.close(os.open('y', os.O_WRONLY))\"", "stat"),  # y
        ("setfattr -n user.k -v v d1 2>/dev/null || python3 -c \"import os; "
         "os.setxattr('d1', 'user.k', b'v')\"", "stat"),
    ])  # fmt: skip


def test_directory_rename_whiteouts_and_parents(tmp_path: Path) -> None:
    _compare(tmp_path, _tree, [
        ("mkdir -p n/m && echo 1 > n/m/f && ln n/m/f out", "read"),
        ("mv n n2", "stat"),                # children under the new name, parents' nlink
        ("echo 22 >> out", "read"),         # n2/m/f through its other name
        ("rm -r gone && mkdir gone", "stat"),  # whiteouts then an opaque dir
        ("rm x2 && echo back > x2", "read"),
        ("rmdir n2/m 2>/dev/null; rm -r n2", "stat"),
        ("mv y x", "read"),                 # a rename over a name the kernel caches
    ])  # fmt: skip


def test_atime_of_reads_follows_relatime(tmp_path: Path) -> None:
    """A read after a write stamps atime (relatime), the next one does not: reads served
    from the page cache (whole pages written stay cached) must not hide the first."""
    _compare(tmp_path, _tree, [
        ("head -c 8192 /dev/zero > u", "stat"),
        ("cat u >/dev/null", "stat"),
        ("cat u >/dev/null", "stat"),
        ("head -c 4096 /dev/zero >> u", "stat"),
        ("cat u >/dev/null", "stat"),
        ("cat u >/dev/null", "stat"),
        ("chmod 600 u", "stat"),             # ctime after atime: the next read stamps it
        ("cat u >/dev/null", "stat"),
        ("cat x >/dev/null", "stat"),        # a lower file
        ("cat x >/dev/null", "stat"),
    ])  # fmt: skip


_READER = textwrap.dedent("""
    import os, sys
    fd, n = os.open(sys.argv[1], os.O_RDONLY), int(sys.argv[2])
    print(os.pread(fd, n, 0).decode().strip(), flush=True)
    sys.stdin.readline()
    print(os.pread(fd, n, 0).decode().strip(), flush=True)
""")


def _held_open(mnt: Path, name: str, change: Callable[[], None], size: int) -> tuple[str, str]:
    """What a process holding ``name`` open reads (its first ``size`` bytes) before and
    after ``change()``. Not beyond the size: such a read makes the kernel refresh the
    attributes, and a new mtime drops the pages all by itself."""
    p = subprocess.Popen([sys.executable, "-c", _READER, str(mnt / name), str(size)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdin is not None and p.stdout is not None
    try:
        first = p.stdout.readline().strip()
        change()
        p.stdin.write("\n")
        p.stdin.flush()
        second = p.stdout.readline().strip()
    finally:
        p.kill()
        p.wait()
    return first, second


def test_an_open_file_reads_what_another_name_wrote(tmp_path: Path) -> None:
    layers = fh.Layers(tmp_path, _tree)
    got: dict[str, tuple[str, str]] = {}

    def on(side: str) -> Callable[[Path], None]:
        def workload(mnt: Path) -> None:
            (mnt / "p").write_text("old\n")

            def change() -> None:
                os.link(mnt / "p", mnt / "q")
                with open(mnt / "q", "r+") as f:
                    f.write("new\n")

            got[side] = _held_open(mnt, "p", change, 4)

        return workload

    fh.on_kernel(layers, on("kernel"))
    fh.on_fuse(layers, on("fuse"), tmp_path / "run")
    assert got["kernel"] == ("old", "new")
    assert got["fuse"] == got["kernel"]


def test_in_process_mount_open_files_see_api_writes(tmp_path: Path) -> None:
    """Leaving ``locked()`` drops the pages of files open on the mount: no invalidate call."""
    from overlaysim import HostFS
    from overlaysim.fuse.inproc import FuseMount

    fs = HostFS()
    for d in ("/l", "/u", "/w", "/m"):
        fs.os.mkdir(d)
    with fs.open("/l/a", "w") as f:
        f.write("lower\n")
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with FuseMount(fs, "/m", str(mnt)) as m:

        def change() -> None:  # new bytes, same size and times: only an invalidation shows it
            with m.locked():
                old = fs.os.stat("/m/a")
                with fs.open("/m/a", "r+") as f:
                    f.write("API!!\n")
                fs.os.utime("/m/a", ns=(old.st_atime_ns, old.st_mtime_ns))

        assert _held_open(mnt, "a", change, 6) == ("lower", "API!!")
        with m.locked():
            fs.os.link("/m/a", "/m/b")
            fs.os.chmod("/m/b", 0o600)
        assert (os.stat(mnt / "a").st_mode & 0o777, os.stat(mnt / "a").st_nlink) == (0o600, 2)
