"""Scenarios: mkdir/rmdir/unlink, rename/replace, hard links and nlink, st_ino relations."""

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


def _read(o: Any, path: str) -> bytes:
    fd = o.open(path, os.O_RDONLY)
    try:
        out: bytes = o.read(fd, 1 << 16)
        return out
    finally:
        o.close(fd)


@scenario()
def sc_mkdir_rmdir_errors(o: Any, base: str, obs: Recorder) -> None:
    d = base + "/d"
    obs.call("mkdir", o.mkdir, d)
    obs.call("mkdir_eexist", o.mkdir, d)
    obs.call("mkdir_trailing_slash", o.mkdir, base + "/e/")
    obs.call("mkdir_missing_parent", o.mkdir, base + "/x/y")
    _mkfile(o, base + "/f")
    obs.call("mkdir_under_file", o.mkdir, base + "/f/y")
    obs.call("mkdir_over_file", o.mkdir, base + "/f")
    o.symlink("nowhere", base + "/dang")
    obs.call("mkdir_over_dangling_link", o.mkdir, base + "/dang")
    _mkfile(o, d + "/inner")
    obs.call("rmdir_nonempty", o.rmdir, d)
    obs.call("rmdir_file", o.rmdir, base + "/f")
    obs.call("rmdir_missing", o.rmdir, base + "/missing")
    obs.call("rmdir_dot", o.rmdir, base + "/e/.")
    obs.call("rmdir_dotdot", o.rmdir, base + "/e/..")
    o.symlink("e", base + "/le")
    obs.call("rmdir_symlink_to_dir", o.rmdir, base + "/le")
    obs.call("rmdir_symlink_trailing_slash", o.rmdir, base + "/le/")
    obs.call("rmdir_trailing_slash", o.rmdir, base + "/e/")
    obs.call("listdir", lambda: sorted(o.listdir(base)))


@scenario()
def sc_unlink_rules(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f", b"x")
    o.mkdir(base + "/d")
    o.symlink("f", base + "/l")
    o.symlink("d", base + "/ld")
    obs.call("unlink_dir", o.unlink, base + "/d")
    obs.call("unlink_missing", o.unlink, base + "/missing")
    obs.call("unlink_trailing_slash_file", o.unlink, base + "/f/")
    obs.call("unlink_link_to_dir_trailing_slash", o.unlink, base + "/ld/")
    obs.call("unlink_link", o.unlink, base + "/l")
    obs.call("target_survives", o.lstat, base + "/f")
    obs.call("unlink_link_to_dir", o.unlink, base + "/ld")
    obs.call("remove_file", o.remove, base + "/f")
    obs.call("unlink_through_file", o.unlink, base + "/d/../f")
    obs.call("unlink_dot", o.unlink, base + "/d/.")
    obs.call("listdir", lambda: sorted(o.listdir(base)))


@scenario()
def sc_rename_files(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/a", b"AAA")
    _mkfile(o, base + "/b", b"B")
    ino_a = o.lstat(base + "/a").st_ino
    obs.call("rename_over_file", o.rename, base + "/a", base + "/b")
    obs.record("keeps_source_ino", o.lstat(base + "/b").st_ino == ino_a)
    obs.call("content", _read, o, base + "/b")
    obs.call("source_gone", o.path.lexists, base + "/a")
    obs.call("rename_missing", o.rename, base + "/a", base + "/c")
    obs.call("rename_to_self", o.rename, base + "/b", base + "/b")
    obs.call("rename_into_missing_dir", o.rename, base + "/b", base + "/no/b")
    o.mkdir(base + "/d")
    obs.call("rename_file_over_dir", o.rename, base + "/b", base + "/d")
    obs.call("rename_file_trailing_slash", o.rename, base + "/b", base + "/c/")
    obs.call("rename_file_src_trailing_slash", o.rename, base + "/b/", base + "/c")
    obs.call("replace", o.replace, base + "/b", base + "/d/b")
    obs.call("listdir_d", o.listdir, base + "/d")
    o.symlink("d/b", base + "/l")
    obs.call("rename_symlink", o.rename, base + "/l", base + "/l2")
    obs.call("renamed_link_target", o.readlink, base + "/l2")
    obs.call("link_still_resolves", o.path.isfile, base + "/l2")
    # Observed: renaming from or onto "." is EBUSY (not EINVAL).
    obs.call("rename_dot", o.rename, base + "/d/.", base + "/x")
    obs.call("rename_onto_dot", o.rename, base + "/l2", base + "/d/.")
    obs.call("listdir", lambda: sorted(o.listdir(base)))


@scenario()
def sc_rename_dirs(o: Any, base: str, obs: Recorder) -> None:
    for d in ("a", "a/sub", "b", "c"):
        o.mkdir(f"{base}/{d}")
    _mkfile(o, base + "/c/f")
    _mkfile(o, base + "/file")
    obs.call("dir_over_empty_dir", o.rename, base + "/a", base + "/b")
    obs.call("b_children", o.listdir, base + "/b")
    obs.call("dir_over_nonempty", o.rename, base + "/b", base + "/c")
    obs.call("dir_over_file", o.rename, base + "/b", base + "/file")
    obs.call("dir_into_own_subdir", o.rename, base + "/b", base + "/b/sub/x")
    obs.call("dir_onto_own_subdir", o.rename, base + "/b", base + "/b/sub")
    obs.call("dir_onto_own_parent", o.rename, base + "/b/sub", base + "/b")
    obs.call("dir_trailing_slash_dst", o.rename, base + "/c", base + "/e/")
    obs.call("dir_trailing_slash_src", o.rename, base + "/e/", base + "/g")
    obs.call("listdir", lambda: sorted(o.listdir(base)))
    obs.call("stat_base", o.stat, base)
    obs.call("stat_b", o.stat, base + "/b")
    obs.call("move_subdir_out", o.rename, base + "/b/sub", base + "/g/sub")
    obs.call("stat_b_after", o.stat, base + "/b")
    obs.call("stat_g_after", o.stat, base + "/g")
    obs.call("rename_base_into_child", o.rename, base, base + "/g/sub/x")


@scenario()
def sc_rename_hardlinks_same_inode(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/a", b"x")
    o.link(base + "/a", base + "/b")
    # rename() between two names of the same inode does nothing: both names stay.
    obs.call("rename_same_inode", o.rename, base + "/a", base + "/b")
    obs.call("listdir", lambda: sorted(o.listdir(base)))
    obs.call("nlink", lambda: o.lstat(base + "/a").st_nlink)


@scenario()
def sc_hardlinks(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/a", b"one")
    obs.call("link", o.link, base + "/a", base + "/b")
    obs.call("stat_a", o.lstat, base + "/a")
    obs.call("stat_b", o.lstat, base + "/b")
    fd = o.open(base + "/b", os.O_WRONLY | os.O_APPEND)
    o.write(fd, b"+two")
    o.close(fd)
    obs.call("write_through_other_name", _read, o, base + "/a")
    obs.call("link_eexist", o.link, base + "/a", base + "/b")
    o.mkdir(base + "/d")
    obs.call("link_dir", o.link, base + "/d", base + "/d2")
    obs.call("link_missing", o.link, base + "/missing", base + "/m2")
    obs.call("link_into_missing_dir", o.link, base + "/a", base + "/no/x")
    obs.call("link_trailing_slash", o.link, base + "/a", base + "/c/")
    obs.call("unlink_a", o.unlink, base + "/a")
    obs.call("stat_b_after_unlink", o.lstat, base + "/b")
    o.symlink("b", base + "/sl")
    obs.call("link_symlink_nofollow", o.link, base + "/sl", base + "/sl2", follow_symlinks=False)
    obs.call("lstat_sl2", o.lstat, base + "/sl2")
    # Observed: CPython 3.11's os.link(follow_symlinks=True) without dir_fd calls link(2),
    # which does NOT follow: sl3 becomes a second name of the symlink (and a dangling
    # symlink can be linked "with follow").
    obs.call("link_symlink_follow", o.link, base + "/sl", base + "/sl3", follow_symlinks=True)
    obs.call("lstat_sl3", o.lstat, base + "/sl3")
    obs.call("lstat_b_after_links", o.lstat, base + "/b")
    o.symlink("nowhere", base + "/dang")
    obs.call("link_dangling_follow", o.link, base + "/dang", base + "/dang2", follow_symlinks=True)
    obs.call("link_dangling_nofollow", o.link, base + "/dang", base + "/dang3", follow_symlinks=False)
    o.mkfifo(base + "/fifo")
    obs.call("link_fifo", o.link, base + "/fifo", base + "/fifo2")
    obs.call("lstat_fifo2", o.lstat, base + "/fifo2")


@scenario()
def sc_dir_nlink(o: Any, base: str, obs: Recorder) -> None:
    d = base + "/d"
    o.mkdir(d)
    obs.call("empty", lambda: o.stat(d).st_nlink)
    for name in ("s1", "s2", "s3"):
        o.mkdir(f"{d}/{name}")
    _mkfile(o, d + "/f")
    o.symlink("s1", d + "/l")
    obs.call("three_subdirs", lambda: o.stat(d).st_nlink)
    obs.call("base", lambda: o.stat(base).st_nlink)
    o.rmdir(d + "/s3")
    obs.call("after_rmdir", lambda: o.stat(d).st_nlink)
    o.rename(d + "/s2", base + "/s2")
    obs.call("after_move_out", lambda: o.stat(d).st_nlink)
    obs.call("base_after_move_in", lambda: o.stat(base).st_nlink)
    obs.call("sub_nlink", lambda: o.stat(d + "/s1").st_nlink)
    obs.call("dot_and_dotdot", lambda: [o.stat(d + "/s1/..").st_ino == o.stat(d).st_ino,
                                         o.stat(d + "/.").st_ino == o.stat(d).st_ino])
    # An open directory that is removed keeps working through its fd with nlink 0.
    fd = o.open(d + "/s1", os.O_RDONLY | os.O_DIRECTORY)
    o.rmdir(d + "/s1")
    obs.call("rmdir_open_dir_fstat", o.fstat, fd)
    obs.call("create_in_removed_dir", o.open, "x", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    obs.call("listdir_removed_dir_fd", o.listdir, fd)
    o.close(fd)


@scenario()
def sc_inode_identity(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/a", b"1")
    _mkfile(o, base + "/b", b"2")
    o.mkdir(base + "/d")
    sa = o.lstat(base + "/a")
    obs.record("stable_repeat", o.lstat(base + "/a").st_ino == sa.st_ino)
    fd = o.open(base + "/a", os.O_WRONLY)
    o.write(fd, b"more")
    obs.record("fstat_matches_lstat", o.fstat(fd).st_ino == sa.st_ino)
    o.close(fd)
    obs.record("stable_after_write", o.lstat(base + "/a").st_ino == sa.st_ino)
    o.rename(base + "/a", base + "/d/a2")
    obs.record("stable_after_rename", o.lstat(base + "/d/a2").st_ino == sa.st_ino)
    inos = [o.lstat(base + p).st_ino for p in ("/b", "/d", "/d/a2", "")]
    obs.record("unique", len(set(inos)) == len(inos))
    obs.record("dev_same", len({o.lstat(base + p).st_dev for p in ("/b", "/d", "")}) == 1)
    # Recreating a name gives a fresh inode (tmpfs never reuses a live inode number).
    o.unlink(base + "/b")
    _mkfile(o, base + "/b", b"new")
    obs.record("recreated_differs_from_live", o.lstat(base + "/b").st_ino not in inos[1:])
    obs.call("labels", lambda: [o.lstat(base + p) for p in ("", "/b", "/d", "/d/a2")])
