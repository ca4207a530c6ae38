"""Scenarios: extended attributes (namespaces, flags, limits, symlinks, credentials)."""

from __future__ import annotations

import os
import stat
import struct
from typing import Any

from .harness import OTHER_GID, OTHER_UID, scenario
from .recorder import Recorder

W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _mkfile(o: Any, path: str, data: bytes = b"", mode: int = 0o644) -> None:
    fd = o.open(path, W, mode)
    try:
        if data:
            o.write(fd, data)
    finally:
        o.close(fd)


def _names(o: Any, path: Any, **kw: Any) -> list[str]:
    return sorted(o.listxattr(path, **kw))


@scenario()
def sc_xattr_user_basic(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p, b"x")
    obs.call("list_empty", _names, o, p)
    obs.call("get_missing", o.getxattr, p, "user.a")
    obs.call("set", o.setxattr, p, "user.a", b"1")
    obs.call("get", o.getxattr, p, "user.a")
    obs.call("set_empty_value", o.setxattr, p, "user.empty", b"")
    obs.call("get_empty_value", o.getxattr, p, "user.empty")
    obs.call("set_binary", o.setxattr, p, "user.bin", bytes(range(256)))
    obs.call("get_binary_len", lambda: len(o.getxattr(p, "user.bin")))
    obs.call("list", _names, o, p)
    obs.call("overwrite", o.setxattr, p, "user.a", b"22")
    obs.call("get_overwritten", o.getxattr, p, "user.a")
    obs.call("create_existing", o.setxattr, p, "user.a", b"3", os.XATTR_CREATE)
    obs.call("replace_missing", o.setxattr, p, "user.b", b"3", os.XATTR_REPLACE)
    obs.call("create_new", o.setxattr, p, "user.b", b"4", os.XATTR_CREATE)
    obs.call("replace_existing", o.setxattr, p, "user.b", b"5", os.XATTR_REPLACE)
    obs.call("both_flags", o.setxattr, p, "user.c", b"x", os.XATTR_CREATE | os.XATTR_REPLACE)
    obs.call("bad_flags", o.setxattr, p, "user.c", b"x", 4)
    obs.call("remove", o.removexattr, p, "user.b")
    obs.call("remove_missing", o.removexattr, p, "user.b")
    obs.call("get_removed", o.getxattr, p, "user.b")
    obs.call("list_after", _names, o, p)
    obs.call("get_on_missing_file", o.getxattr, base + "/missing", "user.a")
    obs.call("set_str_value_type", o.setxattr, p, "user.s", "text")
    obs.call("get_str_name", o.getxattr, p, b"user.a")


@scenario()
def sc_xattr_names_and_limits(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p)
    obs.call("unknown_namespace", o.setxattr, p, "bogus.x", b"1")
    obs.call("no_namespace", o.setxattr, p, "plain", b"1")
    obs.call("get_unknown_namespace", o.getxattr, p, "bogus.x")
    # Observed: "user." with an empty suffix is EINVAL; other bad namespaces EOPNOTSUPP.
    obs.call("user_prefix_only", o.setxattr, p, "user.", b"1")
    obs.call("empty_name", o.setxattr, p, "", b"1")
    obs.call("name_255", o.setxattr, p, "user." + "n" * 250, b"1")
    obs.call("name_256", o.setxattr, p, "user." + "n" * 251, b"1")
    obs.call("get_name_256", o.getxattr, p, "user." + "n" * 251)
    obs.call("value_65536", o.setxattr, p, "user.big", b"v" * 65536)
    obs.call("value_65536_len", lambda: len(o.getxattr(p, "user.big")))
    obs.call("value_65537", o.setxattr, p, "user.big2", b"v" * 65537)
    obs.call("value_70000", o.setxattr, p, "user.big3", b"v" * 70000)
    obs.call("list", _names, o, p)


@scenario()
def sc_xattr_namespaces_root(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p)
    obs.call("trusted_set", o.setxattr, p, "trusted.overlay.opaque", b"y")
    obs.call("trusted_get", o.getxattr, p, "trusted.overlay.opaque")
    obs.call("security_set", o.setxattr, p, "security.test", b"s")
    obs.call("security_get", o.getxattr, p, "security.test")
    obs.call("list", _names, o, p)
    obs.call("system_unknown", o.setxattr, p, "system.foo", b"1")
    # An absent ACL reads as ENODATA; a value whose version is not 2 is EOPNOTSUPP.
    obs.call("acl_get_absent", o.getxattr, p, "system.posix_acl_access")
    obs.call("acl_set_garbage", o.setxattr, p, "system.posix_acl_access", b"garbage")
    obs.call("trusted_remove", o.removexattr, p, "trusted.overlay.opaque")
    obs.call("list_after", _names, o, p)


def _acl(*entries: tuple[int, int, int], version: int = 2) -> bytes:
    return struct.pack("<I", version) + b"".join(struct.pack("<HHI", *e) for e in entries)


_ANY = 0xFFFFFFFF


@scenario()
def sc_xattr_posix_acl(o: Any, base: str, obs: Recorder) -> None:
    """POSIX ACLs through system.posix_acl_*: GNU sed -i and cp -p set modes this way."""
    f, d = base + "/f", base + "/d"
    _mkfile(o, f)
    o.mkdir(d)
    o.symlink("f", base + "/l")
    minimal = _acl((1, 7, _ANY), (4, 5, _ANY), (0x20, 1, _ANY))
    extended = _acl((1, 6, _ANY), (2, 6, 1000), (4, 4, _ANY), (0x10, 7, _ANY), (0x20, 0, _ANY))
    mode = lambda p: oct(o.lstat(p).st_mode)  # noqa: E731
    obs.call("minimal", o.setxattr, f, "system.posix_acl_access", minimal)
    obs.call("minimal_mode", mode, f)
    obs.call("minimal_kept", _names, o, f)
    obs.call("extended", o.setxattr, f, "system.posix_acl_access", extended)
    obs.call("extended_mode", mode, f)
    obs.call("extended_get", o.getxattr, f, "system.posix_acl_access")
    obs.call("chmod_rewrites_acl", o.chmod, f, 0o640)
    obs.call("chmod_acl", o.getxattr, f, "system.posix_acl_access")
    obs.call("remove", o.removexattr, f, "system.posix_acl_access")
    obs.call("remove_absent", o.removexattr, f, "system.posix_acl_access")
    obs.call("after_remove", mode, f)
    obs.call("empty_value", o.setxattr, f, "system.posix_acl_access", b"")
    obs.call("header_only", o.setxattr, f, "system.posix_acl_access", _acl())
    obs.call("bad_version", o.setxattr, f, "system.posix_acl_access", _acl((1, 6, _ANY),
                                                                           version=1))
    obs.call("ragged", o.setxattr, f, "system.posix_acl_access", _acl((1, 6, _ANY)) + b"xx")
    obs.call("no_other", o.setxattr, f, "system.posix_acl_access", _acl((1, 6, _ANY),
                                                                         (4, 4, _ANY)))
    obs.call("named_no_mask", o.setxattr, f, "system.posix_acl_access",
             _acl((1, 6, _ANY), (2, 6, 1000), (4, 4, _ANY), (0x20, 0, _ANY)))
    obs.call("unsorted", o.setxattr, f, "system.posix_acl_access",
             _acl((4, 4, _ANY), (1, 6, _ANY), (0x20, 0, _ANY)))
    obs.call("default_on_file", o.setxattr, f, "system.posix_acl_default", minimal)
    obs.call("default_on_dir", o.setxattr, d, "system.posix_acl_default", minimal)
    obs.call("default_kept", _names, o, d)
    obs.call("dir_mode", mode, d)
    obs.call("on_symlink", o.setxattr, base + "/l", "system.posix_acl_access", minimal,
             follow_symlinks=False)


@scenario()
def sc_xattr_file_types(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f")
    o.mkdir(base + "/d")
    o.symlink("f", base + "/l")
    o.mkfifo(base + "/fifo")
    o.mknod(base + "/chr", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    obs.call("user_on_dir", o.setxattr, base + "/d", "user.a", b"d")
    obs.call("get_dir", o.getxattr, base + "/d", "user.a")
    # user.* is only allowed on regular files and directories.
    obs.call("user_on_symlink_nofollow", o.setxattr, base + "/l", "user.a", b"l",
             follow_symlinks=False)
    obs.call("user_on_fifo", o.setxattr, base + "/fifo", "user.a", b"p")
    obs.call("user_on_chr", o.setxattr, base + "/chr", "user.a", b"c")
    obs.call("get_user_on_chr", o.getxattr, base + "/chr", "user.a")
    obs.call("trusted_on_symlink_nofollow", o.setxattr, base + "/l", "trusted.a", b"l",
             follow_symlinks=False)
    obs.call("trusted_on_chr", o.setxattr, base + "/chr", "trusted.overlay.x", b"c")
    obs.call("list_symlink_nofollow", _names, o, base + "/l", follow_symlinks=False)
    obs.call("user_via_symlink_follow", o.setxattr, base + "/l", "user.viaLink", b"t")
    obs.call("target_has_it", _names, o, base + "/f")
    obs.call("get_via_link", o.getxattr, base + "/l", "user.viaLink")
    obs.call("get_link_nofollow", o.getxattr, base + "/l", "user.viaLink",
             follow_symlinks=False)
    obs.call("list_chr", _names, o, base + "/chr")


@scenario()
def sc_xattr_fd_and_links(o: Any, base: str, obs: Recorder) -> None:
    _mkfile(o, base + "/f")
    fd = o.open(base + "/f", os.O_RDONLY)
    obs.call("set_via_rdonly_fd", o.setxattr, fd, "user.fd", b"1")
    obs.call("get_via_fd", o.getxattr, fd, "user.fd")
    obs.call("list_via_fd", lambda: sorted(o.listxattr(fd)))
    obs.call("remove_via_fd", o.removexattr, fd, "user.fd")
    o.close(fd)
    o.setxattr(base + "/f", "user.shared", b"s")
    o.link(base + "/f", base + "/h")
    obs.call("hardlink_shares", o.getxattr, base + "/h", "user.shared")
    o.setxattr(base + "/h", "user.shared", b"t")
    obs.call("hardlink_update_visible", o.getxattr, base + "/f", "user.shared")
    o.rename(base + "/f", base + "/g")
    obs.call("rename_keeps", o.getxattr, base + "/g", "user.shared")
    o.unlink(base + "/g")
    _mkfile(o, base + "/g")
    obs.call("recreate_fresh", _names, o, base + "/g")


@scenario()
def sc_xattr_ctime(o: Any, base: str, obs: Recorder) -> None:
    p = base + "/f"
    _mkfile(o, p)
    before = obs.snap(o, p)
    o.setxattr(p, "user.a", b"1")
    obs.delta("setxattr", o, p, before)
    before = obs.snap(o, p)
    o.getxattr(p, "user.a")
    o.listxattr(p)
    obs.delta("get_list", o, p, before)
    before = obs.snap(o, p)
    o.removexattr(p, "user.a")
    obs.delta("removexattr", o, p, before)
    before = obs.snap(o, p)
    try:
        o.removexattr(p, "user.a")
    except OSError:
        pass
    obs.delta("failed_removexattr", o, p, before)
    before = obs.snap(o, base)
    o.setxattr(p, "user.b", b"2")
    obs.delta("parent_unchanged", o, base, before)


def _xattr_user_setup(o: Any, base: str, obs: Recorder) -> None:
    o.chmod(base, 0o777)
    _mkfile(o, base + "/rootfile", mode=0o644)
    o.setxattr(base + "/rootfile", "trusted.overlay.opaque", b"y")
    o.setxattr(base + "/rootfile", "user.visible", b"v")
    o.setxattr(base + "/rootfile", "security.sec", b"s")
    _mkfile(o, base + "/rootfile_666", mode=0o666)
    o.chmod(base + "/rootfile_666", 0o666)
    _mkfile(o, base + "/secret", mode=0o600)
    o.setxattr(base + "/secret", "user.hidden", b"h")
    o.mkdir(base + "/sticky")
    o.chmod(base + "/sticky", 0o1777)
    _mkfile(o, base + "/sticky/other", mode=0o666)
    o.chmod(base + "/sticky/other", 0o666)
    o.chown(base + "/sticky/other", OTHER_UID, OTHER_GID)
    o.mkdir(base + "/sticky/otherdir")
    o.chmod(base + "/sticky/otherdir", 0o1777)
    o.chown(base + "/sticky/otherdir", OTHER_UID, OTHER_GID)


@scenario(setup=_xattr_user_setup, user=True)
def sc_xattr_as_user(o: Any, base: str, obs: Recorder) -> None:
    rf = base + "/rootfile"
    obs.call("list_root_file", _names, o, rf)
    obs.call("get_trusted", o.getxattr, rf, "trusted.overlay.opaque")
    obs.call("get_security", o.getxattr, rf, "security.sec")
    obs.call("get_user", o.getxattr, rf, "user.visible")
    obs.call("set_user_no_write_perm", o.setxattr, rf, "user.x", b"1")
    obs.call("set_user_world_writable", o.setxattr, base + "/rootfile_666", "user.x", b"1")
    # Observed: getxattr needs read permission but listxattr does not.
    obs.call("get_user_no_read_perm", o.getxattr, base + "/secret", "user.hidden")
    obs.call("list_no_read_perm", _names, o, base + "/secret")
    own = base + "/own"
    _mkfile(o, own)
    obs.call("set_trusted_own_file", o.setxattr, own, "trusted.x", b"1")
    obs.call("set_security_own_file", o.setxattr, own, "security.x", b"1")
    obs.call("set_user_own_file", o.setxattr, own, "user.x", b"1")
    obs.call("list_own", _names, o, own)
    obs.call("remove_trusted_root_file", o.removexattr, rf, "trusted.overlay.opaque")
    # user.* on a sticky directory owned by someone else is refused even if writable.
    obs.call("set_user_sticky_other_dir", o.setxattr, base + "/sticky/otherdir", "user.x", b"1")
    obs.call("set_user_other_file_in_sticky", o.setxattr, base + "/sticky/other", "user.x", b"1")
    o.chmod(own, 0o444)
    obs.call("set_user_own_readonly", o.setxattr, own, "user.y", b"1")
