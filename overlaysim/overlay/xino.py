"""st_ino/st_dev of an overlay whose layers span filesystems (inode.c ovl_map_dev_ino and
ovl_map_ino, super.c's xino setup, readdir.c ovl_remap_lower_ino), as Linux 6.18 does them.

Each filesystem of the mount gets an fsid: 0 for the upper one (reserved even without an
upper layer; lower layers on the upper's fs share it), then 1, 2... in lowerdir order, one
per new filesystem. With all layers on one fs nothing is remapped: real inode numbers are
unique and every object shows the overlay's st_dev.

Otherwise ``xino=on|auto`` puts the fsid in the high bits of st_ino (and d_ino) so that all
objects share the overlay's st_dev. How many bits: 32 if every layer's fs encodes its file
handles as plain 32-bit inode numbers (none of ours do: tmpfs, ext4 and overlay all report
-1 or 0 to ovl_can_decode_fh), else ilog2(numfs - 1) + 2 -- one more than the fsids need,
the lowest one marking the non-persistent range. Measured on 6.18 with each layer on its own
tmpfs: 2 bits for upper + one lower fs, 3 for two or three lower filesystems.

A real inode number already using those bits (an overlay used as a lower layer hands out
such numbers) "overflows": a non-directory keeps its real number and gets the pseudo st_dev
of its layer's fs, a directory gets a number from the overlay's own counter, tagged with the
lowest xino bit. ``xino=off`` across filesystems does the same for everything: non-dirs on
a pseudo st_dev per fs (allocated at mount, after the overlay's own), dirs on the overlay's
st_dev with counter numbers (the root takes 2, the first one), and d_ino stays the real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.superblock import next_anon_dev

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS
    from overlaysim.vfs.node import Node
    from overlaysim.vfs.superblock import SuperBlock

_U64 = (1 << 64) - 1
_S_IFMT, _S_IFDIR = 0o170000, 0o040000
FILEID_INO32_GEN = 1


def fh_type(node: Node) -> int:
    """ovl_can_decode_fh() of a layer's fs: -1 where the fs has its own encode_fh (tmpfs;
    ext4 too on this kernel), 0 where it has none (an overlay without nfs_export)."""
    return -1 if isinstance(node, MemInode) else 0


def xino_bits_for(numfs: int) -> int:
    """ofs->xino_mode when no fs promises 32-bit inode numbers: ilog2(numfs - 1) + 2."""
    return (numfs - 1).bit_length() - 1 + 2


class Xino:
    """The mount's inode-number plan: ``mode`` 0 (one fs), -1 (several, no xino) or the
    number of high bits used; ``fsids[i]`` is the fsid of lower layer ``i``."""

    __slots__ = ("bits", "fsids", "last_ino", "mode", "numfs", "sbs", "shift", "xino")

    def __init__(self, lowers: Sequence[Node], upper: Node | None, xino: str,
                 data_only: Sequence[bool] = ()) -> None:  # fmt: skip
        sbs: list[SuperBlock | None] = [upper.sb if upper is not None else None]
        keys: list[int | None] = [id(upper.sb) if upper is not None else None]
        fsids: list[int] = []
        data: list[int] = []
        for i, node in enumerate(lowers):
            if i < len(data_only) and data_only[i]:
                data.append(i)  # data-only layers share the "null fs" after the last one
                fsids.append(0)
                continue
            key = id(node.sb)
            if key not in keys:
                keys.append(key)
                sbs.append(node.sb)
            fsids.append(keys.index(key))
        self.numfs = len(keys)
        for i in data:
            fsids[i] = self.numfs
        self.fsids = fsids
        self.sbs = sbs
        merged = [n for i, n in enumerate(lowers) if i not in data]
        if xino == "auto" and upper is not None and any(not fh_type(n) for n in merged):
            xino = "off"  # ovl_lower_dir: no file handles, no persistent st_ino
        self.xino = xino
        same_fs = self.numfs - (upper is None) == 1
        if same_fs:
            mode = 0
        elif xino == "off":
            mode = -1
        else:
            layers = ([upper] if upper is not None else []) + merged
            if all(fh_type(n) == FILEID_INO32_GEN for n in layers):
                mode = 32  # BITS_PER_LONG - 32: the fs promised 32-bit inode numbers
            else:
                mode = xino_bits_for(self.numfs)
        self.mode = mode
        self.bits = max(mode, 0)
        self.shift = 64 - self.bits
        self.last_ino = 1  # ofs->last_ino: the first number handed out is 2

    def next_ino(self) -> int:
        """ovl_next_ino() (0 is skipped), tagged as ovl_map_ino() does when xino is on."""
        self.last_ino = (self.last_ino + 1) & _U64 or 1
        ino = self.last_ino
        if self.bits:
            ino = (ino & (_U64 >> self.bits)) | 1 << self.shift
        return ino

    def remap(self, ino: int, fsid: int) -> int:
        """ovl_remap_lower_ino(): d_ino of an entry of layer fs ``fsid`` (too big: unchanged)."""
        if not self.bits or ino >> self.shift:
            return ino
        return ino | fsid << (self.shift + 1)


def pseudo_dev(ofs: OvlFS, fsid: int) -> int:
    """ofs->fs[fsid].pseudo_dev: the st_dev of non-directories of that fs when their inode
    numbers cannot be mapped (kept by superblock, as a saved world stores them)."""
    sb = ofs.xino.sbs[fsid] if fsid < len(ofs.xino.sbs) else None
    key = id(sb) if sb is not None else -1 - fsid
    dev = ofs._pseudo_devs.get(key)
    if dev is None:
        dev = ofs._pseudo_devs[key] = next_anon_dev()
    return dev


def _origin_fsid(node: OvlInode) -> int:
    """The fsid of the layer a copied-up object's origin lives on."""
    x = node.ofs.xino
    if node.lowers:
        return x.fsids[node.lowers[0][0]]
    cached = node.xfsid
    if cached < 0:
        from overlaysim.overlay import fh

        upper = node.upper
        found = None if upper is None else fh.check_origin(node.ofs, upper)
        cached = node.xfsid = x.fsids[found[0]] if found is not None else 0
    return cached


def ino_dev(node: OvlInode) -> tuple[int, int]:
    """(st_ino, st_dev) of ``node`` when its layers are on several filesystems: the number
    ovl_getattr picks (the origin's for a non-dir, or a dir with xino), then its mapping."""
    ofs = node.ofs
    x = ofs.xino
    u = node.upper
    is_dir = node.ftype == _S_IFDIR
    if u is None:
        layer, low = node.lowers[0]
        ino, fsid = low.ino, x.fsids[layer]
    else:
        ino, fsid = u.ino, 0
        if node.parent is node:
            pass  # the root is never hashed by its lower: upper st_ino (ovl_get_root)
        elif is_dir:
            if x.bits and node.lowers:  # a merge dir: its topmost lower dir, with xino only
                layer, low = node.lowers[0]
                ino, fsid = low.ino, x.fsids[layer]
        elif node.origin_ino is not None:
            ino, fsid = node.origin_ino, _origin_fsid(node)
    if x.bits and not ino >> x.shift:
        return ino | fsid << (x.shift + 1), ofs.sb.dev
    if is_dir:  # "find -xdev" stays inside: the overlay's st_dev, a non-persistent number
        v = node.vino
        if not v:
            v = node.vino = x.next_ino()
        return v, ofs.sb.dev
    return ino, pseudo_dev(ofs, fsid)
