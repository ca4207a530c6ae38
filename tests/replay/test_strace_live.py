"""The strace parser on real logs: a small workload traced on this machine with many flag
combinations (-f, -ff, -y, -yy, -tt, -ttt, -T, -qq, -xx, -s 8, output on stderr)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from overlaysim.errors import TraceError
from overlaysim.replay.format import validate
from overlaysim.replay.strace import StraceParser, open_trace_text, parse_strace_files
from tests.replay.test_strace_parser import CLOEXEC, CREAT, TRUNC, W, sub


# --- real strace runs ----------------------------------------------------------------------------
def _strace_problem() -> str | None:
    if shutil.which("strace") is None:
        return "strace is not installed"
    try:
        subprocess.run(["strace", "-o", os.devnull, "true"], check=True, capture_output=True,
                       timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        return f"strace cannot trace here (ptrace not permitted?): {e}"
    return None


_WHY_NOT = _strace_problem()
live = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")
DATA = b"hello\n\0\1\377 binary \\ \"data\"!"  # within strace's default -s 32
_WORKLOAD = f"""
import os, sys
os.chdir(sys.argv[1])
fd = os.open("a.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, {DATA!r})
os.writev(fd, [b"abc", b"defgh"])
os.pwrite(fd, b"XY", 1)
os.ftruncate(fd, 40)
os.close(fd)
os.mkdir("d", 0o750)
os.symlink("a.txt", "d/ln")
os.rename("a.txt", "b.txt")
os.unlink("d/ln")
os.chmod("b.txt", 0o600)
try:
    os.open("missing", os.O_RDONLY)
except OSError:
    pass
pid = os.fork()
if pid == 0:
    fd = os.open("child.txt", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"from child")
    os._exit(7)
os.waitpid(pid, 0)
"""


def record(tmp_path: Path, flags: list[str], mode: str = "o") -> list[dict[str, Any]]:
    """Run the workload under strace; ``mode``: o (-o FILE), ff (-ff -o PREFIX), err (stderr)."""
    work = tmp_path / "w"
    work.mkdir()
    prog = tmp_path / "prog.py"
    prog.write_text(_WORKLOAD)
    cmd = [sys.executable, "-I", "-S", str(prog), str(work)]
    if mode == "err":
        out = subprocess.run(["strace", *flags, *cmd], capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return [validate(o) for o in StraceParser().parse(out.stderr.decode("latin-1").split("\n"))]
    log = tmp_path / "log"
    subprocess.run(["strace", *flags, "-o", str(log), *cmd], check=True, timeout=120)
    if mode == "ff":
        _parser, it = parse_strace_files(sorted(str(p) for p in tmp_path.glob("log.*")))
        return [validate(o) for o in it]
    return [validate(o) for o in StraceParser().parse(open_trace_text(str(log)))]


def check(ops: list[dict[str, Any]], *, full: bool = True, follow: bool = True) -> None:
    """The workload's ops, in order for the parent, and the child's when -f followed it."""
    mine = [o for o in ops if o["op"] in ("fork", "exit") or any(
        str(o.get(k, "")).startswith(("a.txt", "b.txt", "d", "missing", "child.txt"))
        for k in ("path", "oldpath", "target"))]  # fmt: skip
    opened = next(o for o in ops if o.get("path") == "a.txt")
    parent = opened["pid"]
    sub(opened, op="open", flags=W | CREAT | TRUNC | CLOEXEC, mode=0o644, dirfd="<absent>")
    fd = opened["ret"]
    writes = [o for o in ops if o["op"] == "write" and o["pid"] == parent and o["fd"] == fd]
    assert [w["size"] for w in writes] == [len(DATA), 8, 2]
    if full:
        sub(writes[0], data=DATA.hex(), complete=True)
    else:  # -s 8
        sub(writes[0], data=DATA[:8].hex(), complete=False)
    sub(writes[1], data=b"abcdefgh".hex(), complete=True, call="writev")
    sub(writes[2], data=b"XY".hex(), offset=1)
    assert {"op": "truncate", "fd": fd, "length": 40}.items() <= next(
        o for o in ops if o["op"] == "truncate").items()
    by_parent = [(o["op"], o.get("path", o.get("oldpath")), o.get("err")) for o in mine
                 if o["pid"] == parent]  # fmt: skip
    assert by_parent[:8] == [
        ("open", "a.txt", None), ("mkdir", "d", None), ("symlink", "d/ln", None),
        ("rename", "a.txt", None), ("unlink", "d/ln", None), ("chmod", "b.txt", None),
        ("open", "missing", "ENOENT"), ("fork", None, None)]  # fmt: skip
    fork = next(o for o in mine if o["op"] == "fork" and o["pid"] == parent)
    child = fork["child"]
    assert child > 0 and not fork["share_files"] and not fork["thread"]
    assert by_parent[-1][0] == "exit" and next(
        o for o in mine if o["op"] == "exit" and o["pid"] == parent)["status"] == 0
    kid = [(o["op"], o.get("path"), o.get("status")) for o in ops if o["pid"] == child
           and (o["op"] == "exit" or o.get("path") == "child.txt" or o["op"] == "write")]
    if follow:
        assert kid[0] == ("open", "child.txt", None) and kid[1][0] == "write"
        assert kid[-1] == ("exit", None, 7)
    else:
        assert kid == []


@live
@pytest.mark.parametrize("flags", [
    ["-f"], ["-f", "-tt", "-T"], ["-f", "-ttt"], ["-f", "-t"], ["-f", "-y"], ["-f", "-yy"],
    ["-f", "-qq"], ["-f", "-xx"], ["-f", "-x"], ["-f", "-r"], ["-f", "-i", "-n"],
    ["-f", "-e", "trace=%file,%desc,%process"], ["-f", "-v", "-s", "256"],
])  # fmt: skip
def test_strace_log_of_a_workload(tmp_path: Path, flags: list[str]) -> None:
    ops = record(tmp_path, flags)
    check(ops)
    stamped = [o for o in ops if "ts" in o]
    if {"-tt", "-ttt", "-t"} & set(flags):
        assert len(stamped) == len(ops)
        assert stamped[-1]["ts"] >= stamped[0]["ts"] > (1e9 if "-ttt" in flags else 0)
    else:
        assert stamped == []


@live
def test_strace_s8_keeps_sizes_and_marks_content_incomplete(tmp_path: Path) -> None:
    check(record(tmp_path, ["-f", "-s", "8"]), full=False)


@live
def test_strace_without_f_sees_only_the_parent(tmp_path: Path) -> None:
    ops = record(tmp_path, [])
    check(ops, follow=False)
    assert {o["pid"] for o in ops} == {0}


@live
def test_strace_ff_per_pid_files(tmp_path: Path) -> None:
    ops = record(tmp_path, ["-ff", "-tt"], mode="ff")
    check(ops)
    assert [o["ts"] for o in ops] == sorted(o["ts"] for o in ops)


@live
def test_strace_ff_without_timestamps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="timestamps"):
        record(tmp_path, ["-ff"], mode="ff")


@live
@pytest.mark.parametrize("flags", [["-f"], ["-f", "-tt", "-y"]])
def test_strace_on_stderr(tmp_path: Path, flags: list[str]) -> None:
    ops = record(tmp_path, flags, mode="err")
    check(ops)
    parent = next(o for o in ops if o.get("path") == "a.txt")["pid"]
    assert parent == 0  # the first process's lines had no prefix
