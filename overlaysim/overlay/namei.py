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
    """The redirect of a directory, honouring redirect_dir=nofollow (EPERM) and bad values."""
    value = xattr(node, ofs.prefix + "redirect")
    if value is None:
        return None
    if ofs.params.redirect_dir == "nofollow":
        raise fserr(errno.EPERM)  # "refusing to follow redirect"
    text = value.decode("utf-8", "surrogateescape")
    comps = text.split("/")
    if not text or ".." in comps or "\0" in text or (not text.startswith("/") and len(comps) > 1):
        raise fserr(errno.EINVAL)  # "invalid redirect"
    if text.startswith("/") and "" in comps[1:]:
        raise fserr(errno.EINVAL)  # "/", "//a", "/a/": an empty component
    return text


class _Lookup:
    """struct ovl_lookup_data: the state of one name's walk down the layers."""

    __slots__ = ("is_dir", "last", "metacopy", "name", "redirect", "stop", "xwhiteouts")

    def __init__(self, name: str) -> None:
        self.name = name  # the name to look up next; an absolute path after a "/..." redirect
        self.is_dir = False
        self.stop = False
        self.last = False
        self.metacopy = False
        self.xwhiteouts = False
        self.redirect: str | None = None


def _lookup_single(ofs: OvlFS, d: _Lookup, base: Node, name: str, prefix: str, post: str,
                   layer: int) -> Node | None:  # fmt: skip
    """ovl_lookup_single(): one component in one layer (``layer`` -1 is the upper one).

    ``prefix``/``post``: the parts of an absolute name before and after this component."""
    last_element = not post
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
    redirect = get_redirect(ofs, this)
    if redirect is not None:
        if redirect.startswith("/"):
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
    """ovl_check_follow_redirect(): metacopy files are followed only with metacopy=on."""
    if d.metacopy and not ofs.params.metacopy:
        raise fserr(errno.EPERM)  # "refusing to follow metacopy origin"


def lookup_layers(
    ofs: OvlFS, parent: OvlInode, name: str
) -> tuple[Node | None, list[tuple[int, Node]], bool]:
    """(upper, [(layer, lower node)...], xwhiteouts) for ``name`` in ``parent``; empty if
    absent (ovl_lookup). ``xwhiteouts``: a lower dir on the way is marked opaque="x", which
    (as the layer's flag in ``ofs.xwhiteout_layers``) makes readdir look for xattr whiteouts.
    The kernel skips that check on the "last" layer: the mount's last lower layer when
    redirects are followed, else the last lower dir of the parent.

    For a regular file the lowers are the topmost one found (the origin) and, if that is a
    metacopy file, the file holding the data."""
    follow = ofs.params.redirect_dir != "nofollow"
    d = _Lookup(name)
    plist = parent.lowers
    roots = list(enumerate(ofs.lower_roots))
    d.last = False if follow else not plist
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
        d.last = layer == len(roots) - 1 if follow else i == len(plist) - 1
        this = _lookup_layer(ofs, d, lower_dir, layer)
        if this is not None:
            if not (d.metacopy and stack):  # metacopy files between are not kept
                stack.append((layer, this))
            if d.stop:
                break
            if d.redirect is not None and d.redirect.startswith("/") and plist is not roots:
                plist, i = roots, layer  # go on from the next layer of the root's stack
        i += 1
    _check_follow(ofs, d)
    if d.metacopy or (uppermetacopy and not stack):
        raise fserr(errno.EIO)  # "metacopy with no lower data found - abort lookup"
    return upper, stack, d.xwhiteouts


def lower_positive(ofs: OvlFS, parent: OvlInode, name: str) -> bool:
    """Does ``name`` exist (not whited out) in one of the parent's lower directories?"""
    for _layer, pdir in parent.lowers:
        e = pdir.lookup(name)
        if e is not None:
            return not is_whiteout(ofs, e)
    return False
