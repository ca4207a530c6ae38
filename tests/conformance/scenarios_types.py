"""Scenarios: file types (regular, dir, symlink, devices, fifo, socket), mknod, scandir d_type."""

from __future__ import annotations

import os
import stat
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
def sc_type_regular(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = obs.fd("open_creat", o.open, p, os.O_WRONLY | os.O_CREAT, 0o644)
    obs.call("write", o.write, fd, b"hello")
    obs.call("close", o.close, fd)
    obs.call("lstat", o.lstat, p)
    obs.call("stat_same_as_lstat", lambda: o.stat(p) == o.lstat(p))
    _mkfile(o, base + "/empty")
    obs.call("lstat_empty", o.lstat, base + "/empty")
    # tmpfs allocates whole 4 KiB pages: 4097 bytes -> 16 blocks of 512.
    _mkfile(o, base + "/big", b"x" * 4097)
    obs.call("lstat_4097", o.lstat, base + "/big")
    obs.call("isfile", o.path.isfile, p)
    obs.call("getsize", o.path.getsize, base + "/big")


@scenario()
def sc_type_directory(o: Any, base: str, obs: Recorder) -> None:
    d = base + "/d"
    obs.call("mkdir", o.mkdir, d)
    # tmpfs reports 40 bytes for an empty dir and 20 more per entry (BOGO_DIRENT_SIZE).
    obs.call("stat_empty", o.stat, d)
    obs.call("mkdir_sub", o.mkdir, d + "/s")
    obs.call("stat_one_subdir", o.stat, d)
    _mkfile(o, d + "/f")
    obs.call("stat_subdir_and_file", o.stat, d)
    obs.call("rmdir_sub", o.rmdir, d + "/s")
    obs.call("stat_after_rmdir", o.stat, d)
    obs.call("isdir", o.path.isdir, d)


@scenario()
def sc_type_symlink(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/t", b"target")
    obs.call("symlink", o.symlink, "t", base + "/l")
    obs.call("lstat", o.lstat, base + "/l")
    obs.call("stat_follows", o.stat, base + "/l")
    obs.call("readlink", o.readlink, base + "/l")
    obs.call("islink", o.path.islink, base + "/l")
    # A long target (>= 128 bytes) no longer fits inline in the tmpfs inode: st_blocks 8.
    long_target = "x" * 200
    obs.call("symlink_long", o.symlink, long_target, base + "/long")
    obs.call("lstat_long", o.lstat, base + "/long")
    obs.call("readlink_long", o.readlink, base + "/long")
    for n in (127, 128, 129):
        o.symlink("y" * n, f"{base}/len{n}")
    obs.call("blocks_by_target_len", lambda: [o.lstat(f"{base}/len{n}").st_blocks
                                              for n in (127, 128, 129)])
    obs.call("symlink_abs", o.symlink, base + "/t", base + "/abs")
    obs.call("readlink_abs", o.readlink, base + "/abs")
    obs.call("stat_abs", o.stat, base + "/abs")
    obs.call("symlink_dangling", o.symlink, "nowhere", base + "/dang")
    obs.call("stat_dangling", o.stat, base + "/dang")
    obs.call("lstat_dangling", o.lstat, base + "/dang")
    obs.call("exists_dangling", o.path.exists, base + "/dang")
    obs.call("lexists_dangling", o.path.lexists, base + "/dang")
    obs.call("symlink_eexist", o.symlink, "t", base + "/l")
    obs.call("readlink_nonlink", o.readlink, base + "/t")
    obs.call("readlink_missing", o.readlink, base + "/missing")
    obs.call("symlink_empty_target", o.symlink, "", base + "/e")
    obs.call("symlink_to_dir", o.symlink, ".", base + "/dot")
    obs.call("lstat_dot_link", o.lstat, base + "/dot")


@scenario()
def sc_type_devices(o: Any, base: str, obs: Recorder) -> None:
    wh = base + "/wh"
    obs.call("mknod_whiteout", o.mknod, wh, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    obs.call("lstat_whiteout", o.lstat, wh)
    obs.call("open_whiteout", o.open, wh, os.O_RDONLY)
    obs.call("mknod_chr_1_3", o.mknod, base + "/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    obs.call("lstat_chr_1_3", o.lstat, base + "/null")
    obs.call("mknod_chr_big", o.mknod, base + "/big", stat.S_IFCHR | 0o600, os.makedev(300, 70000))
    obs.call("lstat_chr_big", o.lstat, base + "/big")
    # Observed: st_blksize of a block node comes from the *host's* device if it exists
    # (7:0 = loop0 gave 512); an unused major (250) keeps tmpfs's 4096.
    obs.call("mknod_blk", o.mknod, base + "/blk", stat.S_IFBLK | 0o660, os.makedev(250, 1))
    obs.call("lstat_blk", o.lstat, base + "/blk")
    obs.call("mknod_eexist", o.mknod, wh, stat.S_IFCHR, os.makedev(0, 0))
    obs.call("isfile_chr", o.path.isfile, wh)
    obs.call("exists_chr", o.path.exists, wh)
    # mknod's umask applies like open's
    obs.call("mknod_mode_777", o.mknod, base + "/m", stat.S_IFCHR | 0o777, os.makedev(1, 7))
    obs.call("lstat_mode_777", o.lstat, base + "/m")


@scenario()
def sc_dev_null_semantics(o: Any, base: str, obs: Recorder) -> None:
    # Observed: a char 1:3 node on tmpfs *is* /dev/null (tmpfs is not mounted nodev):
    # open succeeds, reads return b"" and writes are swallowed.
    p = base + "/null"
    o.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    fd = obs.fd("open", o.open, p, os.O_RDWR)
    if fd is not None:
        obs.call("write", o.write, fd, b"abc")
        obs.call("read", o.read, fd, 10)
        obs.call("fstat_size", lambda: o.fstat(fd).st_size)
        o.close(fd)


@scenario()
def sc_type_fifo(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/fifo"
    obs.call("mkfifo", o.mkfifo, p, 0o644)
    obs.call("lstat", o.lstat, p)
    obs.call("mknod_fifo", o.mknod, base + "/fifo2", stat.S_IFIFO | 0o600)
    obs.call("lstat_mknod_fifo", o.lstat, base + "/fifo2")
    obs.call("mkfifo_eexist", o.mkfifo, p)
    # No reader yet: a non-blocking writer open fails with ENXIO.
    obs.call("open_w_noreader", o.open, p, os.O_WRONLY | os.O_NONBLOCK)
    r = obs.fd("open_r_nonblock", o.open, p, os.O_RDONLY | os.O_NONBLOCK)
    w = obs.fd("open_w_with_reader", o.open, p, os.O_WRONLY | os.O_NONBLOCK)
    if r is not None and w is not None:
        obs.call("write", o.write, w, b"abc")
        obs.call("read", o.read, r, 10)
        obs.call("read_empty_with_writer", o.read, r, 10)
        o.close(w)
        obs.call("read_eof_no_writer", o.read, r, 10)
        obs.call("lseek_fifo", o.lseek, r, 0, os.SEEK_SET)
        o.close(r)
    obs.call("lstat_after_io", o.lstat, p)


@scenario()
def sc_type_socket(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/sock"
    obs.call("mknod_sock", o.mknod, p, stat.S_IFSOCK | 0o755)
    obs.call("lstat", o.lstat, p)
    obs.call("open_sock", o.open, p, os.O_RDONLY)
    obs.call("isfile", o.path.isfile, p)


@scenario()
def sc_mknod_errors(o: Any, base: str, obs: Recorder) -> None:
    # Observed: mknod with file type 0 creates a regular file; S_IFDIR is EPERM.
    obs.call("mknod_type0", o.mknod, base + "/r0", 0o644)
    obs.call("lstat_type0", o.lstat, base + "/r0")
    obs.call("mknod_reg", o.mknod, base + "/r1", stat.S_IFREG | 0o600)
    obs.call("lstat_reg", o.lstat, base + "/r1")
    obs.call("mknod_dir", o.mknod, base + "/d", stat.S_IFDIR | 0o755)
    obs.call("mknod_missing_parent", o.mknod, base + "/no/x", stat.S_IFIFO | 0o600)
    obs.call("mknod_under_file", o.mknod, base + "/r0/x", stat.S_IFIFO | 0o600)
    obs.call("mknod_bad_type", o.mknod, base + "/bad", 0o170000 | 0o600)
    obs.call("listdir", sorted, o.listdir(base))


@scenario()
def sc_scandir_dtypes(o: Any, base: str, obs: Recorder) -> None:
    d = base + "/d"
    o.mkdir(d)
    _mkfile(o, d + "/file", b"1")
    o.mkdir(d + "/sub")
    o.symlink("file", d + "/l_file")
    o.symlink("sub", d + "/l_dir")
    o.symlink("missing", d + "/l_dangling")
    o.mknod(d + "/chr", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    o.mknod(d + "/blk", stat.S_IFBLK | 0o600, os.makedev(250, 2))
    o.mkfifo(d + "/fifo")
    o.mknod(d + "/sock", stat.S_IFSOCK | 0o600)
    obs.scan("scandir", o, d)
    obs.call("listdir_sorted", lambda: sorted(o.listdir(d)))
    obs.scan("scandir_empty", o, d + "/sub")
    obs.scan("scandir_file", o, d + "/file")
    obs.scan("scandir_missing", o, d + "/nope")
    obs.scan("scandir_via_link", o, d + "/l_dir")


@scenario()
def sc_listdir_order(o: Any, base: str, obs: Recorder) -> None:
    # Observed: tmpfs (6.18) lists entries newest first, not in creation order.
    for name in ("b", "a", "c", "e", "d"):
        _mkfile(o, f"{base}/{name}")
    obs.call("order", o.listdir, base)
    o.unlink(base + "/c")
    _mkfile(o, base + "/c")
    obs.call("order_after_recreate", o.listdir, base)


@scenario()
def sc_listdir_errors(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f")
    obs.call("listdir_file", o.listdir, base + "/f")
    obs.call("listdir_missing", o.listdir, base + "/m")
    obs.call("listdir_trailing_slash", lambda: sorted(o.listdir(base + "/")))
    fd = o.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        obs.call("listdir_fd", lambda: sorted(o.listdir(fd)))
    finally:
        o.close(fd)
    obs.call("listdir_bytes", lambda: sorted(o.listdir(base.encode())))


def _user_mknod_setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)


@scenario(setup=_user_mknod_setup, user=True)
def sc_user_mknod(o: Any, base: str, obs: Recorder) -> None:
    # Since Linux 5.8 a whiteout (char 0/0) needs no CAP_MKNOD; other devices do.
    obs.call("mknod_whiteout", o.mknod, base + "/wh", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    obs.call("lstat_whiteout", o.lstat, base + "/wh")
    obs.call("mknod_chr_1_3", o.mknod, base + "/null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    obs.call("mknod_blk", o.mknod, base + "/blk", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    obs.call("mknod_fifo", o.mknod, base + "/fifo", stat.S_IFIFO | 0o600)
    obs.call("mkfifo", o.mkfifo, base + "/fifo2")
    obs.call("mknod_sock", o.mknod, base + "/sock", stat.S_IFSOCK | 0o600)
    obs.call("lstat_fifo", o.lstat, base + "/fifo")
    obs.call("listdir", lambda: sorted(o.listdir(base)))
