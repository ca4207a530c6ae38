"""Overlay xattrs (fs/overlayfs/xattrs.c): private ones hidden, escaped ones shown one level up.

The mount keeps its own state in ``trusted.overlay.*`` (``user.overlay.*`` with userxattr) on
the layers. Through the merged view those names are never visible; setting
``trusted.overlay.X`` stores ``trusted.overlay.overlay.X`` in the upper layer (Linux >= 6.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from overlaysim.overlay import copy_up
from overlaysim.vfs.node import Node

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

FH_LEN = 29


def encode_fh(node: Node) -> bytes:
    """A file handle shaped like ext4's (version 0, magic 0xfb, 29 bytes, zero uuid, ino)."""
    return bytes([0, 0xFB, FH_LEN, 0, 1]) + bytes(16) + (node.ino & (2**64 - 1)).to_bytes(8, "little")


def origin_ino(ofs: OvlFS, upper: Node) -> int | None:
    try:
        fh = upper.getxattr(ofs.prefix + "origin")
    except OSError:
        return None
    if len(fh) != FH_LEN or fh[1] != 0xFB:
        return None
    return int.from_bytes(fh[21:29], "little")


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
    upper = copy_up.copy_up(ino, "setxattr")
    upper.setxattr(real_name(ino.ofs, name), value, flags)


def remove(ino: OvlInode, name: str) -> None:
    real = real_name(ino.ofs, name)
    ino.real.getxattr(real)  # ENODATA before any copy-up
    copy_up.copy_up(ino, "removexattr").removexattr(real)
