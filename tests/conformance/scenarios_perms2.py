"""Scenarios: finer permission rules as a non-root user (search vs write bits, O_TRUNC,
moving directories, setuid clearing on truncate, protected hard links)."""

from __future__ import annotations

import os
from typing import Any

from .harness import OTHER_GID, OTHER_UID, USER_GID, USER_UID, scenario
from .recorder import Recorder

W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _mkfile(o: Any, path: str, data: bytes = b"", mode: int = 0o644) -> None:
    fd = o.open(path, W, mode)
    try:
        if data:
            o.write(fd, data)
    finally:
        o.close(fd)
    o.chmod(path, mode)


def _setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)
    o.mkdir(base + "/ro")
    _mkfile(o, base + "/ro/exists", b"e", 0o666)
    o.chmod(base + "/ro", 0o555)
    o.mkdir(base + "/wonly")
    _mkfile(o, base + "/wonly/f", b"f", 0o666)
    o.chmod(base + "/wonly", 0o722)
    o.mkdir(base + "/dirs")
    o.chmod(base + "/dirs", 0o777)
    o.mkdir(base + "/dirs/root_sub")
    o.chmod(base + "/dirs/root_sub", 0o755)
    o.mkdir(base + "/dirs/locked")
    o.chown(base + "/dirs/locked", USER_UID, USER_GID)
    o.chmod(base + "/dirs/locked", 0o555)
    o.mkdir(base + "/dest")
    o.chmod(base + "/dest", 0o777)
    _mkfile(o, base + "/suid", b"0123", 0o4777)
    _mkfile(o, base + "/others_ro", b"x", 0o444)
    o.chown(base + "/others_ro", OTHER_UID, OTHER_GID)
    _mkfile(o, base + "/others_rw", b"x", 0o666)
    o.chown(base + "/others_rw", OTHER_UID, OTHER_GID)
    o.mkdir(base + "/noread", 0o311)
    o.chmod(base + "/noread", 0o311)
    _mkfile(o, base + "/mine_foreign_gid", b"", 0o644)
    o.chown(base + "/mine_foreign_gid", USER_UID, OTHER_GID)


@scenario(setup=_setup, user=True)
def sc_perm_fine_rules(o: Any, base: str, obs: Recorder) -> None:
    ro = base + "/ro"
    # Opening an existing file with O_CREAT needs no write permission on the directory.
    obs.call("creat_existing_in_ro_dir", lambda: o.close(o.open(ro + "/exists", os.O_WRONLY | os.O_CREAT, 0o644)))
    obs.call("creat_excl_existing_in_ro_dir", o.open, ro + "/exists", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    obs.call("creat_excl_new_in_ro_dir", o.open, ro + "/new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    obs.call("trunc_without_write", o.open, base + "/others_ro", os.O_RDONLY | os.O_TRUNC)
    obs.call("read_others_ro", lambda: o.close(o.open(base + "/others_ro", os.O_RDONLY)))
    # A dir with write but no search permission: nothing inside can be reached.
    obs.call("create_in_write_no_search", o.open, base + "/wonly/new", W, 0o644)
    obs.call("unlink_in_write_no_search", o.unlink, base + "/wonly/f")
    obs.call("stat_in_write_no_search", o.stat, base + "/wonly/f")
    obs.call("listdir_write_no_search", o.listdir, base + "/wonly")
    obs.call("open_dir_no_read", o.open, base + "/noread", os.O_RDONLY)
    obs.call("open_dir_no_read_path_inside", o.open, base + "/noread/x", os.O_RDONLY)
    # Moving a directory to another parent needs write permission on the directory itself
    # (its '..' entry changes); renaming it within the same parent does not.
    obs.call("move_root_dir_to_other_parent", o.rename, base + "/dirs/root_sub", base + "/dest/sub")
    obs.call("rename_root_dir_same_parent", o.rename, base + "/dirs/root_sub", base + "/dirs/renamed")
    obs.call("move_own_ro_dir_to_other_parent", o.rename, base + "/dirs/locked", base + "/dest/locked")
    obs.call("listdir_dirs", lambda: sorted(o.listdir(base + "/dirs")))
    obs.call("listdir_dest", lambda: sorted(o.listdir(base + "/dest")))
    # utime(None) needs ownership or write permission.
    obs.call("utime_now_others_ro", o.utime, base + "/others_ro")
    obs.call("utime_now_others_rw", o.utime, base + "/others_rw")
    # Truncation by a non-owner clears setuid like a write does.
    obs.call("truncate_suid", o.truncate, base + "/suid", 2)
    obs.call("mode_suid_after_truncate", lambda: oct(o.stat(base + "/suid").st_mode))
    # chmod g+s on an own file whose group we are not in: the bit is silently dropped.
    obs.call("chmod_sgid_foreign_gid", o.chmod, base + "/mine_foreign_gid", 0o2755)
    obs.call("mode_sgid_foreign_gid", lambda: oct(o.stat(base + "/mine_foreign_gid").st_mode))
    obs.call("chmod_sticky_file", o.chmod, base + "/mine_foreign_gid", 0o1644)
    obs.call("mode_sticky_file", lambda: oct(o.stat(base + "/mine_foreign_gid").st_mode))
    # fs.protected_hardlinks=1 on this machine kind: no hard links to files we could not
    # write (observed EPERM); a file we can read and write may be linked.
    obs.call("link_others_ro", o.link, base + "/others_ro", base + "/l1")
    obs.call("link_others_rw", o.link, base + "/others_rw", base + "/l2")
    obs.call("listdir", lambda: sorted(o.listdir(base)))


def _open_perm_setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)
    _mkfile(o, base + "/w_only", b"w", 0o622)
    _mkfile(o, base + "/r_only", b"r", 0o644)


@scenario(setup=_open_perm_setup, user=True)
def sc_perm_open_modes(o: Any, base: str, obs: Recorder) -> None:
    obs.call("w_only_rdonly", o.open, base + "/w_only", os.O_RDONLY)
    fd = obs.fd("w_only_wronly", o.open, base + "/w_only", os.O_WRONLY)
    if fd is not None:
        o.close(fd)
    obs.call("w_only_rdwr", o.open, base + "/w_only", os.O_RDWR)
    obs.call("r_only_append", o.open, base + "/r_only", os.O_WRONLY | os.O_APPEND)
    obs.call("r_only_creat_rdonly", lambda: o.close(o.open(base + "/r_only", os.O_RDONLY | os.O_CREAT)))
    obs.call("access_w_only", lambda: [o.access(base + "/w_only", m) for m in
                                       (os.R_OK, os.W_OK, os.X_OK, os.F_OK)])
    obs.call("access_combined", o.access, base + "/r_only", os.R_OK | os.W_OK)
    # Creating with mode 0o000 still yields a writable fd for the creator.
    fd = obs.fd("creat_mode_000", o.open, base + "/zero", os.O_RDWR | os.O_CREAT, 0o000)
    if fd is not None:
        obs.call("write_mode_000_fd", o.write, fd, b"ok")
        o.close(fd)
    obs.call("reopen_mode_000", o.open, base + "/zero", os.O_RDONLY)
    o.chmod(base + "/zero", 0o400)
    obs.call("read_after_chmod_400", lambda: o.close(o.open(base + "/zero", os.O_RDONLY)))


def _setid_setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)
    _mkfile(o, base + "/others", b"x", 0o644)
    o.chown(base + "/others", OTHER_UID, OTHER_GID)


@scenario(setup=_setid_setup, user=True)
def sc_perm_setid_as_user(o: Any, base: str, obs: Recorder) -> None:
    mine = base + "/mine"
    _mkfile(o, mine, b"", 0o4755)
    obs.call("creat_setuid_mode", lambda: oct(o.stat(mine).st_mode))
    obs.call("owner_write_clears_setuid", lambda: (o.close(_write(o, mine, b"x")),
                                                   oct(o.stat(mine).st_mode))[1])
    o.chmod(mine, 0o6755)
    obs.call("chgrp_member_clears", lambda: (o.chown(mine, -1, 2000),
                                             oct(o.stat(mine).st_mode))[1])
    o.chmod(mine, 0o6755)
    obs.call("chown_noop_clears", lambda: (o.chown(mine, -1, -1),
                                           oct(o.stat(mine).st_mode))[1])
    o.chmod(mine, 0o4755)
    obs.call("truncate_own_clears", lambda: (o.truncate(mine, 0), oct(o.stat(mine).st_mode))[1])
    obs.call("noatime_others", o.open, base + "/others", os.O_RDONLY | os.O_NOATIME)
    fd = obs.fd("noatime_own", o.open, mine, os.O_RDONLY | os.O_NOATIME)
    if fd is not None:
        o.close(fd)


def _write(o: Any, path: str, data: bytes) -> int:
    fd: int = o.open(path, os.O_WRONLY)
    o.write(fd, data)
    return fd
