"""Readdir of merged directories (fs/overlayfs/readdir.c).

Order, as measured on 6.18: the lowest layer's entries come first in that layer's own order
(an entry already seen above is moved there), then the remaining names in the order they were
met from the upper layer down. Whiteouts hide the names below them and are not listed.
A directory that is not merged is read straight from its one real directory, stray whiteouts
included (the kernel's readdir/stat mismatch, section 2.4).
"""

from __future__ import annotations

import errno
import operator
from typing import TYPE_CHECKING

from overlaysim.overlay.namei import is_whiteout, xattr
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import DT_CHR, DT_REG, Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode

_S_IFDIR, _S_IFCHR = 0o040000, 0o020000


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
    """getdents of an overlay dir: names in the kernel's order with the kernel's d_ino.

    d_ino is the real one (the topmost layer's) except where ovl_iterate fixes it: with
    xino bits every entry is remapped to the st_ino address space; on one fs (or with xino)
    the entries of an impure dir (it holds copied-up objects) get their st_ino. Fixing means
    a lookup, which is also what drops stale entries (an xattr whiteout, a lookup error)."""
    x = d.ofs.xino
    same_dev = x.mode >= 0  # one fs, or xino bits: every object on the overlay's st_dev
    impure = d.upper is not None and xattr(d.upper, d.ofs.prefix + "impure") is not None
    if not d.is_merge_dir():
        return _readdir_real(d, impure and (x.bits > 0 or x.mode == 0))
    if not x.bits and not impure and not d.xwhiteouts:
        fast = _merged_plain(d)  # nothing to look up: the names and their real d_ino
        if fast is not None:
            return fast
    out = []
    failed = False  # the last entry the listing reached failed its lookup
    for e in merged_entries(d):
        if e.is_whiteout:
            continue
        ino = e.ino
        calc = x.bits > 0 or (e.is_upper and impure)  # ovl_calc_d_ino()
        if (calc and same_dev) or e.check_xwhiteout:  # ovl_cache_update() looks it up
            try:
                child = d.lookup(e.name)
            except OSError:
                # The failed lookup (a redirect nofollow refuses, a metacopy file without data)
                # ends the getdents call and marks the entry stale; if entries came before it
                # in that call ("." and ".." always do in the first) they are returned, else
                # the error is. Measured on 6.18: one such entry is dropped, two in a row are
                # EIO/EPERM.
                if failed:
                    raise
                failed = True
                continue
            if child is None:
                continue  # a stale entry (an xattr whiteout): dropped
            if calc:
                ino = _d_ino(child, ino)
        # else: an xattr whiteout the readdir does not filter: listed, but ENOENT on stat
        out.append((e.name, e.dtype, ino))
        failed = False
    return out


def _merged_plain(d: OvlInode) -> list[tuple[str, int, int]] | None:
    """merged_entries() without whiteouts, for tmpfs layers only (None otherwise): the same
    order, read straight from the entry dicts (a char device 0/0 is a whiteout).

    Kept until a layer dir changes: it depends only on their entries (names, and the type,
    number and rdev of each inode, which never change), and every change of a tmpfs dir's
    entries drops its cached stat result, whose identity is the token."""
    layers: list[MemInode] = []
    for real in ([d.upper] if d.upper is not None else []) + [n for _l, n in d.lowers]:
        if type(real) is not MemInode:
            return None
        layers.append(real)
    tokens = [real.stc or real.stat() for real in layers]
    c = d.rdc
    if c is not None and len(c[0]) == len(tokens) and all(map(operator.is_, c[0], tokens)):
        return list(c[1])
    seen: dict[str, tuple[str, int, int] | None] = {}
    for real in layers:
        for name, child in reversed(real.entries.items()):
            if name not in seen:
                ftype = child.ftype
                white = ftype == _S_IFCHR and child.rdev == 0
                seen[name] = None if white else (name, ftype >> 12, child.ino)
    last = layers[-1].entries
    out = [e for n in reversed(last) if (e := seen[n]) is not None]
    out += [e for n, e in seen.items() if e is not None and n not in last]
    d.rdc = (tokens, out)
    return list(out)


def _d_ino(child: OvlInode, real_ino: int) -> int:
    """The d_ino ovl_cache_update() gives an entry it looked up: st_ino for one with a copy-up
    origin, the remapped real number for a lower one (xino), else the real number."""
    x = child.ofs.xino
    if child.upper is not None and (child.lowers if child.ftype == _S_IFDIR
                                    else child.origin_ino is not None):  # OVL_TYPE_ORIGIN
        return child.ino
    if child.upper is None and x.bits:
        return x.remap(real_ino, x.fsids[child.lowers[0][0]])
    return real_ino


def _readdir_real(d: OvlInode, adjust: bool) -> list[tuple[str, int, int]]:
    """ovl_iterate_real(): one real dir, stray whiteouts and all. With xino bits each d_ino
    is remapped with the dir's layer fsid; an impure upper dir (``adjust``: one fs or xino)
    first looks up all its entries (any lookup error fails the whole listing) and uses the
    st_ino of those with an origin; none with one drops the useless "impure" xattr
    (ovl_cache_get_impure)."""
    ofs = d.ofs
    x = ofs.xino
    real = d.upper if d.upper is not None else d.lowers[0][1]
    fixed: dict[str, int] = {}
    if adjust and d.upper is not None:
        for name, _t, ino in real.readdir():
            child = d.lookup(name)
            if child is not None:
                d_ino = _d_ino(child, ino)
                if d_ino != ino:
                    fixed[name] = d_ino
        if not fixed and not ofs.sb.rdonly:
            d.upper.removexattr(ofs.prefix + "impure")
    if not x.bits and not fixed:
        return real.readdir()
    fsid = x.fsids[d.lowers[0][0]] if x.bits and d.lowers else 0
    out = []
    for name, dtype, ino in real.readdir():
        got = fixed.get(name)
        out.append((name, dtype, got if got is not None else x.remap(ino, fsid)))
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
