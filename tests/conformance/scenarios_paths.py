"""Scenarios: path walk (symlink hops, '..', length limits, trailing slashes), mounts/EXDEV,
cwd and relative paths, makedirs/walk, dir_fd= and follow_symlinks=, chroot."""

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
def sc_symlink_hops(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/target", b"t")
    # l0 -> target, l1 -> l0, ... : opening lN takes N+1 hops.
    o.symlink("target", base + "/l0")
    for i in range(1, 42):
        o.symlink(f"l{i - 1}", f"{base}/l{i}")
    obs.call("hops_40", lambda: o.stat(base + "/l39").st_size)
    obs.call("hops_41", o.stat, base + "/l40")
    obs.call("hops_42", o.stat, base + "/l41")
    obs.call("open_hops_41", o.open, base + "/l40", os.O_RDONLY)
    obs.call("lstat_deep_chain", lambda: o.lstat(base + "/l41").st_size)
    obs.call("readlink_deep_chain", o.readlink, base + "/l41")
    o.symlink("self", base + "/self")
    obs.call("self_loop", o.stat, base + "/self")
    o.symlink("cb", base + "/ca")
    o.symlink("ca", base + "/cb")
    obs.call("two_cycle", o.stat, base + "/ca")
    obs.call("two_cycle_open_creat", o.open, base + "/ca", os.O_WRONLY | os.O_CREAT, 0o644)
    obs.call("exists_loop", o.path.exists, base + "/self")
    # Hops count across intermediate components too.
    o.mkdir(base + "/d")
    o.symlink("d", base + "/dl0")
    for i in range(1, 41):
        o.symlink(f"dl{i - 1}", f"{base}/dl{i}")
    obs.call("dir_hops_40_mid_path", lambda: o.listdir(base + "/dl39/"))
    obs.call("dir_hops_41_mid_path", o.stat, base + "/dl40/x")


@scenario()
def sc_dotdot_physical(o: Any, base: str, obs: Recorder) -> None:
    o.makedirs(base + "/a/b/inner")
    _mkfile(o, base + "/a/b/x", b"physical")
    _mkfile(o, base + "/x", b"lexical")
    o.symlink("a/b/inner", base + "/dirlink")
    fd = o.open(base + "/dirlink/../x", os.O_RDONLY)
    obs.call("dotdot_after_link", o.read, fd, 100)
    o.close(fd)
    obs.call("listdir_dotdot", lambda: sorted(o.listdir(base + "/dirlink/..")))
    o.symlink("../..", base + "/a/b/inner/up")
    obs.call("link_with_dotdot_target", lambda: sorted(o.listdir(base + "/a/b/inner/up")))
    obs.call("dotdot_of_file", o.stat, base + "/x/..")
    obs.call("dot_of_file", o.stat, base + "/x/.")
    obs.call("dotdot_missing", o.stat, base + "/missing/..")
    obs.call("many_dotdots_stop_at_root", lambda: o.stat(base + "/" + "../" * 64).st_ino
             == o.stat("/").st_ino)
    o.symlink("/", base + "/rootlink")
    obs.call("abs_link_to_root", lambda: o.stat(base + "/rootlink").st_ino == o.stat("/").st_ino)


@scenario()
def sc_name_too_long(o: Any, base: str, obs: Recorder) -> None:
    n255 = "n" * 255
    n256 = "n" * 256
    obs.call("create_255", lambda: o.close(o.open(f"{base}/{n255}", W, 0o644)))
    obs.call("create_256", o.open, f"{base}/{n256}", W, 0o644)
    obs.call("mkdir_256", o.mkdir, f"{base}/{n256}")
    obs.call("lstat_256", o.lstat, f"{base}/{n256}")
    obs.call("lstat_256_missing_parent", o.lstat, f"{base}/missing/{n256}")
    obs.call("lstat_256_in_middle", o.lstat, f"{base}/{n256}/x")
    obs.call("symlink_name_256", o.symlink, "t", f"{base}/{n256}")
    obs.call("rename_to_256", o.rename, f"{base}/{n255}", f"{base}/{n256}")
    obs.call("link_to_256", o.link, f"{base}/{n255}", f"{base}/{n256}")
    obs.call("unlink_256", o.unlink, f"{base}/{n256}")
    obs.call("mknod_256", o.mkfifo, f"{base}/{n256}")
    obs.call("listdir_255", o.listdir, base)
    # Multibyte: 128 two-byte characters = 256 bytes.
    obs.call("create_256_bytes_utf8", o.open, base + "/" + "é" * 128, W, 0o644)
    obs.call("create_254_bytes_utf8", lambda: o.close(o.open(base + "/" + "é" * 127, W, 0o644)))


def _path_of_len(prefix: str, total: int) -> str:
    """A path string of exactly ``total`` bytes under ``prefix``, components <= 200 bytes."""
    p = prefix
    while len(p) < total:
        room = total - len(p) - 1
        p += "/" + "c" * min(200, room) if room > 0 else "/"
    assert len(p) == total, (len(p), total)
    return p


@scenario()
def sc_path_too_long(o: Any, base: str, obs: Recorder) -> None:
    # PATH_MAX is 4096 including the NUL: 4095 bytes are walked (ENOENT), 4096 are not.
    obs.call("lstat_4095", o.lstat, _path_of_len(base, 4095))
    obs.call("lstat_4096", o.lstat, _path_of_len(base, 4096))
    obs.call("lstat_5000", o.lstat, _path_of_len(base, 5000))
    obs.call("open_5000", o.open, _path_of_len(base, 5000), os.O_RDONLY)
    obs.call("mkdir_5000", o.mkdir, _path_of_len(base, 5000))
    obs.call("symlink_target_4095", o.symlink, "t" * 4095, base + "/l4095")
    obs.call("lstat_target_4095", lambda: o.lstat(base + "/l4095").st_size)
    obs.call("symlink_target_4096", o.symlink, "t" * 4096, base + "/l4096")
    obs.call("symlink_target_5000", o.symlink, "t" * 5000, base + "/l5000")
    # A relative path may be short even when the absolute one is long.
    o.chdir(base)
    d = "d" * 200
    cur = base
    for _ in range(21):  # 21 * 201 bytes: beyond PATH_MAX whatever the base
        o.mkdir(d)
        o.chdir(d)
        cur += "/" + d
    obs.call("getcwd_beyond_path_max", lambda: len(o.getcwd()) - len(base))
    _mkfile(o, "deep", b"deep")
    obs.call("stat_relative_deep", lambda: o.stat("deep").st_size)
    obs.call("stat_absolute_deep", o.stat, cur + "/deep")
    o.chdir("/")


@scenario()
def sc_trailing_slash(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f")
    o.mkdir(base + "/d")
    o.symlink("d", base + "/ld")
    o.symlink("f", base + "/lf")
    o.symlink("missing", base + "/ln")
    obs.call("stat_file_slash", o.stat, base + "/f/")
    obs.call("stat_dir_slash", lambda: o.stat(base + "/d/").st_ino == o.stat(base + "/d").st_ino)
    obs.call("lstat_dirlink_slash_follows", lambda: oct(o.lstat(base + "/ld/").st_mode))
    obs.call("lstat_filelink_slash", o.lstat, base + "/lf/")
    obs.call("lstat_dangling_slash", o.lstat, base + "/ln/")
    obs.call("lstat_dir_slash_dot", lambda: oct(o.lstat(base + "/ld/.").st_mode))
    obs.call("lstat_double_slash", lambda: oct(o.lstat(base + "//d//").st_mode))
    obs.call("symlink_new_slash", o.symlink, "x", base + "/new/")
    obs.call("mkfifo_new_slash", o.mkfifo, base + "/new2/")
    obs.call("link_dst_slash", o.link, base + "/f", base + "/new3/")
    obs.call("mkdir_through_dangling_slash", o.mkdir, base + "/ln/")
    obs.call("readlink_slash", o.readlink, base + "/ld/")
    obs.call("open_dir_slash", lambda: o.close(o.open(base + "/d/", os.O_RDONLY)))
    obs.call("rename_link_slash", o.rename, base + "/ld/", base + "/ld2")
    obs.call("access_file_slash", o.access, base + "/f/", os.F_OK)
    obs.call("listdir", lambda: sorted(o.listdir(base)))


@scenario(mounts=("mnt",))
def sc_second_mount_exdev(o: Any, base: str, obs: Recorder) -> None:
    m = base + "/mnt"
    obs.call("stat_base", o.stat, base)
    obs.call("stat_mnt_root", o.stat, m)
    obs.record("different_dev", o.stat(base).st_dev != o.stat(m).st_dev)
    obs.call("mnt_empty", o.listdir, m)
    # readdir reports the covered directory's inode for a mount point, so DirEntry.inode()
    # differs from lstat().st_ino there.
    obs.scan("scandir_base", o, base)
    _mkfile(o, base + "/f", b"abc")
    o.mkdir(base + "/d")
    _mkfile(o, m + "/g", b"g")
    obs.call("rename_file_across", o.rename, base + "/f", m + "/f")
    obs.call("rename_dir_across", o.rename, base + "/d", m + "/d")
    obs.call("rename_back_across", o.rename, m + "/g", base + "/g")
    obs.call("link_across", o.link, base + "/f", m + "/f")
    obs.call("symlink_across_ok", o.symlink, base + "/f", m + "/sl")
    obs.call("read_through_cross_link", lambda: o.stat(m + "/sl").st_size)
    obs.call("stat_g_dev", o.stat, m + "/g")
    obs.call("rmdir_mountpoint", o.rmdir, m)
    obs.call("rename_mountpoint", o.rename, m, base + "/mnt2")
    obs.call("rename_over_mountpoint", o.rename, base + "/d", m)
    obs.call("unlink_mountpoint", o.unlink, m)  # observed EISDIR, not EBUSY
    obs.call("dotdot_leaves_mount", lambda: o.stat(m + "/..").st_ino == o.stat(base).st_ino)
    obs.call("listdir_base", lambda: sorted(o.listdir(base)))
    obs.call("mnt_nlink_after_mkdir", lambda: (o.mkdir(m + "/sub"), o.stat(m).st_nlink)[1])
    obs.call("base_nlink", lambda: o.stat(base).st_nlink)


@scenario()
def sc_cwd_relative(o: Any, base: str, obs: Recorder) -> None:
    o.makedirs(base + "/a/b")
    _mkfile(o, base + "/a/f", b"f")
    obs.call("chdir", o.chdir, base + "/a")
    obs.call("getcwd", o.getcwd)
    obs.call("relative_stat", lambda: o.stat("f").st_size)
    obs.call("dot_slash", lambda: o.stat("./b/../f").st_size)
    obs.call("relative_mkdir", o.mkdir, "c")
    obs.call("relative_listdir", lambda: sorted(o.listdir(".")))
    obs.call("listdir_default", lambda: sorted(o.listdir()))
    obs.call("chdir_relative", o.chdir, "b")
    obs.call("getcwd_b", o.getcwd)
    obs.call("chdir_dotdot", o.chdir, "..")
    obs.call("getcwd_back", o.getcwd)
    obs.call("chdir_file", o.chdir, "f")
    obs.call("chdir_missing", o.chdir, "nope")
    obs.call("empty_path_stat", o.stat, "")
    fd = o.open(base + "/a/b", os.O_RDONLY | os.O_DIRECTORY)
    obs.call("fchdir", o.fchdir, fd)
    obs.call("getcwd_after_fchdir", o.getcwd)
    o.close(fd)
    fd = o.open(base + "/a/f", os.O_RDONLY)
    obs.call("fchdir_file", o.fchdir, fd)
    o.close(fd)
    o.mkdir(base + "/gone")
    o.chdir(base + "/gone")
    o.rmdir(base + "/gone")
    obs.call("getcwd_removed", o.getcwd)
    obs.call("create_in_removed_cwd", o.open, "x", W, 0o644)
    obs.call("listdir_removed_cwd", o.listdir, ".")
    obs.call("stat_dotdot_from_removed", lambda: o.stat("..").st_ino == o.stat(base).st_ino)
    o.chdir(base)
    o.symlink("a/b", base + "/lb")
    o.chdir("lb")
    obs.call("getcwd_physical_after_link", o.getcwd)
    o.chdir("/")


@scenario()
def sc_makedirs_walk(o: Any, base: str, obs: Recorder) -> None:
    obs.call("makedirs", o.makedirs, base + "/a/b/c", 0o750)
    obs.call("modes", lambda: [oct(o.stat(base + p).st_mode) for p in ("/a", "/a/b", "/a/b/c")])
    obs.call("makedirs_exists", o.makedirs, base + "/a/b")
    obs.call("makedirs_exist_ok", o.makedirs, base + "/a/b", exist_ok=True)
    _mkfile(o, base + "/a/file")
    obs.call("makedirs_over_file", o.makedirs, base + "/a/file", exist_ok=True)
    obs.call("makedirs_under_file", o.makedirs, base + "/a/file/x")
    o.makedirs(base + "/a/x/y")
    o.symlink("x", base + "/a/lx")
    _mkfile(o, base + "/a/x/y/z")

    def walk(**kw: Any) -> list[Any]:
        return [[obs.path(t), sorted(d), sorted(f)] for t, d, f in o.walk(base + "/a", **kw)]

    obs.call("walk_topdown", lambda: sorted(walk()))
    obs.call("walk_bottomup_order", lambda: [w[0] for w in walk(topdown=False)][-1])
    obs.call("walk_followlinks", lambda: sorted(walk(followlinks=True)))
    obs.call("walk_missing", lambda: list(o.walk(base + "/missing")))


@scenario()
def sc_dir_fd(o: Any, base: str, obs: Recorder) -> None:
    o.mkdir(base + "/d")
    _mkfile(o, base + "/d/f", b"data")
    dfd = o.open(base + "/d", os.O_RDONLY | os.O_DIRECTORY)
    ffd = o.open(base + "/d/f", os.O_RDONLY)
    try:
        obs.call("stat", lambda: o.stat("f", dir_fd=dfd).st_size)
        fd = obs.fd("open", o.open, "g", W, 0o600, dir_fd=dfd)
        if fd is not None:
            o.close(fd)
        obs.call("listdir", lambda: sorted(o.listdir(base + "/d")))
        obs.call("mkdir", o.mkdir, "sub", dir_fd=dfd)
        obs.call("symlink", o.symlink, "f", "lf", dir_fd=dfd)
        obs.call("readlink", o.readlink, "lf", dir_fd=dfd)
        obs.call("lstat_nofollow", lambda: oct(o.stat("lf", dir_fd=dfd, follow_symlinks=False).st_mode))
        obs.call("link", o.link, "f", "f2", src_dir_fd=dfd, dst_dir_fd=dfd)
        obs.call("rename", o.rename, "f2", "f3", src_dir_fd=dfd, dst_dir_fd=dfd)
        obs.call("unlink", o.unlink, "f3", dir_fd=dfd)
        obs.call("rmdir", o.rmdir, "sub", dir_fd=dfd)
        obs.call("mkfifo", o.mkfifo, "p", dir_fd=dfd)
        obs.call("chmod", o.chmod, "g", 0o640, dir_fd=dfd)
        obs.call("chown", o.chown, "g", 5, 6, dir_fd=dfd)
        obs.call("utime", o.utime, "g", ns=(1_000_000_001, 2_000_000_002), dir_fd=dfd)
        obs.call("stat_g", o.stat, "g", dir_fd=dfd)
        obs.call("times_g", lambda: [o.stat("g", dir_fd=dfd).st_atime_ns,
                                     o.stat("g", dir_fd=dfd).st_mtime_ns])
        obs.call("access", o.access, "g", os.R_OK, dir_fd=dfd)
        obs.call("absolute_ignores_dir_fd", lambda: o.stat(base + "/d/f", dir_fd=ffd).st_size)
        obs.call("file_as_dir_fd", o.stat, "x", dir_fd=ffd)
        obs.call("bad_dir_fd", o.stat, "f", dir_fd=9999)
        obs.call("xattr_dir_fd_none", lambda: sorted(o.listxattr(dfd)))
        obs.call("final", lambda: sorted(o.listdir(dfd)))
    finally:
        o.close(dfd)
        o.close(ffd)


@scenario()
def sc_follow_symlinks_args(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f", b"x")
    o.symlink("f", base + "/l")
    obs.call("stat_nofollow", lambda: oct(o.stat(base + "/l", follow_symlinks=False).st_mode))
    # Observed (CPython 3.11 on Linux): chmod(follow_symlinks=False) on a symlink fails.
    obs.call("chmod_nofollow_link", o.chmod, base + "/l", 0o600, follow_symlinks=False)
    obs.call("chmod_nofollow_file", o.chmod, base + "/f", 0o640, follow_symlinks=False)
    obs.call("mode_f", lambda: oct(o.stat(base + "/f").st_mode))
    obs.call("chown_nofollow", o.chown, base + "/l", 7, 8, follow_symlinks=False)
    obs.call("lchown", o.lchown, base + "/l", 9, -1)
    obs.call("owners", lambda: [(s.st_uid, s.st_gid) for s in (o.lstat(base + "/l"),
                                                                o.stat(base + "/l"))])
    obs.call("chmod_follows_link", o.chmod, base + "/l", 0o604)
    obs.call("modes_after_chmod", lambda: [oct(o.lstat(base + "/l").st_mode),
                                           oct(o.stat(base + "/l").st_mode)])
    obs.call("chown_follow", o.chown, base + "/l", 3, 4)
    obs.call("owners_after", lambda: [(s.st_uid, s.st_gid) for s in (o.lstat(base + "/l"),
                                                                      o.stat(base + "/l"))])
    obs.call("utime_nofollow", o.utime, base + "/l", ns=(5, 6), follow_symlinks=False)
    obs.call("link_times", lambda: [o.lstat(base + "/l").st_atime_ns,
                                    o.lstat(base + "/l").st_mtime_ns])
    obs.call("utime_follow", o.utime, base + "/l", ns=(7, 8))
    obs.call("target_times", lambda: [o.stat(base + "/f").st_atime_ns,
                                      o.stat(base + "/f").st_mtime_ns])
    # Observed: following a symlink reads it, which updates its atime (relatime: atime <= mtime).
    obs.call("follow_touches_link_atime", lambda: [o.lstat(base + "/l").st_atime_ns > 6,
                                                   o.lstat(base + "/l").st_mtime_ns])
    obs.call("access_nofollow_dangling", o.access, base + "/dang", os.F_OK, follow_symlinks=False)
    o.symlink("missing", base + "/dang")
    obs.call("access_dangling_follow", o.access, base + "/dang", os.F_OK)
    obs.call("access_dangling_nofollow", o.access, base + "/dang", os.F_OK, follow_symlinks=False)
    obs.call("chown_dangling", o.chown, base + "/dang", 1, 1)
    obs.call("lchown_dangling", o.lchown, base + "/dang", 1, 1)
    obs.call("xattr_list_nofollow", lambda: sorted(o.listxattr(base + "/l", follow_symlinks=False)))


@scenario()
def sc_chroot(o: Any, base: str, obs: Recorder) -> None:
    o.makedirs(base + "/jail/etc")
    _mkfile(o, base + "/jail/etc/hostname", b"jail")
    o.symlink("/etc/hostname", base + "/jail/abs")
    o.chdir(base + "/jail")
    obs.call("chroot", o.chroot, base + "/jail")
    obs.call("listdir_root", lambda: sorted(o.listdir("/")))
    obs.call("abs_symlink_in_jail", lambda: o.stat("/abs").st_size)
    obs.call("dotdot_clamped", lambda: sorted(o.listdir("/../..")))
    obs.call("chroot_missing", o.chroot, "/nope")
    obs.call("chroot_file", o.chroot, "/etc/hostname")
