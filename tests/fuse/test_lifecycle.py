"""The mount's life: daemon or foreground, every way to stop it (overlaysim umount,
fusermount3 -u, SIGTERM, SIGKILL), unmount under load, a full disk at write-back, bad input.
Whatever happens: no hang, one clear line, nothing half-written in the upper dir."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import umount as kumount
from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]

WRITER = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = int(sys.argv[2])
hold = int(sys.argv[4]) if len(sys.argv) > 4 else -1  # stop there until stdin says go
i = 0
while n < 0 or i < n:
    if i == hold:
        sys.stdin.readline()
    try:
        os.write(fd, b"line %06d of a steady writer\\n" % i)
    except OSError as e:
        print(os.strerror(e.errno), flush=True)
        sys.exit(3)
    i += 1
    time.sleep(float(sys.argv[3]))
os.close(fd)
"""
LINE = b"line %06d of a steady writer\n"


@pytest.fixture
def d(tmp_path: Path) -> Iterator[SimpleNamespace]:
    ns = SimpleNamespace(base=tmp_path, lower=tmp_path / "l", upper=tmp_path / "u",
                         work=tmp_path / "w", mnt=tmp_path / "m", run=tmp_path / "run")  # fmt: skip
    for p in (ns.lower, ns.upper, ns.work, ns.mnt):
        p.mkdir()
    (ns.lower / "a").write_text("aaa\n")
    (ns.lower / "b").write_text("bbb\n")
    (ns.lower / "dir").mkdir()
    (ns.lower / "dir/x").write_text("x\n")
    yield ns
    rec = fh.record(ns.mnt, ns.run)
    if fh.fstype(ns.mnt):
        kumount(str(ns.mnt), 2)  # MNT_DETACH: never leave a mount behind a failed test
    if rec is not None and rec.alive():
        os.kill(rec.pid, signal.SIGKILL)


def mount_cmd(d: SimpleNamespace, *extra: str) -> list[str]:
    return [fh.OVERLAYSIM, "mount", "--lowerdir", str(d.lower), "--upperdir", str(d.upper),
            "--workdir", str(d.work), *extra, str(d.mnt)]  # fmt: skip


def up(d: SimpleNamespace, *extra: str) -> None:
    res = fh.run(mount_cmd(d, *extra), d.run)
    assert res.returncode == 0, res.stderr
    assert fh.fstype(d.mnt) == "fuse.overlaysim"


def one_line_error(res: subprocess.CompletedProcess[str], prefix: str = "overlaysim: error: ") -> str:
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def tree(path: Path) -> dict[str, tuple[int, bytes | None]]:
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(root) / name
            s = p.lstat()
            out[str(p.relative_to(path))] = (s.st_mode, p.read_bytes() if stat.S_ISREG(s.st_mode) else None)
    return out


def test_daemon_then_overlaysim_umount_writes_the_upper_back(d: SimpleNamespace) -> None:
    lower_before = tree(d.lower)
    up(d)
    line = next(x.split() for x in Path("/proc/self/mounts").read_text().splitlines()
                if x.split()[1] == str(d.mnt))  # fmt: skip
    assert line[0] == "overlay" and line[2] == "fuse.overlaysim"
    assert not {"nosuid", "nodev"} & set(line[3].split(","))  # as a kernel overlay by root
    (d.mnt / "new").write_text("new\n")
    with open(d.mnt / "a", "a") as f:
        f.write("more\n")
    os.unlink(d.mnt / "b")
    assert (d.mnt / "a").read_text() == "aaa\nmore\n"
    res = fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run)
    assert (res.returncode, res.stderr) == (0, "")
    assert fh.fstype(d.mnt) is None and fh.record(d.mnt, d.run) is None
    assert (d.upper / "new").read_text() == "new\n"
    assert (d.upper / "a").read_text() == "aaa\nmore\n"
    wh = (d.upper / "b").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(d.upper / "a", "trusted.overlay.origin")
    assert (d.work / "work").is_dir()
    assert tree(d.lower) == lower_before  # lowers are never written
    assert fh.leftovers(d.upper) == []


def test_fusermount_u_stops_it_cleanly_and_the_daemon_writes_back(d: SimpleNamespace) -> None:
    up(d)
    (d.mnt / "dir/y").write_text("y\n")
    res = subprocess.run(["fusermount3", "-u", str(d.mnt)], capture_output=True, text=True,
                         timeout=30, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    fh.wait_for(lambda: fh.record(d.mnt, d.run) is None, what="the daemon's write-back")
    assert (d.upper / "dir/y").read_text() == "y\n"
    assert fh.leftovers(d.upper) == []


@pytest.mark.parametrize("unmounter", [["fusermount3", "-u"], ["umount"]])
def test_umount_wait_returns_once_the_write_back_after_an_outside_unmount_is_done(
    d: SimpleNamespace, unmounter: list[str],
) -> None:
    """fusermount3 -u and umount(8) return when the kernel lets the mount go, before the
    daemon has written 32 MiB back; ``overlaysim umount --wait`` returns after it."""
    up(d)
    data = os.urandom(32 << 20)
    (d.mnt / "big").write_bytes(data)
    subprocess.run([*unmounter, str(d.mnt)], check=True, timeout=30)
    res = fh.run([fh.OVERLAYSIM, "umount", "--wait", str(d.mnt)], d.run)
    assert (res.returncode, res.stderr) == (0, "")
    assert fh.record(d.mnt, d.run) is None
    assert (d.upper / "big").read_bytes() == data and fh.leftovers(d.upper) == []
    again = fh.run([fh.OVERLAYSIM, "umount", "--wait", str(d.mnt)], d.run)
    assert (again.returncode, again.stderr) == (0, "")  # nothing left to wait for


def test_umount_wait_reports_a_daemon_that_died(d: SimpleNamespace) -> None:
    before = tree(d.upper)
    up(d)
    pid = fh.record(d.mnt, d.run).pid
    os.kill(pid, signal.SIGKILL)
    msg = one_line_error(fh.run([fh.OVERLAYSIM, "umount", "--wait", str(d.mnt)], d.run,
                                timeout=30))  # fmt: skip
    assert f"(pid {pid}) died" in msg and f"{d.upper} was left as it was" in msg
    assert fh.fstype(d.mnt) is None and tree(d.upper) == before


def test_foreground_sigterm_unmounts_writes_back_and_explains_on_stderr(d: SimpleNamespace) -> None:
    proc = subprocess.Popen(mount_cmd(d, "-f", "--explain"), env=fh.env(d.run),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        fh.wait_for(lambda: fh.fstype(d.mnt) == "fuse.overlaysim", what="the mount")
        subprocess.run(["sh", "-c", f"echo more >> {d.mnt}/a"], check=True, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert (d.upper / "a").read_text() == "aaa\nmore\n"
    assert f"copy_up {d.mnt}/a (open(O_WRONLY))" in err
    assert fh.fstype(d.mnt) is None


def test_explain_file_streams_events_as_they_happen(d: SimpleNamespace) -> None:
    log = d.base / "explain.log"
    up(d, f"--explain={log}")
    subprocess.run(["sh", "-c", f"echo more >> {d.mnt}/a; rm {d.mnt}/b; rm -r {d.mnt}/dir"],
                   check=True, timeout=30)  # fmt: skip
    text = fh.wait_for(lambda: "rmdir" in log.read_text() and log.read_text(), what="events")
    lines = text.splitlines()
    assert any(f"copy_up {d.mnt}/a (open(O_WRONLY))" in x and x.startswith("sh[") for x in lines)
    assert any(x.startswith("rm[") and f"whiteout {d.mnt}/b (unlink)" in x for x in lines)
    assert any(x.startswith("rm[") and f"whiteout {d.mnt}/dir (rmdir)" in x for x in lines)
    assert any(f"lowerdir={d.lower}" in x for x in lines if " mount " in x)  # real paths
    assert fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run).returncode == 0


def test_umount_of_a_busy_mount_is_refused_and_lazy_waits_for_the_writer(d: SimpleNamespace) -> None:
    up(d)
    target = d.mnt / "log"
    # The writer holds its file open at line 20 until told to go on: the mount is busy by
    # construction, however slow the machine (a writer that had finished would not be).
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "40", "0.002", "20"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        fh.wait_for(lambda: target.exists() and target.stat().st_size >= 20 * len(LINE % 0),
                    what="the writer")  # fmt: skip
        busy = fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run)
        assert "target is busy" in one_line_error(busy)
        assert fh.fstype(d.mnt) == "fuse.overlaysim" and (d.mnt / "a").read_text() == "aaa\n"
        lazy = fh.run([fh.OVERLAYSIM, "umount", "--lazy", str(d.mnt)], d.run)
        assert lazy.returncode == 0, lazy.stderr
        assert fh.fstype(d.mnt) is None  # detached at once
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
        assert writer.wait(timeout=60) == 0  # and the writer never noticed
    finally:
        writer.kill()
    fh.wait_for(lambda: fh.record(d.mnt, d.run) is None, what="the write-back")
    assert (d.upper / "log").read_bytes() == b"".join(LINE % i for i in range(40))


def test_sigterm_while_a_process_writes_ends_it_with_an_error_not_a_hang(d: SimpleNamespace) -> None:
    up(d)
    target = d.mnt / "log"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "-1", "0.005"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        fh.wait_for(lambda: target.exists() and target.stat().st_size > 10 * len(LINE % 0),
                    what="the writer")  # fmt: skip
        os.kill(fh.record(d.mnt, d.run).pid, signal.SIGTERM)
        out, _ = writer.communicate(timeout=30)
    finally:
        writer.kill()
    assert writer.returncode == 3
    assert out.strip() in fh.DAEMON_GONE
    fh.wait_for(lambda: fh.record(d.mnt, d.run) is None, what="the write-back")
    data = (d.upper / "log").read_bytes()
    lines = data.count(b"\n")
    assert lines > 10 and data == b"".join(LINE % i for i in range(lines))  # whole writes only
    assert fh.leftovers(d.upper) == [] and fh.fstype(d.mnt) is None


def test_a_killed_daemon_never_hangs_and_leaves_the_upper_untouched(d: SimpleNamespace) -> None:
    (d.upper / "kept").write_text("from before\n")
    before = tree(d.upper)
    up(d)
    (d.mnt / "new").write_text("lost\n")
    pid = fh.kill_daemon(d.mnt, d.run, d.mnt / "new")
    msg = one_line_error(fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run))
    assert f"(pid {pid}) died" in msg and "left as it was" in msg
    assert fh.fstype(d.mnt) is None and fh.record(d.mnt, d.run) is None
    assert tree(d.upper) == before and fh.leftovers(d.upper) == []


def test_a_full_disk_at_write_back_leaves_the_upper_as_it_was(d: SimpleNamespace) -> None:
    small = d.base / "small"
    small.mkdir()
    kmount("tmpfs", str(small), "tmpfs", "size=256k")
    try:
        d.upper, d.work = small / "u", small / "w"
        d.upper.mkdir()
        d.work.mkdir()
        (d.upper / "kept").write_text("from before\n")
        before = tree(d.upper)
        up(d)
        (d.mnt / "big").write_bytes(b"\0" * (1 << 20))  # fits in the simulation, not on disk
        msg = one_line_error(fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run))
        assert os.strerror(errno.ENOSPC) in msg and "left as it was" in msg
        assert tree(d.upper) == before
        assert sorted(os.listdir(small)) == ["u", "w"]  # no half-written temp tree
        assert fh.fstype(d.mnt) is None and fh.record(d.mnt, d.run) is None
    finally:
        kumount(str(small), 2)


def test_leftovers_of_an_interrupted_write_back_are_removed_at_mount(d: SimpleNamespace) -> None:
    stale = d.base / ".u.overlaysim-4194305"  # above pid_max: its writer is gone
    stale.mkdir()
    (stale / "half").write_text("half-written")
    up(d)
    assert not stale.exists()
    assert fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run).returncode == 0


def test_one_upper_dir_cannot_serve_two_mounts(d: SimpleNamespace) -> None:
    up(d)
    other = d.base / "m2"
    other.mkdir()
    res = fh.run([fh.OVERLAYSIM, "mount", "--lowerdir", str(d.lower), "--upperdir", str(d.upper),
                  "--workdir", str(d.work), str(other)], d.run)  # fmt: skip
    assert "is in use by another overlaysim mount" in one_line_error(res)
    assert fh.fstype(other) is None
    assert fh.run([fh.OVERLAYSIM, "umount", str(d.mnt)], d.run).returncode == 0


BAD = {
    "no lower": ([], "no lower layer"),
    "missing lower": (["--lowerdir", "{base}/nope"], "lowerdir {base}/nope: no such directory"),
    "upper without work": (["--lowerdir", "{base}/l", "--upperdir", "{base}/u"],
                           "missing 'workdir'"),
    "work inside upper": (["--lowerdir", "{base}/l", "--upperdir", "{base}/u", "--workdir",
                           "{base}/u/w"], "workdir and upperdir must be separate subtrees"),
    "unknown option": (["--lowerdir", "{base}/l", "-o", "bogus=1"], "Unknown parameter 'bogus'"),
    "bad option value": (["--lowerdir", "{base}/l", "-o", "redirect_dir=maybe"],
                         "the overlay cannot be mounted"),
    "data layer first": (["--lowerdir", "{base}/l::{base}/u:{base}/w"],
                         "regular lower layers cannot follow data layers"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_mounts_nothing(d: SimpleNamespace, case: str) -> None:
    (d.upper / "w").mkdir()
    args, expected = BAD[case]
    argv = [a.format(base=d.base) for a in args]
    res = fh.run([fh.OVERLAYSIM, "mount", *argv, str(d.mnt)], d.run)
    assert expected.format(base=d.base) in one_line_error(res)
    assert fh.fstype(d.mnt) is None


def test_mount_point_that_is_a_file(d: SimpleNamespace) -> None:
    res = fh.run([fh.OVERLAYSIM, "mount", "--lowerdir", str(d.lower), str(d.lower / "a")], d.run)
    assert "not a directory" in one_line_error(res)
