"""Scenarios: permission checks as a non-root user, sticky bit, setuid/setgid handling.

Each ``setup`` runs as root on both sides; the scenario body runs as uid 1000 (groups
1000, 2000) — a forked ``setresuid`` child on the kernel, ``fs.as_user`` on HostFS.
"""

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


def _basic_setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)
    o.mkdir(base + "/ro", 0o555)
    o.chmod(base + "/ro", 0o555)
    _mkfile(o, base + "/ro/file", b"ro", 0o666)
    _mkfile(o, base + "/none", b"secret", 0o000)
    _mkfile(o, base + "/rootfile", b"root", 0o644)
    o.mkdir(base + "/noexec")
    _mkfile(o, base + "/noexec/inner", b"i", 0o644)
    o.chmod(base + "/noexec", 0o644)
    o.mkdir(base + "/noread")
    _mkfile(o, base + "/noread/inner", b"i", 0o644)
    o.chmod(base + "/noread", 0o711)
    o.mkdir(base + "/grp")
    o.chown(base + "/grp", 0, 2000)
    o.chmod(base + "/grp", 0o770)
    o.mkdir(base + "/other", 0o770)
    o.chown(base + "/other", 0, OTHER_GID)
    o.chmod(base + "/other", 0o770)
    _mkfile(o, base + "/ownerdeny", b"od", 0o077)
    o.chown(base + "/ownerdeny", USER_UID, 2000)
    _mkfile(o, base + "/exec", b"#!", 0o755)


@scenario(setup=_basic_setup, user=True)
def sc_perm_basic(o: Any, base: str, obs: Recorder) -> None:
    obs.call("create_in_ro_dir", o.open, base + "/ro/new", W, 0o644)
    obs.call("unlink_in_ro_dir", o.unlink, base + "/ro/file")
    obs.call("mkdir_in_ro_dir", o.mkdir, base + "/ro/d")
    obs.call("rename_out_of_ro_dir", o.rename, base + "/ro/file", base + "/moved")
    obs.call("write_file_in_ro_dir", lambda: o.close(o.open(base + "/ro/file", os.O_WRONLY)))
    obs.call("read_mode_000", o.open, base + "/none", os.O_RDONLY)
    obs.call("stat_mode_000", lambda: oct(o.stat(base + "/none").st_mode))
    obs.call("write_root_644", o.open, base + "/rootfile", os.O_WRONLY)
    obs.call("read_root_644", lambda: o.close(o.open(base + "/rootfile", os.O_RDONLY)))
    obs.call("truncate_root_644", o.truncate, base + "/rootfile", 0)
    obs.call("stat_through_noexec", o.stat, base + "/noexec/inner")
    obs.call("listdir_noexec", o.listdir, base + "/noexec")
    obs.call("chdir_noexec", o.chdir, base + "/noexec")
    obs.call("listdir_noread", o.listdir, base + "/noread")
    obs.call("stat_in_noread", lambda: o.stat(base + "/noread/inner").st_size)
    obs.call("create_in_group_dir", lambda: o.close(o.open(base + "/grp/mine", W, 0o644)))
    obs.call("owner_of_new_in_group_dir", lambda: [o.stat(base + "/grp/mine").st_uid,
                                                   o.stat(base + "/grp/mine").st_gid])
    obs.call("create_in_other_group_dir", o.open, base + "/other/x", W, 0o644)
    # Owner class wins even when group/other would allow: 0o077 owned by us -> denied.
    obs.call("owner_bits_deny", o.open, base + "/ownerdeny", os.O_RDONLY)
    _mkfile(o, base + "/mine")
    obs.call("new_file_owner", lambda: [o.stat(base + "/mine").st_uid,
                                        o.stat(base + "/mine").st_gid])
    obs.call("access_r", o.access, base + "/rootfile", os.R_OK)
    obs.call("access_w", o.access, base + "/rootfile", os.W_OK)
    obs.call("access_x_file", o.access, base + "/exec", os.X_OK)
    obs.call("access_x_nonexec", o.access, base + "/rootfile", os.X_OK)
    obs.call("access_none", o.access, base + "/none", os.R_OK)
    obs.call("access_f_through_noexec", o.access, base + "/noexec/inner", os.F_OK)
    obs.call("access_ro_dir_w", o.access, base + "/ro", os.W_OK)
    obs.call("rmdir_ro_dir_itself", o.rmdir, base + "/ro")
    obs.call("listdir", lambda: sorted(o.listdir(base)))


def _sticky_setup(o: Any, base: str, obs: Recorder) -> None:
    o.mkdir(base + "/tmp")
    o.chmod(base + "/tmp", 0o1777)
    _mkfile(o, base + "/tmp/others", b"o", 0o666)
    o.chown(base + "/tmp/others", OTHER_UID, OTHER_GID)
    _mkfile(o, base + "/tmp/roots", b"r", 0o666)
    o.mkdir(base + "/tmp/otherdir")
    o.chown(base + "/tmp/otherdir", OTHER_UID, OTHER_GID)
    o.mkdir(base + "/mydir")
    o.chown(base + "/mydir", USER_UID, USER_GID)
    o.chmod(base + "/mydir", 0o1777)
    _mkfile(o, base + "/mydir/others", b"o", 0o644)
    o.chown(base + "/mydir/others", OTHER_UID, OTHER_GID)


@scenario(setup=_sticky_setup, user=True)
def sc_perm_sticky(o: Any, base: str, obs: Recorder) -> None:
    t = base + "/tmp"
    obs.call("unlink_others_file", o.unlink, t + "/others")
    obs.call("unlink_roots_file", o.unlink, t + "/roots")
    obs.call("rename_others_file", o.rename, t + "/others", t + "/stolen")
    obs.call("rmdir_others_dir", o.rmdir, t + "/otherdir")
    obs.call("write_others_file_allowed", lambda: o.close(o.open(t + "/others", os.O_WRONLY)))
    obs.call("create_own", lambda: _mkfile(o, t + "/mine"))
    obs.call("rename_onto_others_file", o.rename, t + "/mine", t + "/others")
    obs.call("unlink_own", o.unlink, t + "/mine")
    # The owner of a sticky directory may delete anyone's files in it.
    obs.call("dir_owner_unlinks_others", o.unlink, base + "/mydir/others")
    obs.call("listdir_tmp", lambda: sorted(o.listdir(t)))


def _chmod_chown_setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)
    _mkfile(o, base + "/others", b"o", 0o666)
    o.chown(base + "/others", OTHER_UID, OTHER_GID)
    _mkfile(o, base + "/suid_root", b"s", 0o4777)
    o.chmod(base + "/suid_root", 0o4777)
    _mkfile(o, base + "/sgid_root", b"s", 0o2777)
    o.chmod(base + "/sgid_root", 0o2777)


@scenario(setup=_chmod_chown_setup, user=True)
def sc_perm_chmod_chown(o: Any, base: str, obs: Recorder) -> None:
    obs.call("chmod_others_file", o.chmod, base + "/others", 0o600)
    obs.call("utime_ns_others_file", o.utime, base + "/others", ns=(1, 2))
    # utime to "now" needs only write permission, not ownership.
    obs.call("utime_now_others_writable", o.utime, base + "/others")
    obs.call("chown_others_file", o.chown, base + "/others", USER_UID, USER_GID)
    mine = base + "/mine"
    _mkfile(o, mine, b"m", 0o644)
    obs.call("chown_own_to_root", o.chown, mine, 0, -1)
    obs.call("chown_own_to_self", o.chown, mine, USER_UID, -1)
    obs.call("chgrp_own_to_member_group", o.chown, mine, -1, 2000)
    obs.call("chgrp_own_to_foreign_group", o.chown, mine, -1, OTHER_GID)
    obs.call("owner_after", lambda: [o.stat(mine).st_uid, o.stat(mine).st_gid])
    obs.call("chmod_own", o.chmod, mine, 0o600)
    obs.call("utime_ns_own", o.utime, mine, ns=(1, 2))
    # setgid requested on a file whose group we are not in: the bit is silently dropped.
    o.chown(mine, -1, USER_GID)
    obs.call("chmod_g+s_member", o.chmod, mine, 0o2755)
    obs.call("mode_g+s_member", lambda: oct(o.stat(mine).st_mode))
    o.chmod(mine, 0o644)
    o.chown(mine, -1, 2000)
    obs.call("chmod_setuid_own", o.chmod, mine, 0o4755)
    obs.call("mode_setuid_own", lambda: oct(o.stat(mine).st_mode))
    # A write by a non-owner without CAP_FSETID clears setuid/setgid.
    obs.call("write_suid_root_file", lambda: o.close(_write(o, base + "/suid_root", b"x")))
    obs.call("mode_suid_after_write", lambda: oct(o.stat(base + "/suid_root").st_mode))
    obs.call("write_sgid_root_file", lambda: o.close(_write(o, base + "/sgid_root", b"x")))
    obs.call("mode_sgid_after_write", lambda: oct(o.stat(base + "/sgid_root").st_mode))
    obs.call("chown_noop_others_file", o.chown, base + "/others", -1, -1)


def _write(o: Any, path: str, data: bytes) -> int:
    fd: int = o.open(path, os.O_WRONLY)
    o.write(fd, data)
    return fd


@scenario()
def sc_chown_clears_setuid(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p, b"x", 0o4755)
    obs.call("mode_before", lambda: oct(o.stat(p).st_mode))
    o.chown(p, 1, 1)
    obs.call("after_chown_root", lambda: oct(o.stat(p).st_mode))
    o.chmod(p, 0o6755)
    o.chown(p, 2, -1)
    obs.call("setgid_with_gexec_cleared", lambda: oct(o.stat(p).st_mode))
    o.chmod(p, 0o2745)
    o.chown(p, 3, 3)
    obs.call("setgid_without_gexec_kept", lambda: oct(o.stat(p).st_mode))
    o.chmod(p, 0o4755)
    o.chown(p, -1, -1)
    # Observed: even chown(-1, -1) by root clears setuid on a group-executable file.
    obs.call("chown_minus1_minus1", lambda: oct(o.stat(p).st_mode))
    o.mkdir(base + "/d")
    o.chmod(base + "/d", 0o6755)
    o.chown(base + "/d", 4, 4)
    obs.call("dir_keeps_bits", lambda: oct(o.stat(base + "/d").st_mode))
    o.chmod(p, 0o4755)
    fd = o.open(p, os.O_WRONLY)
    o.write(fd, b"root write")
    o.close(fd)
    obs.call("root_write_keeps_setuid", lambda: oct(o.stat(p).st_mode))
    o.truncate(p, 0)
    obs.call("root_truncate_keeps_setuid", lambda: oct(o.stat(p).st_mode))


def _setgid_setup(o: Any, base: str, obs: Recorder) -> None:
    o.mkdir(base + "/sg")
    o.chown(base + "/sg", 0, 2000)
    o.chmod(base + "/sg", 0o2777)
    o.mkdir(base + "/plain")
    o.chown(base + "/plain", 0, 2000)
    o.chmod(base + "/plain", 0o777)
    o.mkdir(base + "/sg_foreign")
    o.chown(base + "/sg_foreign", 0, OTHER_GID)
    o.chmod(base + "/sg_foreign", 0o2777)


@scenario(setup=_setgid_setup, user=True)
def sc_setgid_dirs_as_user(o: Any, base: str, obs: Recorder) -> None:
    sg = base + "/sg"
    _mkfile(o, sg + "/f", b"", 0o644)
    obs.call("file_gid", lambda: o.stat(sg + "/f").st_gid)
    o.mkdir(sg + "/sub")
    obs.call("subdir", lambda: [oct(o.stat(sg + "/sub").st_mode), o.stat(sg + "/sub").st_gid])
    o.mkdir(sg + "/sub/deeper")
    obs.call("deeper", lambda: [oct(o.stat(sg + "/sub/deeper").st_mode),
                                o.stat(sg + "/sub/deeper").st_gid])
    _mkfile(o, base + "/plain/f")
    obs.call("plain_dir_gid", lambda: o.stat(base + "/plain/f").st_gid)
    o.mknod(sg + "/fifo", 0o010644)
    obs.call("fifo_gid", lambda: o.stat(sg + "/fifo").st_gid)
    o.symlink("f", sg + "/l")
    obs.call("symlink_gid", lambda: o.lstat(sg + "/l").st_gid)
    # Created with S_ISGID in a setgid dir of a group we are not in: bit dropped.
    fd = o.open(base + "/sg_foreign/x", W, 0o2755)
    o.close(fd)
    obs.call("foreign_sgid_file", lambda: [oct(o.stat(base + "/sg_foreign/x").st_mode),
                                           o.stat(base + "/sg_foreign/x").st_gid])
    o.mkdir(base + "/sg_foreign/d")
    obs.call("foreign_sgid_dir", lambda: [oct(o.stat(base + "/sg_foreign/d").st_mode),
                                          o.stat(base + "/sg_foreign/d").st_gid])
    o.rename(sg + "/f", base + "/plain/moved")
    obs.call("rename_keeps_gid", lambda: o.stat(base + "/plain/moved").st_gid)


@scenario()
def sc_setgid_dirs_as_root(o: Any, base: str, obs: Recorder) -> None:
    o.mkdir(base + "/sg")
    o.chown(base + "/sg", 0, 2000)
    o.chmod(base + "/sg", 0o2755)
    _mkfile(o, base + "/sg/f")
    obs.call("file", lambda: [oct(o.stat(base + "/sg/f").st_mode), o.stat(base + "/sg/f").st_gid])
    o.mkdir(base + "/sg/d", 0o700)
    obs.call("dir", lambda: [oct(o.stat(base + "/sg/d").st_mode), o.stat(base + "/sg/d").st_gid])
    o.chmod(base + "/sg/d", 0o2750)
    obs.call("chmod_dir_with_sgid", lambda: oct(o.stat(base + "/sg/d").st_mode))
    o.chmod(base + "/sg/d", 0o755)
    obs.call("chmod_dir_explicit_0755", lambda: oct(o.stat(base + "/sg/d").st_mode))
