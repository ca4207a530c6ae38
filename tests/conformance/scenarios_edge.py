"""Scenarios: corner cases of names and fds (empty/odd names, bytes paths, O_PATH,
O_TMPFILE, access mode 3, open victims of rename/rmdir, fd-taking path functions)."""

from __future__ import annotations

import os
from typing import Any

from .harness import scenario
from .recorder import Recorder

W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _mkfile(o: Any, path: Any, data: bytes = b"", mode: int = 0o644) -> None:
    fd = o.open(path, W, mode)
    try:
        if data:
            o.write(fd, data)
    finally:
        o.close(fd)


@scenario()
def sc_odd_names(o: Any, base: str, obs: Recorder) -> None:
    for i, name in enumerate(("...", " ", "new\nline", "ünï", "a\\b", "-", ".hidden", "*")):
        obs.call(f"create {i}", _mkfile, o, f"{base}/{name}")
    obs.call("listdir", lambda: sorted(o.listdir(base)))
    obs.call("open_empty", o.open, "", os.O_RDONLY)
    obs.call("unlink_empty", o.unlink, "")
    obs.call("rename_to_empty", o.rename, base + "/...", "")
    obs.call("mkdir_dot", o.mkdir, base + "/.")
    obs.call("mkdir_dotdot", o.mkdir, base + "/..")
    obs.call("mkdir_sub_dot", o.mkdir, base + "/x/.")
    obs.call("nul_in_path", o.stat, base + "/a\0b")
    obs.call("nul_in_symlink_target", o.symlink, "a\0b", base + "/nul")
    obs.call("readlink_root", o.readlink, "/")
    # Observed: faccessat with an invalid mode bit is EINVAL, so os.access returns False.
    obs.call("access_bad_mode", o.access, base, 8)
    obs.call("bytes_listdir", lambda: sorted(o.listdir(base.encode()))[:3])
    o.symlink("ünï", base + "/ul")
    obs.call("bytes_readlink", o.readlink, (base + "/ul").encode())
    obs.call("str_readlink", o.readlink, base + "/ul")
    obs.call("bytes_scandir_names", lambda: sorted(e.name for e in o.scandir(base.encode()))[:2])


@scenario()
def sc_create_excl_and_dir_flags(o: Any, base: str, obs: Recorder) -> None:
    o.mkdir(base + "/d")
    _mkfile(o, base + "/f")
    o.symlink("nowhere", base + "/dang")
    obs.call("creat_excl_on_dir", o.open, base + "/d", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    obs.call("wronly_directory_on_file", o.open, base + "/f", os.O_WRONLY | os.O_DIRECTORY)
    obs.call("wronly_directory_on_dir", o.open, base + "/d", os.O_WRONLY | os.O_DIRECTORY)
    obs.call("link_onto_dangling", o.link, base + "/f", base + "/dang")
    obs.call("rename_file_over_link_to_dir", lambda: (o.symlink("d", base + "/ld"),
                                                      o.rename(base + "/f", base + "/ld"))[1])
    obs.call("after", lambda: [sorted(o.listdir(base)), oct(o.lstat(base + "/ld").st_mode)])
    o.mkdir(base + "/e")
    o.symlink("e", base + "/le")
    obs.call("rename_dir_over_link_to_dir", o.rename, base + "/d", base + "/le")
    obs.call("mkdir_sgid_mode_plain_parent", lambda: (o.mkdir(base + "/g", 0o2755),
                                                      oct(o.stat(base + "/g").st_mode))[1])
    # Observed: access mode 3 (O_RDWR|O_WRONLY) opens, but neither reads nor writes.
    fd = obs.fd("accmode_3", o.open, base + "/ld", 3)
    if fd is not None:
        obs.call("accmode_3_read", o.read, fd, 1)
        obs.call("accmode_3_write", o.write, fd, b"x")
        o.close(fd)


@scenario()
def sc_open_victims(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/old", b"old data")
    _mkfile(o, base + "/new", b"new")
    fd = o.open(base + "/old", os.O_RDONLY)
    o.rename(base + "/new", base + "/old")
    obs.call("victim_fd_reads_old", o.read, fd, 100)
    obs.call("victim_fd_nlink", lambda: o.fstat(fd).st_nlink)
    obs.call("name_now_new", lambda: o.stat(base + "/old").st_size)
    o.close(fd)
    o.mkdir(base + "/vd")
    o.mkdir(base + "/src")
    dfd = o.open(base + "/vd", os.O_RDONLY | os.O_DIRECTORY)
    o.rename(base + "/src", base + "/vd")
    obs.call("victim_dir_fstat", o.fstat, dfd)
    obs.call("victim_dir_listdir", o.listdir, dfd)
    o.close(dfd)
    _mkfile(o, base + "/f", b"12345")
    fd = o.open(base + "/f", os.O_RDWR)
    obs.call("lseek_end_negative_beyond", o.lseek, fd, -10, os.SEEK_END)
    obs.call("lseek_end_minus_2", o.lseek, fd, -2, os.SEEK_END)
    obs.call("read_tail", o.read, fd, 10)
    obs.call("stat_by_fd", lambda: o.stat(fd).st_size)
    obs.call("chmod_by_fd", o.chmod, fd, 0o600)
    obs.call("chown_by_fd", o.chown, fd, 3, 4)
    obs.call("after_fd_attr", o.stat, base + "/f")
    obs.call("getxattr_closed_fd", lambda: (o.close(fd), o.getxattr(fd, "user.x"))[1])
    dfd = o.open(base, os.O_RDONLY | os.O_DIRECTORY)
    obs.call("lseek_dir_fd", o.lseek, dfd, 0, os.SEEK_SET)
    o.close(dfd)


@scenario()
def sc_o_path_and_tmpfile(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f", b"data")
    o.symlink("f", base + "/l")
    o.mkdir(base + "/d")
    fd = obs.fd("o_path_symlink", o.open, base + "/l", os.O_PATH | os.O_NOFOLLOW)
    if fd is not None:
        obs.call("o_path_fstat", lambda: oct(o.fstat(fd).st_mode))
        obs.call("o_path_read", o.read, fd, 1)
        o.close(fd)
    fd = obs.fd("o_path_file", o.open, base + "/f", os.O_PATH)
    if fd is not None:
        obs.call("o_path_file_read", o.read, fd, 1)
        obs.call("o_path_as_dir_fd", o.stat, "x", dir_fd=fd)
        o.close(fd)
    fd = obs.fd("o_tmpfile", o.open, base + "/d", os.O_TMPFILE | os.O_RDWR, 0o600)
    if fd is not None:
        obs.call("tmpfile_write", o.write, fd, b"anon")
        obs.call("tmpfile_fstat", o.fstat, fd)
        obs.call("tmpfile_dir_empty", o.listdir, base + "/d")
        o.close(fd)
    obs.call("o_tmpfile_on_file", o.open, base + "/f", os.O_TMPFILE | os.O_RDWR, 0o600)
    obs.call("o_tmpfile_rdonly", o.open, base + "/d", os.O_TMPFILE | os.O_RDONLY, 0o600)
