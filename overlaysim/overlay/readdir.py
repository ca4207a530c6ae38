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
    __slots__ = ("dtype", "ino", "is_upper", "is_whiteout", "name")

    def __init__(self, name: str, dtype: int, ino: int, is_upper: bool, whiteout: bool) -> None:
        self.name = name
        self.dtype = dtype
        self.ino = ino
        self.is_upper = is_upper
        self.is_whiteout = whiteout


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
            if dtype == DT_CHR or (hide_xwhiteouts and dtype == DT_REG):
                child = real.lookup(name)
                wh = child is not None and is_whiteout(ofs, child)
            e = Entry(name, dtype, ino, is_upper, wh)
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
    for e in merged_entries(d):
        if e.is_whiteout:
            continue
        ino = e.ino
        if merged or e.is_upper:
            try:
                child = d.lookup(e.name)
            except OSError:
                child = None  # e.g. a redirect that nofollow refuses: dropped from the list
                if merged:
                    continue
            if child is not None:
                ino = child.ino
                if origins is not None and ino != child.real.ino:
                    origins += 1
            elif drop_stale and e.is_upper:
                continue
            # else: an xattr whiteout the readdir does not filter: listed, but ENOENT on stat
        out.append((e.name, e.dtype, ino))
    if origins == 0 and d.upper is not None and not d.ofs.sb.rdonly:
        d.upper.removexattr(d.ofs.prefix + "impure")
    return out


def check_empty(d: OvlInode) -> list[str]:
    """ovl_check_empty_dir(): ENOTEMPTY unless only upper whiteouts remain; returns those."""
    upper_whiteouts = []
    layers = layer_dirs(d)
    merged = len(layers) > 1
    # xattr whiteouts are only found by readdir's lookups, so here they are entries
    for e in merged_entries(d, check_single=d.upper is None, xwhiteouts=False):
        if e.is_whiteout and e.is_upper:
            upper_whiteouts.append(e.name)
            continue
        if e.is_whiteout:
            continue  # whiteouts of a lower layer hide nothing that could make it non-empty
        if not merged and e.is_upper and e.dtype == DT_CHR:
            real = layers[0][0].lookup(e.name)
            if real is not None and is_whiteout(d.ofs, real) and d.is_opaque():
                upper_whiteouts.append(e.name)  # stray whiteouts of an opaque dir are cleaned
                continue
        raise fserr(errno.ENOTEMPTY)
    return upper_whiteouts

