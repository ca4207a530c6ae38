"""Scenarios: which operations move atime/mtime/ctime of the inode and of its parent dirs.

Only relations are recorded ("same"/"later"), never absolute values, except times set
explicitly with utime(ns=...).  Each 'before' snapshot is a stat, which on 6.13+ also makes
the multigrain clock give the next change a strictly later timestamp.
"""

from __future__ import annotations

import os
from typing import Any

from .harness import scenario
from .recorder import Recorder

W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _mkfile(o: Any, path: str, data: bytes = b"", mode: int = 0o644) -> None:
    fd = o.open(path, W, mode)
    try:
        if data:
            o.write(fd, data)
    finally:
        o.close(fd)


@scenario()
def sc_times_file_ops(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    before_dir = obs.snap(o, base)
    _mkfile(o, p)
    obs.delta("create_parent", o, base, before_dir)
    obs.times_eq("create_equal", o.stat(p))
    _mkfile(o, p, b"abc")
    b = obs.snap(o, p)
    fd = o.open(p, os.O_WRONLY)
    o.write(fd, b"x")
    obs.delta("write", o, p, b)
    b = obs.snap(o, p)
    o.write(fd, b"")
    obs.delta("write_empty", o, p, b)
    o.close(fd)
    b = obs.snap(o, p)
    fd = o.open(p, os.O_RDONLY)
    o.read(fd, 10)
    o.close(fd)
    # relatime: the first read after a change moves atime (atime <= mtime), the next not.
    obs.delta("read", o, p, b, atime=True)
    b = obs.snap(o, p)
    fd = o.open(p, os.O_RDONLY)
    o.read(fd, 10)
    o.close(fd)
    obs.delta("second_read", o, p, b, atime=True)
    b = obs.snap(o, p)
    o.chmod(p, 0o600)
    obs.delta("chmod", o, p, b)
    b = obs.snap(o, p)
    o.chmod(p, 0o600)
    obs.delta("chmod_same_mode", o, p, b)
    b = obs.snap(o, p)
    o.chown(p, 0, 0)
    obs.delta("chown_same_owner", o, p, b)
    b = obs.snap(o, p)
    o.chown(p, -1, -1)
    obs.delta("chown_noop", o, p, b)
    b = obs.snap(o, p)
    o.chown(p, 5, 5)
    obs.delta("chown", o, p, b)
    b = obs.snap(o, p)
    o.truncate(p, 1)
    obs.delta("truncate_shrink", o, p, b)
    # truncate(2) to the current size still stamps mtime and ctime (tmpfs, 6.18).
    b = obs.snap(o, p)
    o.truncate(p, 1)
    obs.delta("truncate_same_size", o, p, b)
    b = obs.snap(o, p)
    fd = o.open(p, os.O_WRONLY)
    o.ftruncate(fd, 1)
    obs.delta("ftruncate_same_size", o, p, b)
    b = obs.snap(o, p)
    o.ftruncate(fd, 100)
    obs.delta("ftruncate_extend", o, p, b)
    o.close(fd)
    b = obs.snap(o, p)
    o.close(o.open(p, os.O_WRONLY | os.O_TRUNC))
    obs.delta("open_trunc_nonempty", o, p, b)
    b = obs.snap(o, p)
    o.close(o.open(p, os.O_WRONLY | os.O_TRUNC))
    obs.delta("open_trunc_empty", o, p, b)
    b = obs.snap(o, p)
    o.close(o.open(p, os.O_WRONLY))
    obs.delta("open_close_only", o, p, b)
    b = obs.snap(o, base)
    o.chmod(p, 0o644)
    o.truncate(p, 5)
    obs.delta("attr_change_leaves_parent", o, base, b)


@scenario()
def sc_times_utime(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p, b"abc")
    b = obs.snap(o, p)
    o.utime(p, ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    st = o.stat(p)
    obs.record("utime_ns_exact", [st.st_atime_ns, st.st_mtime_ns])
    obs.delta("utime_ns_ctime", o, p, b)
    o.utime(p, (1000.5, 2000.25))
    st = o.stat(p)
    obs.record("utime_float_seconds", [st.st_atime_ns, st.st_mtime_ns])
    b = obs.snap(o, p)
    o.utime(p)
    obs.delta("utime_now", o, p, b, atime=True)
    st = o.stat(p)
    obs.times_eq("utime_now_equal", st)
    obs.call("utime_both_args", o.utime, p, (1, 2), ns=(1, 2))
    obs.call("utime_negative_ns", o.utime, p, ns=(-1, -2))
    st = o.stat(p)
    obs.record("negative_times", [st.st_atime_ns, st.st_mtime_ns])
    obs.call("utime_missing", o.utime, base + "/missing", ns=(1, 2))
    o.mkdir(base + "/d")
    obs.call("utime_dir", o.utime, base + "/d", ns=(3, 4))
    obs.call("dir_times", lambda: [o.stat(base + "/d").st_atime_ns, o.stat(base + "/d").st_mtime_ns])
    fd = o.open(p, os.O_RDONLY)
    obs.call("utime_fd", o.utime, fd, ns=(10, 20))
    obs.call("fd_times", lambda: [o.fstat(fd).st_atime_ns, o.fstat(fd).st_mtime_ns])
    o.close(fd)


@scenario()
def sc_times_directory_ops(o: Any, base: str, obs: Recorder) -> None:
    d = base + "/d"
    o.mkdir(d)
    b = obs.snap(o, base)
    o.mkdir(base + "/e")
    obs.delta("mkdir_parent", o, base, b)
    b = obs.snap(o, d)
    _mkfile(o, d + "/f")
    obs.delta("create_parent", o, d, b)
    b = obs.snap(o, d)
    _mkfile(o, d + "/f", b"x")
    obs.delta("rewrite_existing_parent", o, d, b)
    b = obs.snap(o, d)
    o.symlink("f", d + "/l")
    obs.delta("symlink_parent", o, d, b)
    b = obs.snap(o, d)
    o.mkfifo(d + "/p")
    obs.delta("mkfifo_parent", o, d, b)
    b = obs.snap(o, d)
    o.listdir(d)
    obs.delta("listdir", o, d, b, atime=True)
    b = obs.snap(o, d)
    o.listdir(d)
    obs.delta("second_listdir", o, d, b, atime=True)
    b = obs.snap(o, d)
    o.stat(d + "/f")
    obs.delta("lookup_in_dir", o, d, b, atime=True)
    bf = obs.snap(o, d + "/f")
    b = obs.snap(o, d)
    o.link(d + "/f", d + "/h")
    obs.delta("link_parent", o, d, b)
    obs.delta("link_target", o, d + "/f", bf)
    bf = obs.snap(o, d + "/f")
    b = obs.snap(o, d)
    o.unlink(d + "/h")
    obs.delta("unlink_parent", o, d, b)
    obs.delta("unlink_remaining_link", o, d + "/f", bf)
    b = obs.snap(o, base)
    o.rmdir(base + "/e")
    obs.delta("rmdir_parent", o, base, b)
    b = obs.snap(o, base)
    try:
        o.rmdir(d)
    except OSError:
        pass
    obs.delta("failed_rmdir_parent", o, base, b)
    b = obs.snap(o, base)
    o.chmod(d, 0o700)
    obs.delta("chmod_child_dir_leaves_parent", o, base, b)
    b = obs.snap(o, d)
    _mkfile(o, d + "/f", b"yy")
    obs.delta("write_child_leaves_dir", o, d, b)


@scenario()
def sc_times_rename(o: Any, base: str, obs: Recorder) -> None:
    o.mkdir(base + "/src")
    o.mkdir(base + "/dst")
    _mkfile(o, base + "/src/f")
    o.mkdir(base + "/src/sub")
    bs, bd, bf = (obs.snap(o, base + p) for p in ("/src", "/dst", "/src/f"))
    o.rename(base + "/src/f", base + "/dst/f")
    obs.delta("rename_src_parent", o, base + "/src", bs)
    obs.delta("rename_dst_parent", o, base + "/dst", bd)
    obs.delta("rename_moved_inode", o, base + "/dst/f", bf)
    b, bf = obs.snap(o, base + "/dst"), obs.snap(o, base + "/dst/f")
    o.rename(base + "/dst/f", base + "/dst/g")
    obs.delta("rename_same_dir_parent", o, base + "/dst", b)
    obs.delta("rename_same_dir_inode", o, base + "/dst/g", bf)
    _mkfile(o, base + "/dst/victim")
    o.link(base + "/dst/victim", base + "/victim_link")
    bv = obs.snap(o, base + "/victim_link")
    o.rename(base + "/dst/g", base + "/dst/victim")
    obs.delta("rename_over_victim_ctime", o, base + "/victim_link", bv)
    bsub = obs.snap(o, base + "/src/sub")
    bs, bd = obs.snap(o, base + "/src"), obs.snap(o, base + "/dst")
    o.rename(base + "/src/sub", base + "/dst/sub")
    obs.delta("rename_dir_moved", o, base + "/dst/sub", bsub)
    obs.delta("rename_dir_src_parent", o, base + "/src", bs)
    obs.delta("rename_dir_dst_parent", o, base + "/dst", bd)
    b = obs.snap(o, base + "/dst")
    o.rename(base + "/dst/victim", base + "/dst/victim")
    obs.delta("rename_to_self_parent", o, base + "/dst", b)


@scenario()
def sc_times_fd_after_unlink(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = o.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    o.unlink(p)
    b = obs.snap(o, fd)
    o.write(fd, b"x")
    obs.delta("write_unlinked", o, fd, b)
    b = obs.snap(o, fd)
    o.pread(fd, 1, 0)
    obs.delta("pread_unlinked", o, fd, b)
    b = obs.snap(o, fd)
    o.pwrite(fd, b"y", 5)
    obs.delta("pwrite_unlinked", o, fd, b)
    obs.call("size", lambda: o.fstat(fd).st_size)
    o.close(fd)
