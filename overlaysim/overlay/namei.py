"""Lookup across the layer stack (fs/overlayfs/namei.c).

For one name: the upper layer first, then the parent's lower directories top-down. The first
hit decides: a whiteout hides the name, a non-directory hides everything below it, a directory
starts a merge that stops at an opaque directory, at a non-directory or at the bottom.
Redirects (absolute or relative) send the lookup in the layers below to another name.
"""

from __future__ import annotations

import errno
import stat as st
from typing import TYPE_CHECKING

from overlaysim.vfs.node import Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT = 0o170000
_S_IFDIR, _S_IFCHR, _S_IFREG = st.S_IFDIR, st.S_IFCHR, st.S_IFREG


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
    return text


def _walk_lower(root: Node, comps: list[str]) -> Node | None:
    cur: Node | None = root
    for c in comps:
        if cur is None or not is_dir(cur):
            return None
        cur = cur.lookup(c)
    return cur


def lookup_layers(
    ofs: OvlFS, parent: OvlInode, name: str
) -> tuple[Node | None, list[tuple[int, Node]], bool]:
    """(upper, [(layer, lower node)...], xwhiteouts) for ``name`` in ``parent``; empty if
    absent. ``xwhiteouts``: a lower dir on the way is marked opaque="x", which (as the layer's
    flag in ``ofs.xwhiteout_layers``) makes readdir look for xattr whiteouts. The kernel skips
    that check on the "last" layer: the mount's last lower layer when redirects are followed,
    else the last lower dir of the parent."""
    upper: Node | None = None
    found: list[tuple[int, Node]] = []
    xwhiteouts = False
    cur_name = name
    abs_path: list[str] | None = None
    if parent.upper is not None:
        u = parent.upper.lookup(name)
        if u is not None:
            if is_whiteout(ofs, u):
                return None, [], False
            upper = u
            if not is_dir(u):
                return u, [], False
            if is_opaque(ofs, u):
                return u, [], False
            redirect = get_redirect(ofs, u)
            if redirect is not None:
                if redirect.startswith("/"):
                    abs_path = [c for c in redirect.split("/") if c]
                else:
                    cur_name = redirect
    plist = parent.lower_by_layer()
    follow = ofs.params.redirect_dir != "nofollow"
    last_layer = len(ofs.lower_roots) - 1 if follow else max(plist, default=-1)
    for layer, root in enumerate(ofs.lower_roots):
        if abs_path is not None:
            e = _walk_lower(root, abs_path)
        else:
            pdir = plist.get(layer)
            if pdir is None:
                continue
            e = pdir.lookup(cur_name)
        if e is None:
            continue
        if is_whiteout(ofs, e):
            break
        if not is_dir(e):
            if upper is None and not found:
                found.append((layer, e))
            break
        found.append((layer, e))
        if layer == last_layer:
            break  # d->last: neither opaque nor redirect is read there
        marker = xattr(e, ofs.prefix + "opaque")
        if marker == b"x":
            xwhiteouts = True
            ofs.xwhiteout_layers.add(layer)
        elif marker == b"y":
            break
        redirect = get_redirect(ofs, e)
        if redirect is not None:
            if redirect.startswith("/"):
                abs_path = [c for c in redirect.split("/") if c]
            elif abs_path is not None:
                abs_path[-1] = redirect
            else:
                cur_name = redirect
    return upper, found, xwhiteouts


def lower_positive(ofs: OvlFS, parent: OvlInode, name: str) -> bool:
    """Does ``name`` exist (not whited out) in one of the parent's lower directories?"""
    for _layer, pdir in parent.lowers:
        e = pdir.lookup(name)
        if e is not None:
            return not is_whiteout(ofs, e)
    return False
