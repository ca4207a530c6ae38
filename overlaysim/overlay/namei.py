"""Lookup across the layer stack (fs/overlayfs/namei.c).

For one name: the upper layer first, then the parent's lower directories top-down. The first
hit decides: a whiteout hides the name, a non-directory hides everything below it, a directory
starts a merge that stops at an opaque directory, at a non-directory or at the bottom.
Redirects (absolute or relative) send the lookup in the layers below to another name.

A regular file carrying the ``metacopy`` xattr (a metadata-only copy-up) does not stop the
lookup: the layers below are searched on (by name or by its redirect) for the file that holds
its data. The stack keeps the topmost lower (the origin) and the data file; metacopy files in
between are skipped. No data below is EIO; with ``metacopy=off`` any metacopy file met is EPERM
("refusing to follow metacopy origin"), as Linux 6.18 does.

Data-only lower layers (``lowerdir=l1::data``, ``datadir+=``) are never merged: they are not in
the root's stack, so no name or readdir reaches them. A metacopy file whose last redirect is
absolute, with no data found in the merged layers, defers the data lookup ("lazy lowerdata"):
:func:`lookup_lowerdata` walks that path beneath each data layer's root on first need (open,
copy-up). That one case needs neither metacopy=on nor redirect following (Linux 6.16+).
"""

from __future__ import annotations

import errno
import stat as st
from typing import TYPE_CHECKING

from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT = 0o170000
_S_IFDIR, _S_IFCHR, _S_IFREG = st.S_IFDIR, st.S_IFCHR, st.S_IFREG
METACOPY_MIN_SIZE = 4  # OVL_METACOPY_MIN_SIZE: version, len, flags, digest_algo


def is_dir(node: Node) -> bool:
    return node.mode & _S_IFMT == _S_IFDIR


def xattr(node: Node, name: str) -> bytes | None:
    try:
        return node.getxattr(name)
    except OSError:
        return None


def is_whiteout(ofs: OvlFS, node: Node) -> bool:
    """A char device 0/0, or a zero-size regular file with the ``whiteout`` xattr."""
    ftype = node.mode & _S_IFMT
    if ftype == _S_IFCHR:
        return node.stat().st_rdev == 0
    if ftype == _S_IFREG and node.stat().st_size == 0:
        return xattr(node, ofs.prefix + "whiteout") is not None
    return False


def is_opaque(ofs: OvlFS, node: Node) -> bool:
    return xattr(node, ofs.prefix + "opaque") == b"y"


def metacopy_size(ofs: OvlFS, node: Node) -> int:
    """ovl_check_metacopy_xattr(): 0 for no metacopy file (or not a regular file), else the
    xattr's size (an empty value counts as the 4-byte minimum); EIO if it is 1..3 bytes."""
    if node.mode & _S_IFMT != _S_IFREG:
        return 0
    value = xattr(node, ofs.prefix + "metacopy")
    if value is None:
        return 0
    if not value:
        return METACOPY_MIN_SIZE
    if len(value) < METACOPY_MIN_SIZE:
        raise fserr(errno.EIO)  # "metacopy file '...' has too small xattr"
    return len(value)


def has_metacopy(ofs: OvlFS, node: Node) -> bool:
    """The ``metacopy`` xattr is there (no validation: for a file already looked up)."""
    if type(node) is MemInode:  # the hot case: stat and read of copied-up files ask this
        x = node.xattrs
        return x is not None and ofs.prefix + "metacopy" in x
    return xattr(node, ofs.prefix + "metacopy") is not None


def get_redirect(ofs: OvlFS, node: Node) -> str | None:
    """ovl_get_redirect_xattr(): the redirect as the kernel reads it, a C string (cut at the
    first NUL); EINVAL for an empty value, a relative one with a "/", an absolute one with an
    empty component ("/", "//a", "/a/"). Whether it may be followed is decided later
    (:func:`_check_follow`); "." and ".." pass here and fail in the layer lookup (EACCES)."""
    value = xattr(node, ofs.prefix + "redirect")
    if value is None:
        return None
    text = value.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    comps = text.split("/")
    if not value or (not text.startswith("/") and len(comps) > 1):
        raise fserr(errno.EINVAL)  # "invalid redirect"
    if text.startswith("/") and "" in comps[1:]:
        raise fserr(errno.EINVAL)  # an empty component
    return text


class _Lookup:
    """struct ovl_lookup_data: the state of one name's walk down the layers."""

    __slots__ = ("absolute_redirect", "is_dir", "last", "metacopy", "name", "redirect", "stop",
                 "xwhiteouts")  # fmt: skip

    def __init__(self, name: str) -> None:
        self.name = name  # the name to look up next; an absolute path after a "/..." redirect
        self.is_dir = False
        self.stop = False
        self.last = False
        self.metacopy = False
        self.xwhiteouts = False
        self.redirect: str | None = None
        self.absolute_redirect = False  # the last redirect check met an absolute redirect


def _lookup_single(ofs: OvlFS, d: _Lookup, base: Node, name: str, prefix: str, post: str,
                   layer: int) -> Node | None:  # fmt: skip
    """ovl_lookup_single(): one component in one layer (``layer`` -1 is the upper one).

    ``prefix``/``post``: the parts of an absolute name before and after this component."""
    last_element = not post
    if name in ("", ".", ".."):
        raise fserr(errno.EACCES)  # lookup_one() refuses them (a redirect may hold them)
    this = base.lookup(name)
    if this is None:
        return None
    if is_whiteout(ofs, this):
        d.stop = True
        return None
    if last_element and d.metacopy and this.mode & _S_IFMT != _S_IFREG:
        d.stop = True  # below a metacopy file only a regular file can hold the data
        return None
    if not is_dir(this):
        if d.is_dir or not last_element:
            d.stop = True
            return None
        d.metacopy = metacopy_size(ofs, this) > 0
        d.stop = not d.metacopy
        if not d.metacopy or d.last:
            return this
    else:
        if last_element:
            d.is_dir = True
        if d.last:
            return this  # the last layer: neither opaque nor redirect is read there
        marker = xattr(this, ofs.prefix + "opaque")
        if last_element and layer >= 0 and marker == b"x":
            d.xwhiteouts = True
            ofs.xwhiteout_layers.add(layer)
        elif marker == b"y":
            d.stop = True
            return this
    d.absolute_redirect = False
    redirect = get_redirect(ofs, this)
    if redirect is not None:
        if redirect.startswith("/"):
            d.absolute_redirect = True
            d.stop = False  # an absolute redirect goes on below an opaque ancestor
            d.name = redirect + post
        else:
            d.name = prefix + redirect + post
        d.redirect = d.name
    return this


def _lookup_layer(ofs: OvlFS, d: _Lookup, base: Node, layer: int) -> Node | None:
    """ovl_lookup_layer(): the name, or each component of an absolute name from the layer
    root (a redirect met on the way rewrites the rest of the walk)."""
    if not d.name.startswith("/"):
        return _lookup_single(ofs, d, base, d.name, "", "", layer)
    rem = len(d.name) - 1  # counted from the end: a redirect may change what comes before
    cur: Node | None = base
    while cur is not None and is_dir(cur):
        start = len(d.name) - rem
        end = d.name.find("/", start)
        end = len(d.name) if end < 0 else end
        comp, post = d.name[start:end], d.name[end:]
        cur = _lookup_single(ofs, d, cur, comp, d.name[:start], post, layer)
        if not post:
            return cur
        rem -= len(comp) + 1
    return None


def _check_follow(ofs: OvlFS, d: _Lookup) -> None:
    """ovl_check_follow_redirect(): a metacopy file is followed only with metacopy=on, a
    redirect only when redirects are followed (not redirect_dir=nofollow)."""
    if d.metacopy and not ofs.params.metacopy:
        raise fserr(errno.EPERM)  # "refusing to follow metacopy origin"
    if d.redirect is not None and ofs.params.redirect_dir == "nofollow":
        raise fserr(errno.EPERM)  # "refusing to follow redirect"


class Found:
    """What :func:`lookup_name` found for one name (the parts of ovl_lookup's result)."""

    __slots__ = ("lowerdata_redirect", "lowers", "upper", "xwhiteouts")

    def __init__(self, upper: Node | None, lowers: list[tuple[int, Node]], xwhiteouts: bool,
                 lowerdata_redirect: str | None) -> None:  # fmt: skip
        self.upper = upper
        self.lowers = lowers
        self.xwhiteouts = xwhiteouts
        self.lowerdata_redirect = lowerdata_redirect  # the data is in a data-only layer there


def lookup_name(ofs: OvlFS, parent: OvlInode, name: str) -> Found:
    """ovl_lookup() for ``name`` in ``parent``; empty if absent. ``xwhiteouts``: a lower dir
    on the way is marked opaque="x", which (as the layer's flag in ``ofs.xwhiteout_layers``)
    makes readdir look for xattr whiteouts. The kernel skips that check, and the redirect, on
    the "last" layer: the mount's last merged layer when redirects are followed (with data-only
    layers, only once the name is known to be a dir), else the last lower dir of the parent.

    For a regular file the lowers are the topmost one found (the origin) and, if that is a
    metacopy file, the file holding the data, or ``lowerdata_redirect`` for a lazy one."""
    follow = ofs.params.redirect_dir != "nofollow"
    data_layers = bool(ofs.data_roots)
    check_redirect = follow or data_layers
    d = _Lookup(name)
    plist = parent.lowers
    roots = ofs.merged_roots
    last_layer = len(roots) - 1
    d.last = False if check_redirect else not plist
    upper: Node | None = None
    uppermetacopy = False
    if parent.upper is not None:
        upper = _lookup_single(ofs, d, parent.upper, name, "", "", -1)
        uppermetacopy = upper is not None and d.metacopy
        if d.redirect is not None and d.redirect.startswith("/"):
            plist = roots
    stack: list[tuple[int, Node]] = []
    i = 0
    while not d.stop and i < len(plist):
        layer, lower_dir = plist[i]
        _check_follow(ofs, d)
        if not check_redirect:
            d.last = i == len(plist) - 1
        elif d.is_dir or not data_layers:
            d.last = layer == last_layer
        this = _lookup_layer(ofs, d, lower_dir, layer)
        if this is not None:
            if not (d.metacopy and stack):  # metacopy files between are not kept
                stack.append((layer, this))
            if d.stop:
                break
            if d.redirect is not None and d.redirect.startswith("/") and plist is not roots:
                plist, i = roots, layer  # go on from the next layer of the root's stack
        i += 1
    lazy = None
    if d.metacopy and stack and data_layers and d.absolute_redirect:
        lazy, d.metacopy = d.redirect, False  # the data is looked up on first access
    else:
        _check_follow(ofs, d)
    if d.metacopy or (uppermetacopy and not stack):
        raise fserr(errno.EIO)  # "metacopy with no lower data found - abort lookup"
    if ofs.index is not None and not d.is_dir and (upper is not None or stack):
        from overlaysim.overlay import index  # index=on: origin of an upper file, index entry

        upper, stack = index.lookup(ofs, upper, stack, uppermetacopy)
    elif ofs.index is not None and d.is_dir and ofs.params.nfs_export:
        from overlaysim.overlay import index  # nfs_export: verified origin, dir index entry

        stack = index.lookup_dir(ofs, upper, stack)
    return Found(upper, stack, d.xwhiteouts, lazy)


def lookup_lowerdata(ino: OvlInode) -> None:
    """ovl_maybe_lookup_lowerdata(): find the data of a lazy metacopy file in the data-only
    layers, top-down, by its absolute redirect from each layer's root; the first regular file
    wins. Otherwise the error of the last layer: ENOENT (missing, or not a regular file: a
    symlink at the end is not followed), ENOTDIR, ELOOP (a symlink on the way), EXDEV (".."
    above the layer's root)."""
    redirect = ino.lowerdata_redirect
    if redirect is None or len(ino.lowers) > 1:
        return  # not lazy, or already found
    if not redirect.startswith("/"):
        raise fserr(errno.EIO)
    err = errno.ENOENT
    for layer, root in ino.ofs.data_roots:
        try:
            node = _walk_beneath(root, redirect)
        except OSError as e:
            err = e.errno or errno.EIO
            continue
        ino.lowers.append((layer, node))
        return
    raise fserr(err)


def _walk_beneath(root: Node, path: str) -> Node:
    """vfs_path_lookup(LOOKUP_BENEATH | LOOKUP_NO_SYMLINKS | LOOKUP_NO_XDEV) from ``root``."""
    cur = root
    for comp in path.split("/"):
        if not comp:
            continue
        if cur.mode & _S_IFMT == st.S_IFLNK:
            raise fserr(errno.ELOOP)  # LOOKUP_NO_SYMLINKS (a last one is not followed)
        if not is_dir(cur):
            raise fserr(errno.ENOTDIR)
        if comp == ".":
            continue
        if comp == "..":
            if cur is root:
                raise fserr(errno.EXDEV)  # LOOKUP_BENEATH: no way out of the layer
            cur = cur.parent
            continue
        nxt = cur.lookup(comp)
        if nxt is None:
            raise fserr(errno.ENOENT)
        cur = nxt
    if cur.mode & _S_IFMT != _S_IFREG:
        raise fserr(errno.ENOENT)  # only a regular file can hold the data
    return cur


def lower_positive(ofs: OvlFS, parent: OvlInode, name: str) -> bool:
    """Does ``name`` exist (not whited out) in one of the parent's lower directories?"""
    for _layer, pdir in parent.lowers:
        e = pdir.lookup(name)
        if e is not None:
            return not is_whiteout(ofs, e)
    return False
