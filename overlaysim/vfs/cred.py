"""Credentials and the kernel's permission rules (fs/namei.c generic_permission, may_delete...).

Credentials are per call (a view from ``fs.as_user``), never process-global, so two users can
act on one HostFS in the same test.
"""

from __future__ import annotations

import errno
import stat as st
from dataclasses import dataclass, field

from overlaysim.vfs.node import Node, fserr

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4


@dataclass(frozen=True)
class Cred:
    uid: int = 0
    gid: int = 0
    groups: frozenset[int] = field(default_factory=frozenset)

    @property
    def root(self) -> bool:
        """uid 0 holds every capability (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SYS_ADMIN...)."""
        return self.uid == 0

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups


ROOT = Cred()


def permitted(cred: Cred, node: Node, mask: int) -> bool:
    """generic_permission(): owner, then group, then other class; root bypasses DAC."""
    mode = node.mode
    if cred.uid == 0:
        if not mask & MAY_EXEC or st.S_ISDIR(mode):
            return True
        return bool(mode & 0o111)
    if node.uid == cred.uid:
        bits = mode >> 6
    elif cred.in_group(node.gid):
        bits = mode >> 3
    else:
        bits = mode
    return (bits & mask) == mask


def check(cred: Cred, node: Node, mask: int) -> None:
    if not permitted(cred, node, mask):
        raise fserr(errno.EACCES)


def is_owner(cred: Cred, node: Node) -> bool:
    """inode_owner_or_capable(): the owner, or CAP_FOWNER."""
    return cred.uid == 0 or node.uid == cred.uid


def check_sticky(cred: Cred, parent: Node, victim: Node) -> None:
    """In a sticky directory only the file's owner, the dir's owner or CAP_FOWNER may delete."""
    if parent.mode & st.S_ISVTX and cred.uid != 0:
        if victim.uid != cred.uid and parent.uid != cred.uid:
            raise fserr(errno.EPERM)


# fs.protected_regular and fs.protected_fifos as the reference kernel (6.18) runs them.
PROTECTED_REGULAR = 0
PROTECTED_FIFOS = 0


def may_create_in_sticky(cred: Cred, parent: Node, inode: Node) -> None:
    """open(O_CREAT) of an existing object in a sticky dir (namei.c may_create_in_sticky).

    Regular files and fifos are guarded only by the sysctls above, but devices and sockets
    always are: in a sticky world-writable dir, one owned by neither the dir's owner nor the
    caller is EACCES, even for root (no capability overrides it)."""
    dmode = parent.mode
    if not dmode & st.S_ISVTX:
        return
    ftype = st.S_IFMT(inode.mode)
    if (ftype == st.S_IFREG and not PROTECTED_REGULAR) or (ftype == st.S_IFIFO and not PROTECTED_FIFOS):
        return
    if inode.uid in (parent.uid, cred.uid):
        return
    if dmode & 0o002:
        raise fserr(errno.EACCES)
    if dmode & 0o020 and ((PROTECTED_FIFOS >= 2 and ftype == st.S_IFIFO)
                          or (PROTECTED_REGULAR >= 2 and ftype == st.S_IFREG)):  # fmt: skip
        raise fserr(errno.EACCES)


def may_delete(cred: Cred, parent: Node, victim: Node) -> None:
    check(cred, parent, MAY_WRITE | MAY_EXEC)
    check_sticky(cred, parent, victim)
