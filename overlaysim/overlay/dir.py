"""Namespace operations on merged directories (fs/overlayfs/dir.c).

Whiteouts are left only where a lower entry exists; all whiteouts of one mount are hard links
to one master inode in ``work/work`` (so their nlink counts up), except those a rename leaves
behind, which the upper filesystem makes itself (RENAME_WHITEOUT: nlink 1).
``mkdir`` over a whiteout makes an opaque directory; a plain ``mkdir`` does so only inside a
merge dir when redirect_dir/index/metacopy/xino=on forbid offline lower changes. Renaming a
lower or merged directory is EXDEV unless ``redirect_dir=on``. A moved merge dir, and a moved
or hard-linked metacopy file, get a ``redirect`` to where their lower part is.
"""

from __future__ import annotations

import errno
import stat as st
from typing import TYPE_CHECKING

from overlaysim.events import Event
from overlaysim.overlay import index
from overlaysim.overlay.copy_up import copy_up, set_impure
from overlaysim.overlay.namei import is_whiteout, lookup_lowerdata, lower_positive, xattr
from overlaysim.overlay.readdir import check_empty
from overlaysim.vfs.memfs import RENAME_EXCHANGE, RENAME_WHITEOUT
from overlaysim.vfs.node import Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT = 0o170000
REDIRECT_MAX = 256


def _new_child(d: OvlInode, name: str, upper: Node) -> OvlInode:
    from overlaysim.overlay.inode import OvlInode

    child = OvlInode(d.ofs, d, name, upper, [])
    d.children[name] = child
    return child


def _drop_whiteout(ud: Node, name: str, ofs: OvlFS) -> bool:
    """Remove a whiteout standing at ``name`` in an upper dir; True if there was one."""
    existing = ud.lookup(name)
    if existing is not None and is_whiteout(ofs, existing):
        ud.unlink(name, existing)
        return True
    return False


def _upper_whiteout(ud: Node, name: str, ofs: OvlFS) -> bool:
    existing = ud.lookup(name)
    return existing is not None and is_whiteout(ofs, existing)


def make_whiteout(ofs: OvlFS, ud: Node, name: str, path: str, reason: str) -> None:
    master = ofs.whiteout_master()
    ud.link(name, master)
    ofs.emit(Event("whiteout", path, ofs.mount_path, reason,
                   {"nlink": master.stat().st_nlink, "shared": True}))  # fmt: skip


def _child_path(d: OvlInode, name: str) -> str:
    base = d.merged_path()
    return base.rstrip("/") + "/" + name


# --- create / link ----------------------------------------------------------------------------
def create(
    d: OvlInode, name: str, mode: int, uid: int, gid: int, *, rdev: int = 0, target: str = ""
) -> OvlInode:
    ofs = d.ofs
    ftype = mode & _S_IFMT
    if ftype == st.S_IFCHR and rdev == 0:
        raise fserr(errno.EPERM)  # a whiteout cannot be made through the overlay
    ud = copy_up(d, "create inside a lower directory")
    over_whiteout = _drop_whiteout(ud, name, ofs)
    if ftype == st.S_IFDIR:
        new = ud.mkdir(name, mode & 0o7777, uid, gid)
        # A new dir in a merge dir is made opaque when a whiteout was there, and always when
        # lower layers may not change offline (ovl_create_upper's "optimisation").
        merge_parent = bool(d.lowers) and not ofs.params.allow_offline_changes
        if over_whiteout or merge_parent:
            new.setxattr(ofs.prefix + "opaque", b"y", 0)
            why = "mkdir over a whiteout" if over_whiteout else \
                "mkdir in a merge dir with redirect_dir/index/metacopy/xino=on"
            ofs.emit(Event("opaque", _child_path(d, name), ofs.mount_path, why, {}))
    elif ftype == st.S_IFLNK:
        new = ud.symlink(name, target, uid, gid)
    else:
        new = ud.create(name, mode, uid, gid, rdev)
    return _new_child(d, name, new)


def link(d: OvlInode, name: str, src: OvlInode) -> OvlInode:
    ofs = d.ofs
    usrc = copy_up(src, "link")
    ud = copy_up(d, "link into a lower directory")
    if src.is_metacopy_dentry():
        # The new name must find the data too, wherever it is: an absolute redirect to the
        # source's lower path (ovl_set_link_redirect).
        set_redirect(src, False, src.merged_path(), "link of a metacopy file")
    if ofs.index is not None:
        index.nlink_start(src, "link")
    _drop_whiteout(ud, name, ofs)
    ud.link(name, usrc)
    if _const_ino(src):  # ovl_link: origin-typed sources only (not lower hard links)
        set_impure(ofs.prefix, ud)
    child = _new_child(d, name, usrc)
    child.lowers = list(src.lowers)
    # The kernel drops the new dentry and looks it up afresh: its st_ino comes from the origin
    # on disk (none for special files under userxattr), not from the source's cached inode.
    child.origin_ino = child.origin_of(usrc)
    if ofs.params.nfs_export and index.is_indexed(child):
        d.children.pop(name, None)  # dropped: only a lookup keeps the inode's count alive
    return child


# --- unlink / rmdir ---------------------------------------------------------------------------
def _clean_whiteouts(ud: Node, names: list[str]) -> None:
    for n in names:
        w = ud.lookup(n)
        if w is not None:
            ud.unlink(n, w)


def remove(d: OvlInode, name: str, child: OvlInode, *, is_dir: bool) -> None:
    ofs = d.ofs
    positive = lower_positive(ofs, d, name)
    # ovl_do_remove: the overlay's emptiness check (upper whiteouts do not count) unless the
    # dir is pure upper with nothing below its name; then the upper fs's rmdir refuses any entry
    overlay_check = is_dir and (positive or not _pure_upper(child))
    cleanup = check_empty(child) if overlay_check else []
    path = _child_path(d, name)
    indexed_dir = False
    if ofs.index is not None and (not is_dir or ofs.params.nfs_export):  # ovl_nlink_start
        copy_up(d, "unlink inside a lower directory")
        index.nlink_start(child, "removal of an indexed object")
        indexed_dir = is_dir and index.dir_indexed(child)
    if positive:
        ud = copy_up(d, "unlink inside a lower directory")
        if child.upper is not None:
            _clean_whiteouts(child.upper, cleanup)
            (ud.rmdir if is_dir else ud.unlink)(name, child.upper)
        make_whiteout(ofs, ud, name, path, "rmdir" if is_dir else "unlink")
    else:
        # ovl_do_remove copies the parent up first; a cached name whose lower entry vanished
        # offline (undefined behaviour, but no crash) meets a negative upper: ENOENT.
        pdir = copy_up(d, "unlink inside a lower directory")
        upper = child.upper
        if upper is None or pdir.lookup(name) is not upper:
            raise fserr(errno.ENOENT if upper is None else errno.ESTALE)
        if is_dir:
            _clean_whiteouts(upper, cleanup)
            pdir.rmdir(name, upper)
        else:
            pdir.unlink(name, upper)
    child.dead = True
    d.children[name] = None
    if ofs.index is not None and (not is_dir or indexed_dir):
        index.nlink_end(child, indexed_dir)


# --- rename -----------------------------------------------------------------------------------
def lower_path(ino: OvlInode) -> str:
    """Where a directory came from in the lower layers (following earlier redirects)."""
    if ino.parent is ino:
        return ""
    r = xattr(ino.upper, ino.ofs.prefix + "redirect") if ino.upper is not None else None
    if r is not None:
        text = r.decode("utf-8", "surrogateescape")
        if text.startswith("/"):
            return text
        name = text
    else:
        name = ino.name
    parent = ino.parent
    assert parent is not ino
    return lower_path(parent) + "/" + name  # type: ignore[arg-type]


def _same_inode(a: OvlInode, b: OvlInode) -> bool:
    """Upper hard links share one overlay inode (hashed by the upper inode). Lower hard links
    do not without index=on: renaming one over the other copies it up and really renames."""
    if a.is_dir() or b.is_dir():
        return a is b
    if a.upper is not None and a.upper is b.upper:
        # unless one name's overlay inode was hashed by its lower before a copy-up that could
        # not record an origin (a symlink under userxattr): two inodes, two st_ino
        return a is b or a.stat().st_ino == b.stat().st_ino
    return index.same_inode(a, b)


def set_redirect(node: OvlInode, samedir: bool, path: str, why: str) -> None:
    """ovl_set_redirect(): where a moved merge dir or metacopy file came from in the lowers.

    Its name when it stays in its directory; an absolute path from the root otherwise, and
    always for a file whose lower is a hard link (an upper link could be anywhere). A redirect
    it has is kept unless an absolute one is needed and it is relative. An absolute redirect
    longer than redirect_max (256) is EXDEV: user space then copies."""
    ofs = node.ofs
    upper = node.upper
    assert upper is not None
    current = xattr(upper, ofs.prefix + "redirect")
    absolute = not samedir or (not node.is_dir() and node.lowers[0][1].stat().st_nlink > 1)
    if current is not None and (not absolute or current.startswith(b"/")):
        return
    text = lower_path(node) if absolute else node.name
    value = text.encode("utf-8", "surrogateescape")
    if absolute and len(value) > REDIRECT_MAX:
        raise fserr(errno.EXDEV)
    upper.setxattr(ofs.prefix + "redirect", value, 0)
    ofs.emit(Event("redirect", path, ofs.mount_path, why, {"redirect": text}))


def rename(
    olddir: OvlInode, name: str, src: OvlInode, newdir: OvlInode, newname: str, flags: int
) -> None:
    ofs = olddir.ofs
    exchange = bool(flags & RENAME_EXCHANGE)
    tgt = newdir.lookup(newname)
    if tgt is not None and _same_inode(src, tgt):
        return  # vfs_rename(): two names of one (overlay) inode, nothing to do, whatever flags
    if flags & RENAME_WHITEOUT:
        raise fserr(errno.EINVAL)
    movers = [(src, olddir, newdir)] + ([(tgt, newdir, olddir)] if exchange and tgt else [])
    for node, _frm, to in movers:
        if node.is_dir() and node.lowers and ofs.params.redirect_dir != "on":
            ofs.emit(Event("exdev", node.merged_path(), ofs.mount_path,
                           "rename of a lower or merged directory needs redirect_dir=on",
                           {"to": _child_path(to, newname if node is src else name)}))  # fmt: skip
            raise fserr(errno.EXDEV)
    # A pure upper target (no lower, no origin) is left to the upper fs to find non-empty,
    # after the copy-ups and the source's redirect/opaque (ovl_rename's order).
    overlay_check = tgt is not None and not exchange and tgt.is_dir() and not _pure_upper(tgt)
    cleanup = check_empty(tgt) if overlay_check and tgt is not None else []
    # ovl_copy_up(old) comes first and looks up a lazy lowerdata before any copy-up: a missing
    # one fails the rename with nothing copied up, not even the new parent
    lookup_lowerdata(src)
    uold = copy_up(olddir, "rename inside a lower directory")
    unew = copy_up(newdir, "rename into a lower directory")
    usrc = copy_up(src, "rename")
    if tgt is not None and tgt.upper is usrc:
        # two overlay inodes over one upper inode (see _same_inode): ovl_rename finds the upper
        # names already linked to each other and gives up with ESTALE (Linux 6.18)
        raise fserr(errno.ESTALE)
    if exchange:
        assert tgt is not None
        copy_up(tgt, "rename")
    elif tgt is not None and tgt.upper is not None and tgt.is_dir():
        _clean_whiteouts(tgt.upper, cleanup)
    elif tgt is not None and ofs.index is not None:  # ovl_nlink_start of the replaced name
        index.nlink_start(tgt, "rename over an indexed object")
    tgt_indexed_dir = tgt is not None and not exchange and index.dir_indexed(tgt)
    # What ovl_rename() writes before the real rename (so it stays if that fails): "impure"
    # on a new parent of an origin-typed object, then redirects (or opaque).
    samedir = olddir is newdir
    for node, _frm, to in movers:
        if not samedir and _const_ino(node):
            assert to.upper is not None
            set_impure(ofs.prefix, to.upper)
    for node, _frm, to in movers:
        _before_move(node, to, newname if node is src else name,
                     tgt if node is src else None, samedir)  # fmt: skip
    needs_wh = not exchange and lower_positive(ofs, olddir, name)
    # "Switch whiteouts": onto an upper whiteout, the source is exchanged with it, so that
    # very whiteout (chr 0/0 or xattr form, shared nlink and all) now hides the old name.
    if needs_wh and tgt is None and _upper_whiteout(unew, newname, ofs):
        uold.rename(name, usrc, unew, newname, RENAME_EXCHANGE)
        ofs.emit(Event("whiteout", _child_path(olddir, name), ofs.mount_path,
                       "rename onto a whiteout (whiteouts switched)", {"moved": True}))  # fmt: skip
    elif not exchange and tgt is None and src.is_dir() and _upper_whiteout(unew, newname, ofs):
        # A directory cannot replace a whiteout (rename(2) of a dir onto a non-dir is ENOTDIR
        # on a real upper fs): ovl_rename exchanges the two, then removes the whiteout.
        uold.rename(name, usrc, unew, newname, RENAME_EXCHANGE)
        _drop_whiteout(uold, name, ofs)
    else:
        uold.rename(name, usrc, unew, newname, (RENAME_WHITEOUT if needs_wh else 0) | flags)
        if needs_wh:
            ofs.emit(Event("whiteout", _child_path(olddir, name), ofs.mount_path, "rename",
                           {"nlink": 1, "shared": False}))  # fmt: skip
    if exchange:
        assert tgt is not None
        olddir.children[name] = tgt
        tgt.parent, tgt.name = olddir, name
    else:
        olddir.children[name] = None
        if tgt is not None:
            tgt.dead = True
            if ofs.index is not None:
                index.nlink_end(tgt, tgt_indexed_dir)
    newdir.children[newname] = src
    src.parent, src.name = newdir, newname


def _const_ino(node: OvlInode) -> bool:
    """OVL_TYPE_ORIGIN: an origin the inode number comes from; not for a lower hard link,
    whose link is broken by copy-up (ovl_hash_bylower)."""
    if node.origin_ino is not None:
        return True
    return bool(node.lowers) and node.keeps_origin()


def _pure_upper(d: OvlInode) -> bool:
    """ovl_pure_upper(): no lower and no origin, so it cannot hide whiteouts."""
    return not d.lowers and d.upper is not None and xattr(d.upper, d.ofs.prefix + "origin") is None


def _before_move(node: OvlInode, to: OvlInode, newname: str, replaced: OvlInode | None,
                 samedir: bool) -> None:  # fmt: skip
    """The redirect of a merge dir or metacopy file, or the opaque mark of an upper dir that
    moves into a merge dir."""
    ofs = node.ofs
    upper = node.upper
    assert upper is not None and to.upper is not None
    path = _child_path(to, newname)
    if node.lowers and (node.is_dir() or node.metacopy):  # ovl_type_merge_or_lower()
        why = "rename of a lower directory" if node.is_dir() else "rename of a metacopy file"
        set_redirect(node, samedir, path, why)
    elif node.is_dir() and (to.lowers or (replaced is not None and replaced.lowers)):
        upper.setxattr(ofs.prefix + "opaque", b"y", 0)
        ofs.emit(Event("opaque", path, ofs.mount_path, "upper directory moved into a merge dir", {}))
