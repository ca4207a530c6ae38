"""Readdir of merged directories (fs/overlayfs/readdir.c).

Order, as measured on 6.18: the lowest layer's entries come first in that layer's own order
(an entry already seen above is moved there), then the remaining names in the order they were
met from the upper layer down. Whiteouts hide the names below them and are not listed.
A directory that is not merged is read straight from its one real directory, stray whiteouts
included (the kernel's readdir/stat mismatch, section 2.4).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from overlaysim.overlay.namei import is_whiteout, xattr
from overlaysim.vfs.node import DT_CHR, DT_REG, Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode


class Entry:
    __slots__ = ("check_xwhiteout", "dtype", "ino", "is_upper", "is_whiteout", "name")

    def __init__(self, name: str, dtype: int, ino: int, is_upper: bool, whiteout: bool,
                 check_xwhiteout: bool = False) -> None:  # fmt: skip
        self.name = name
        self.dtype = dtype
        self.ino = ino
        self.is_upper = is_upper
        self.is_whiteout = whiteout
        self.check_xwhiteout = check_xwhiteout  # the kernel looks it up when listing


def layer_dirs(d: OvlInode) -> list[tuple[Node, bool]]:
    out: list[tuple[Node, bool]] = [(d.upper, True)] if d.upper is not None else []
    return out + [(node, False) for _layer, node in d.lowers]


def _xwhiteouts_layers(d: OvlInode) -> set[int]:
    """ids of the lower dirs whose xattr whiteouts a merged readdir hides: every layer with
    the xwhiteouts flag, if this dir's own lookup met an opaque="x" dir (see namei). Elsewhere
    they are listed, though stat says ENOENT (measured on 6.18)."""
    if not d.xwhiteouts:
        return set()
    flagged = d.ofs.xwhiteout_layers
    return {id(node) for layer, node in d.lowers if layer in flagged}


def merged_entries(d: OvlInode, *, check_single: bool = False, xwhiteouts: bool = True) -> list[Entry]:
    """Every name of a directory with its whiteout flag, in the kernel's order.

    A one-layer dir is listed as it is (stray whiteouts and all) unless ``check_single``
    asks for the whiteout flags, as ovl_check_empty_dir() always does."""
    ofs = d.ofs
    layers = layer_dirs(d)
    if len(layers) == 1 and not check_single:
        real, is_upper = layers[0]
        return [Entry(n, t, i, is_upper, False) for n, t, i in real.readdir()]
    seen: dict[str, Entry] = {}
    front: list[Entry] = []
    last = len(layers) - 1
    xdirs = _xwhiteouts_layers(d) if xwhiteouts else set()
    for idx, (real, is_upper) in enumerate(layers):
        hide_xwhiteouts = id(real) in xdirs
        for name, dtype, ino in real.readdir():
            old = seen.get(name)
            if old is not None:
                if idx == last:
                    front.append(old)
                continue
            wh = False
            check_x = hide_xwhiteouts and dtype == DT_REG
            if dtype == DT_CHR or check_x:
                child = real.lookup(name)
                wh = child is not None and is_whiteout(ofs, child)
            e = Entry(name, dtype, ino, is_upper, wh, check_x)
            seen[name] = e
            if idx == last:
                front.append(e)
    in_front = {id(e) for e in front}
    return front + [e for e in seen.values() if id(e) not in in_front]


def readdir(d: OvlInode) -> list[tuple[str, int, int]]:
    merged = d.is_merge_dir()
    # An impure merge dir recomputes d_ino of its upper entries by lookup; a negative lookup
    # (an xattr whiteout outside an opaque="x" dir) marks the entry stale, and it is dropped.
    impure = d.upper is not None and xattr(d.upper, d.ofs.prefix + "impure") is not None
    drop_stale = merged and impure
    # An impure dir that is not merged has its entries' d_ino looked up (same fs); if none
    # comes from an origin, the kernel drops the now useless "impure" (ovl_cache_get_impure).
    origins = 0 if not merged and impure and d.ofs.same_fs else None
    out = []
    failed = False  # the last entry the listing reached failed its lookup
    for e in merged_entries(d):
        if e.is_whiteout:
            continue
        ino = e.ino
        if merged or e.is_upper:
            try:
                child = d.lookup(e.name)
            except OSError:
                # The kernel looks an entry up only to fix its d_ino (an upper entry of an
                # impure merge dir) or to check for an xattr whiteout. There a failed lookup
                # (a redirect nofollow refuses, a metacopy file without data) ends the getdents
                # call; if entries came before it in that call ("." and ".." always do in the
                # first) they are returned and the entry is skipped, else the error is.
                # Measured on 6.18: one such entry is dropped, two in a row are EIO/EPERM.
                # Elsewhere the entry is listed, and stat on it fails.
                if (drop_stale and e.is_upper) or (merged and e.check_xwhiteout):
                    if failed:
                        raise
                    failed = True
                    continue
                child = None
            if child is not None:
                ino = child.ino
                if origins is not None and ino != child.real.ino:
                    origins += 1
            elif drop_stale and e.is_upper:
                continue
            # else: an xattr whiteout the readdir does not filter: listed, but ENOENT on stat
        out.append((e.name, e.dtype, ino))
        failed = False
    if origins == 0 and d.upper is not None and not d.ofs.sb.rdonly:
        d.upper.removexattr(d.ofs.prefix + "impure")
    return out


def check_empty(d: OvlInode) -> list[str]:
    """ovl_check_empty_dir(): ENOTEMPTY unless only whiteouts remain; returns the upper ones
    (to be cleaned). The callers ask only where the kernel does: for a dir that is not pure
    upper, or whose name exists below (rmdir); the upper fs's rmdir judges the others, and
    refuses any entry, whiteouts included."""
    upper_whiteouts = []
    # xattr whiteouts are only found by readdir's lookups, so here they are entries
    for e in merged_entries(d, check_single=True, xwhiteouts=False):
        if e.is_whiteout:
            if e.is_upper:
                upper_whiteouts.append(e.name)
            continue  # whiteouts of a lower layer hide nothing that could make it non-empty
        raise fserr(errno.ENOTEMPTY)
    return upper_whiteouts
