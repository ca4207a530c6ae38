"""POSIX ACLs as xattrs (fs/posix_acl.c): what ``system.posix_acl_*`` writes do to an inode.

Tools set modes through ACLs (GNU ``sed -i`` and ``cp -p`` copy permissions with
``fsetxattr(system.posix_acl_access)``), so a replay of their traces needs them. Measured on
6.18 tmpfs: a minimal access ACL only sets the rwx bits (no xattr is kept); an extended one
is kept and the group bits become its mask; a default ACL is kept on directories and refused
on anything else (EACCES); an empty value or a bare header removes the ACL; a wrong version
is EOPNOTSUPP, a ragged size or an invalid entry list EINVAL; removing an absent ACL is fine.
Inheritance of default ACLs by new files is not simulated.
"""

from __future__ import annotations

import errno
import stat as st
import struct

from overlaysim.vfs.node import Node, fserr

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
NAMES = (ACCESS, DEFAULT)
VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ENTRY = struct.Struct("<HHI")
_S_IFMT = 0o170000

Entry = tuple[int, int, int]  # tag, perm, id


def parse(value: bytes) -> list[Entry] | None:
    """posix_acl_from_xattr: the entries, or None for "no ACL" (empty value, bare header)."""
    if not value:
        return None
    if len(value) < 4 or struct.unpack_from("<I", value)[0] != VERSION:
        raise fserr(errno.EOPNOTSUPP)
    body = len(value) - 4
    if body % _ENTRY.size:
        raise fserr(errno.EINVAL)
    if not body:
        return None
    return [_ENTRY.unpack_from(value, 4 + i) for i in range(0, body, _ENTRY.size)]


def _valid(entries: list[Entry]) -> bool:
    """posix_acl_valid: ordered by tag (and id), one of each *_OBJ and OTHER, MASK if named."""
    seen: dict[int, int] = {}
    last_tag, last_id = 0, -1
    for tag, perm, ident in entries:
        if perm & ~0o7 or tag not in (USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER):
            return False
        if tag < last_tag or (tag == last_tag and tag not in (USER, GROUP)):
            return False
        if tag in (USER, GROUP) and tag == last_tag and ident <= last_id:
            return False
        last_tag, last_id = tag, ident
        seen[tag] = seen.get(tag, 0) + 1
    if any(seen.get(t) != 1 for t in (USER_OBJ, GROUP_OBJ, OTHER)):
        return False
    return not ((seen.get(USER) or seen.get(GROUP)) and not seen.get(MASK))


def _mode_of(entries: list[Entry]) -> tuple[int, bool]:
    """(rwx bits, equivalent to a plain mode) as posix_acl_equiv_mode computes them."""
    perms = {tag: perm for tag, perm, _ in entries if tag != USER and tag != GROUP}
    group = perms.get(MASK, perms[GROUP_OBJ])
    equiv = all(tag in (USER_OBJ, GROUP_OBJ, OTHER) for tag, _, _ in entries)
    return perms[USER_OBJ] << 6 | group << 3 | perms[OTHER], equiv


def set_acl(node: Node, name: str, value: bytes, may_keep_sgid: bool) -> None:
    """setxattr of an ACL name on ``node`` (permission already checked)."""
    if node.mode & _S_IFMT == st.S_IFLNK:
        raise fserr(errno.EOPNOTSUPP)
    entries = parse(value)
    if entries is None:
        remove_acl(node, name)
        return
    if name == DEFAULT and node.mode & _S_IFMT != st.S_IFDIR:
        raise fserr(errno.EACCES)
    if not _valid(entries):
        raise fserr(errno.EINVAL)
    if name == DEFAULT:
        node.setxattr(name, bytes(value), 0)
        return
    bits, equiv = _mode_of(entries)
    mode = (node.mode & 0o7000) | bits
    if not may_keep_sgid:
        mode &= ~st.S_ISGID
    node.setattr(mode=mode)
    if equiv:
        _drop(node, name)
    else:
        node.setxattr(name, bytes(value), 0)


def remove_acl(node: Node, name: str) -> None:
    """Removing an ACL that is not there succeeds (set_posix_acl with NULL)."""
    if node.mode & _S_IFMT == st.S_IFLNK:
        raise fserr(errno.EOPNOTSUPP)
    _drop(node, name)


def _drop(node: Node, name: str) -> None:
    try:
        node.removexattr(name)
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise


def chmod_acl(node: Node, mode: int) -> None:
    """posix_acl_chmod: a chmod rewrites a kept access ACL's owner, mask (or group) and other."""
    try:
        value = node.getxattr(ACCESS)
    except OSError:
        return
    entries = parse(value)
    if not entries:
        return
    has_mask = any(tag == MASK for tag, _, _ in entries)
    out = []
    for tag, perm, ident in entries:
        if tag == USER_OBJ:
            perm = mode >> 6 & 7
        elif tag == OTHER:
            perm = mode & 7
        elif tag == MASK or (tag == GROUP_OBJ and not has_mask):
            perm = mode >> 3 & 7
        out.append(_ENTRY.pack(tag, perm, ident))
    node.setxattr(ACCESS, struct.pack("<I", VERSION) + b"".join(out), 0)
