"""Scenarios: os.open flags, read/write/pread/pwrite/lseek, fstat, ftruncate, dup, umask."""

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


def _read_all(o: Any, path: str) -> bytes:
    fd = o.open(path, os.O_RDONLY)
    try:
        out: bytes = o.read(fd, 1 << 16)
        return out
    finally:
        o.close(fd)


@scenario()
def sc_open_creat_excl(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = obs.fd("creat_excl_new", o.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if fd is not None:
        o.close(fd)
    obs.call("creat_excl_again", o.open, p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fd = obs.fd("excl_without_creat", o.open, p, os.O_RDONLY | os.O_EXCL)
    if fd is not None:
        o.close(fd)
    obs.call("open_missing", o.open, base + "/missing", os.O_RDONLY)
    obs.call("creat_missing_parent", o.open, base + "/no/f", os.O_WRONLY | os.O_CREAT, 0o644)
    o.symlink("target", base + "/dang")
    obs.call("creat_excl_dangling", o.open, base + "/dang", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    # O_CREAT without O_EXCL follows a dangling symlink and creates its target.
    fd = obs.fd("creat_dangling", o.open, base + "/dang", os.O_WRONLY | os.O_CREAT, 0o640)
    if fd is not None:
        o.close(fd)
    obs.call("lstat_created_target", o.lstat, base + "/target")
    o.mkdir(base + "/d")
    obs.call("creat_on_dir", o.open, base + "/d", os.O_WRONLY | os.O_CREAT, 0o644)
    obs.call("creat_rdonly_on_dir", o.open, base + "/d", os.O_RDONLY | os.O_CREAT, 0o644)
    obs.call("creat_trailing_slash", o.open, base + "/new/", os.O_WRONLY | os.O_CREAT, 0o644)
    obs.call("creat_excl_trailing_slash_dir", o.open, base + "/d/", os.O_RDONLY | os.O_CREAT | os.O_EXCL)
    obs.call("creat_file_trailing_slash", o.open, base + "/f/", os.O_RDONLY)
    obs.call("listdir", lambda: sorted(o.listdir(base)))


@scenario()
def sc_open_trunc_append(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p, b"0123456789")
    fd = o.open(p, os.O_WRONLY | os.O_APPEND)
    obs.call("lseek_start", o.lseek, fd, 0, os.SEEK_SET)
    obs.call("append_write", o.write, fd, b"AB")
    obs.call("offset_after_append", o.lseek, fd, 0, os.SEEK_CUR)
    # Linux quirk: pwrite on an O_APPEND fd ignores the offset and appends.
    obs.call("pwrite_append", o.pwrite, fd, b"P", 0)
    o.close(fd)
    obs.call("content_after_append", _read_all, o, p)
    # O_TRUNC with O_RDONLY still truncates on Linux.
    fd = o.open(p, os.O_RDONLY | os.O_TRUNC)
    obs.call("fstat_after_rdonly_trunc", o.fstat, fd)
    o.close(fd)
    _mkfile(o, p, b"abc")
    fd = o.open(p, os.O_RDWR | os.O_TRUNC)
    obs.call("read_after_trunc", o.read, fd, 10)
    obs.call("write_after_trunc", o.write, fd, b"xy")
    o.close(fd)
    obs.call("content_after_trunc", _read_all, o, p)
    fd = o.open(p, os.O_RDWR | os.O_APPEND)
    obs.call("read_append_fd_from_start", o.read, fd, 10)
    o.close(fd)


@scenario()
def sc_open_nofollow_directory(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f", b"data")
    o.mkdir(base + "/d")
    o.symlink("f", base + "/lf")
    o.symlink("d", base + "/ld")
    o.symlink("nowhere", base + "/ln")
    obs.call("nofollow_link", o.open, base + "/lf", os.O_RDONLY | os.O_NOFOLLOW)
    obs.call("nofollow_dangling", o.open, base + "/ln", os.O_RDONLY | os.O_NOFOLLOW)
    obs.call("nofollow_creat_dangling", o.open, base + "/ln", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW)
    fd = obs.fd("nofollow_regular", o.open, base + "/f", os.O_RDONLY | os.O_NOFOLLOW)
    if fd is not None:
        o.close(fd)
    # Observed: O_DIRECTORY|O_NOFOLLOW on a symlink to a dir gives ENOTDIR (not ELOOP),
    # and O_CREAT|O_DIRECTORY is EINVAL (since 6.4) without creating anything.
    obs.call("directory_on_file", o.open, base + "/f", os.O_RDONLY | os.O_DIRECTORY)
    fd = obs.fd("directory_on_dir", o.open, base + "/d", os.O_RDONLY | os.O_DIRECTORY)
    if fd is not None:
        obs.call("read_dir_fd", o.read, fd, 10)
        obs.call("write_dir_fd", o.write, fd, b"x")
        obs.call("fstat_dir_fd", o.fstat, fd)
        o.close(fd)
    fd = obs.fd("directory_via_link", o.open, base + "/ld", os.O_RDONLY | os.O_DIRECTORY)
    if fd is not None:
        o.close(fd)
    obs.call("directory_nofollow_link", o.open, base + "/ld", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    obs.call("dir_wronly", o.open, base + "/d", os.O_WRONLY)
    obs.call("dir_rdwr", o.open, base + "/d", os.O_RDWR)
    obs.call("dir_trunc", o.open, base + "/d", os.O_RDONLY | os.O_TRUNC)
    obs.call("directory_creat_new", o.open, base + "/nd", os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY, 0o644)
    obs.call("lexists_nd", o.path.lexists, base + "/nd")
    obs.call("nofollow_parent_link_ok", lambda: o.close(o.open(base + "/ld/../f", os.O_RDONLY | os.O_NOFOLLOW)))


@scenario()
def sc_access_modes(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p, b"hello")
    fd = o.open(p, os.O_RDONLY)
    obs.call("write_on_rdonly", o.write, fd, b"x")
    obs.call("pwrite_on_rdonly", o.pwrite, fd, b"x", 0)
    obs.call("ftruncate_on_rdonly", o.ftruncate, fd, 0)
    obs.call("read_on_rdonly", o.read, fd, 2)
    o.close(fd)
    fd = o.open(p, os.O_WRONLY)
    obs.call("read_on_wronly", o.read, fd, 2)
    obs.call("pread_on_wronly", o.pread, fd, 2, 0)
    obs.call("write_on_wronly", o.write, fd, b"J")
    o.close(fd)
    fd = o.open(p, os.O_RDWR)
    obs.call("read_rdwr", o.read, fd, 2)
    obs.call("write_rdwr", o.write, fd, b"LL")
    obs.call("lseek_rdwr", o.lseek, fd, 0, os.SEEK_SET)
    obs.call("read_back", o.read, fd, 100)
    o.close(fd)
    obs.call("read_closed_fd", o.read, fd, 1)
    obs.call("close_twice", o.close, fd)
    obs.call("fstat_closed", o.fstat, fd)


@scenario()
def sc_lseek_and_holes(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = o.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    obs.call("write", o.write, fd, b"abc")
    obs.call("seek_end", o.lseek, fd, 0, os.SEEK_END)
    obs.call("seek_cur_back", o.lseek, fd, -2, os.SEEK_CUR)
    obs.call("read_after_seek", o.read, fd, 10)
    obs.call("seek_negative", o.lseek, fd, -1, os.SEEK_SET)
    obs.call("seek_bad_whence", o.lseek, fd, 0, 42)
    obs.call("seek_past_end", o.lseek, fd, 8195, os.SEEK_SET)
    obs.call("read_past_end", o.read, fd, 10)
    obs.call("write_past_end", o.write, fd, b"Z")
    obs.call("fstat_sparse", o.fstat, fd)
    obs.call("pread_hole", o.pread, fd, 6, 1)
    obs.call("seek_data_0", o.lseek, fd, 0, os.SEEK_DATA)
    obs.call("seek_hole_0", o.lseek, fd, 0, os.SEEK_HOLE)
    obs.call("seek_data_in_hole", o.lseek, fd, 5000, os.SEEK_DATA)
    obs.call("seek_data_past_eof", o.lseek, fd, 9000, os.SEEK_DATA)
    obs.call("offset", o.lseek, fd, 0, os.SEEK_CUR)
    o.close(fd)


@scenario()
def sc_pread_pwrite(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = o.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    o.write(fd, b"0123456789")
    obs.call("offset_before", o.lseek, fd, 3, os.SEEK_SET)
    obs.call("pread", o.pread, fd, 4, 5)
    obs.call("pread_eof", o.pread, fd, 4, 100)
    obs.call("pread_short", o.pread, fd, 4, 8)
    obs.call("pwrite", o.pwrite, fd, b"XY", 1)
    obs.call("pwrite_extend", o.pwrite, fd, b"E", 12)
    obs.call("pwrite_negative", o.pwrite, fd, b"E", -1)
    obs.call("pread_negative", o.pread, fd, 1, -1)
    obs.call("offset_after", o.lseek, fd, 0, os.SEEK_CUR)
    obs.call("read_from_offset", o.read, fd, 100)
    obs.call("write_empty", o.write, fd, b"")
    obs.call("read_zero", o.read, fd, 0)
    o.close(fd)
    obs.call("content", _read_all, o, p)


@scenario()
def sc_dup_fstat_ftruncate(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = o.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    o.write(fd, b"abcdef")
    fd2 = obs.fd("dup", o.dup, fd)
    assert fd2 is not None
    obs.record("dup_is_new_number", fd2 != fd)
    obs.call("seek_via_dup", o.lseek, fd2, 1, os.SEEK_SET)
    obs.call("read_shares_offset", o.read, fd, 2)
    obs.call("fstat_same_ino", lambda: o.fstat(fd).st_ino == o.lstat(p).st_ino)
    obs.call("fstat", o.fstat, fd2)
    o.close(fd)
    obs.call("dup_survives_close", o.read, fd2, 2)
    obs.call("ftruncate_shrink", o.ftruncate, fd2, 2)
    obs.call("fstat_shrunk", o.fstat, fd2)
    obs.call("read_at_offset_past_size", o.read, fd2, 4)
    obs.call("ftruncate_extend", o.ftruncate, fd2, 5000)
    obs.call("fstat_extended", o.fstat, fd2)
    obs.call("ftruncate_negative", o.ftruncate, fd2, -1)
    obs.call("pread_extended", o.pread, fd2, 4, 0)
    o.close(fd2)
    obs.call("dup_closed", o.dup, fd2)
    obs.call("ftruncate_closed", o.ftruncate, fd2, 0)


@scenario()
def sc_unlinked_open_file(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    fd = o.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    o.write(fd, b"still here")
    obs.call("unlink", o.unlink, p)
    obs.call("lexists", o.path.lexists, p)
    obs.call("listdir", o.listdir, base)
    obs.call("fstat", o.fstat, fd)
    obs.call("pread", o.pread, fd, 100, 0)
    obs.call("write", o.write, fd, b"!")
    obs.call("fstat_after_write", o.fstat, fd)
    obs.call("ftruncate", o.ftruncate, fd, 3)
    obs.call("pread_after_truncate", o.pread, fd, 100, 0)
    fd2 = o.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    obs.record("new_file_other_inode", o.fstat(fd2).st_ino != o.fstat(fd).st_ino)
    obs.call("new_file_empty", o.read, fd2, 10)
    o.close(fd2)
    o.close(fd)


@scenario()
def sc_open_umask(o: Any, base: str, obs: Recorder) -> None:
    obs.call("umask_default", o.umask, 0o022)
    o.close(o.open(base + "/a", os.O_WRONLY | os.O_CREAT, 0o777))
    obs.call("mode_777_umask_022", lambda: oct(o.stat(base + "/a").st_mode))
    obs.call("umask_set_077", o.umask, 0o077)
    o.close(o.open(base + "/b", os.O_WRONLY | os.O_CREAT, 0o666))
    obs.call("mode_666_umask_077", lambda: oct(o.stat(base + "/b").st_mode))
    o.mkdir(base + "/d", 0o777)
    obs.call("mkdir_umask_077", lambda: oct(o.stat(base + "/d").st_mode))
    o.mkfifo(base + "/p", 0o666)
    obs.call("mkfifo_umask_077", lambda: oct(o.stat(base + "/p").st_mode))
    o.symlink("x", base + "/l")
    obs.call("symlink_ignores_umask", lambda: oct(o.lstat(base + "/l").st_mode))
    obs.call("umask_restore", o.umask, 0o022)
    # Opening an existing file with a mode argument does not chmod it.
    fd = o.open(base + "/a", os.O_RDONLY | os.O_CREAT, 0o600)
    o.close(fd)
    obs.call("existing_mode_unchanged", lambda: oct(o.stat(base + "/a").st_mode))
    # Special bits in the create mode survive (umask only masks permission bits).
    o.close(o.open(base + "/s", os.O_WRONLY | os.O_CREAT, 0o4755))
    obs.call("creat_setuid_mode", lambda: oct(o.stat(base + "/s").st_mode))
    o.mkdir(base + "/sticky", 0o1777)
    obs.call("mkdir_sticky_mode", lambda: oct(o.stat(base + "/sticky").st_mode))
    o.mkdir(base + "/suid", 0o4777)
    obs.call("mkdir_setuid_dropped", lambda: oct(o.stat(base + "/suid").st_mode))


@scenario()
def sc_truncate_path(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p, b"0123456789")
    obs.call("shrink", o.truncate, p, 4)
    obs.call("content_shrunk", _read_all, o, p)
    obs.call("extend", o.truncate, p, 6)
    obs.call("content_extended", _read_all, o, p)
    obs.call("big_sparse", o.truncate, p, 1 << 20)
    obs.call("stat_sparse", o.stat, p)
    obs.call("negative", o.truncate, p, -1)
    # Observed: the length is checked before the path is looked up.
    obs.call("negative_missing", o.truncate, base + "/missing", -1)
    obs.call("missing", o.truncate, base + "/missing", 0)
    o.mkdir(base + "/d")
    obs.call("dir", o.truncate, base + "/d", 0)
    o.symlink("f", base + "/l")
    obs.call("via_symlink", o.truncate, base + "/l", 2)
    obs.call("target_size", o.path.getsize, p)
    o.mkfifo(base + "/fifo")
    obs.call("fifo", o.truncate, base + "/fifo", 0)
    fd = o.open(p, os.O_RDWR)
    obs.call("fd_as_path", o.truncate, fd, 1)
    obs.call("size_after_fd_truncate", o.path.getsize, p)
    o.close(fd)
