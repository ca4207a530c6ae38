"""Overlay xattrs (fs/overlayfs/xattrs.c): private ones hidden, escaped ones shown one level up.

The mount keeps its own state in ``trusted.overlay.*`` (``user.overlay.*`` with userxattr) on
the layers. Through the merged view those names are never visible; setting
``trusted.overlay.X`` stores ``trusted.overlay.overlay.X`` in the upper layer (Linux >= 6.7).
"""

from __future__ import annotations

import stat as st
from typing import TYPE_CHECKING

from overlaysim.overlay import copy_up, fh
from overlaysim.vfs.node import Node

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT, _S_IFDIR = 0o170000, st.S_IFDIR


def origin_ino(ofs: OvlFS, upper: Node) -> int | None:
    """st_ino a copied-up object keeps: its origin's, for a directory or a lower file with one
    link; a lower hard link's only when it is indexed (its index entry is this inode), as
    its other links may have been copied up to other inodes (ovl_getattr)."""
    found = fh.check_origin(ofs, upper)
    if found is None:
        return None
    lower = found[1]
    if lower.mode & _S_IFMT == _S_IFDIR or lower.stat().st_nlink == 1:
        return lower.ino
    ix = ofs.index
    return lower.ino if ix is not None and ix.entry_of(lower) is upper else None


def is_private(ofs: OvlFS, name: str) -> bool:
    """One of the mount's own xattrs (escaped names are user data, not private)."""
    p = ofs.prefix
    return name.startswith(p) and not name.startswith(p + "overlay.")


def real_name(ofs: OvlFS, name: str) -> str:
    """The name stored on the layers for a name given through the merged view."""
    return ofs.prefix + "overlay." + name[len(ofs.prefix):] if name.startswith(ofs.prefix) else name


def shown_name(ofs: OvlFS, name: str) -> str | None:
    p = ofs.prefix
    if name.startswith(p + "overlay."):
        return p + name[len(p) + len("overlay."):]
    if name.startswith(p):
        return None
    return name


def get(ino: OvlInode, name: str) -> bytes:
    return ino.real.getxattr(real_name(ino.ofs, name))


def listx(ino: OvlInode) -> list[str]:
    out = []
    for name in ino.real.listxattr():
        shown = shown_name(ino.ofs, name)
        if shown is not None:
            out.append(shown)
    return out


def set_(ino: OvlInode, name: str, value: bytes, flags: int) -> None:
    _upper(ino, "setxattr").setxattr(real_name(ino.ofs, name), value, flags)


def remove(ino: OvlInode, name: str) -> None:
    real = real_name(ino.ofs, name)
    ino.real.getxattr(real)  # ENODATA before any copy-up
    _upper(ino, "removexattr").removexattr(real)


def _upper(ino: OvlInode, reason: str) -> Node:
    """ovl_xattr_set(): copy-up only when the inode has no upper yet. An indexed hard link's
    name with no upper link of its own changes the shared inode in W/index and is not
    linked up (measured on 6.18, unlike chmod or a write)."""
    return ino.upper if ino.upper is not None else copy_up.copy_up(ino, reason)
