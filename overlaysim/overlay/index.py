"""The inodes index (``index=on``): hard links of the lower layers kept together by W/index.

Mirrors the index parts of fs/overlayfs: super.c (ovl_get_indexdir), readdir.c
(ovl_indexdir_cleanup), namei.c (ovl_verify_index, ovl_lookup_index), copy_up.c
(ovl_need_index, ovl_link_up), util.c (ovl_cleanup_index, ovl_nlink_start/end) and inode.c
(ovl_get_nlink, ovl_set_nlink_*). What Linux 6.18 does, as measured on tmpfs layers:

* At mount the upper root gets ``origin`` (the first lower root's handle) and W/index (mode
  0000, kept across mounts) gets ``upper`` (the upper root's handle, "upper" flag); either
  one not matching (layers swapped, copied to another fs) refuses the mount with ESTALE.
  W/index is also the mount's work dir from then on: whiteout masters and temp files go
  there, and W/work stays empty.
* Copying up a lower file with several links (only those) copies it into W/index under the
  hex of its origin handle, then links it at its name ("link-up"); every other name of the
  lower inode then finds that inode through the index (one copy-up for all the names).
* The overlay link count is kept in ``nlink`` as "U%+d" (relative to the upper inode's
  count) or, transiently, "L%+d" (relative to the lower's); unlinking, renaming over or
  linking an indexed name first links it up, and when the count reaches zero the index
  entry goes.
* At mount the entries are checked (ovl_indexdir_cleanup): "#" temp names go; stale,
  mismatched and orphan (count zero) entries go; whiteouts and directories stay; a name
  that is not a handle (EINVAL), of another version or endianness, or an entry without
  ``origin`` (ENODATA) refuses the mount.
* nfs_export=on indexes every copy-up (a directory gets a W/index directory whose ``upper``
  names the upper dir), copies an object up before removing it, and whites out the index
  entry of a removed object (and, at mount, orphans: a dir entry whose upper dir is gone),
  so a file handle of it is stale; a lower dir with such an entry is EIO on lookup.
"""

from __future__ import annotations

import errno
import re
import stat as st
from typing import TYPE_CHECKING

from overlaysim.events import Event
from overlaysim.overlay import fh
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT = 0o170000
_NLINK = re.compile(r"([LU])([+-][0-9]+)\n?")
_TRY = "overlayfs: try deleting index dir or mounting with '-o index=off' to disable inodes index."


class OvlIndex:
    """The index dir of one mount, and the overlay inodes that share a lower inode.

    The kernel has one overlay inode for all the names of an indexed (or not yet copied up)
    lower hard link; the simulator has one object per name, so the names met before a
    copy-up are remembered here and given the new upper inode when one of them copies up."""

    __slots__ = ("aliases", "dir", "fresh", "ofs")

    def __init__(self, ofs: OvlFS, indexdir: Node) -> None:
        self.ofs = ofs
        self.dir = indexdir
        self.aliases: dict[int, list[OvlInode]] = {}  # id(lower inode) -> names seen
        # nfs_export: upper inodes of single-link lowers indexed by this mount. The kernel's
        # in-memory count of such an inode stays the lower's (the index link is not counted);
        # looked up after a remount, the count is the upper inode's (ovl_get_nlink fallback).
        self.fresh: set[int] = set()

    def name_of(self, lower: Node) -> str | None:
        handle = fh.encode(lower, with_uuid=self.ofs.origin_uuid)
        return None if handle is None else handle.index_name()

    def entry_of(self, lower: Node) -> Node | None:
        name = self.name_of(lower)
        return None if name is None else self.dir.lookup(name)

    def track(self, ino: OvlInode) -> None:
        """Remember a name of a lower hard link that has no upper inode yet."""
        if ino.upper is None and ino.lowers and ino.ftype != st.S_IFDIR:
            lower = ino.lowers[0][1]
            if _nlink(lower) > 1:
                self.aliases.setdefault(id(lower), []).append(ino)

    def share(self, ino: OvlInode) -> None:
        """The other names of ``ino``'s lower inode now have its (indexed) upper inode."""
        lower = ino.lowers[0][1]
        for other in self.aliases.pop(id(lower), []):
            if other is not ino and other.upper is None and not other.dead:
                other.upper = ino.upper
                other.origin_ino = lower.ino


# --- mount ------------------------------------------------------------------------------------
def setup(ofs: OvlFS, upper: Node, workdir: Node, upper_name: str) -> OvlIndex:
    """ovl_get_indexdir(): verify (or set) the upper root's origin and W/index's 'upper',
    then clean the index. ``upper_name``: the upper dir as the kernel's %pd2 prints it."""
    p = ofs.prefix
    root_fh = fh.encode(ofs.lower_roots[0], with_uuid=ofs.origin_uuid)
    assert root_fh is not None  # lowers without handles fall back to index=off before this
    if _verify_set(upper, p + "origin", root_fh):
        raise OSError(errno.ESTALE, "overlayfs: failed to verify upper root origin")
    indexdir = workdir.lookup("index")
    if indexdir is None:
        indexdir = workdir.mkdir("index", 0, 0, 0)  # ovl_workdir_create(persist): mode 0000
    upper_fh = fh.encode(upper, upper=True, with_uuid=ofs.origin_uuid)
    assert upper_fh is not None
    if _verify_set(indexdir, p + "upper", upper_fh):
        raise OSError(errno.ESTALE, "; ".join([
            f"overlayfs: failed to verify upper ({upper_name}, ino={upper.ino}, err=-116)",
            "overlayfs: failed to verify index dir 'upper' xattr", _TRY]))  # fmt: skip
    ix = OvlIndex(ofs, indexdir)
    ofs.work = indexdir  # cleanup may make whiteouts: their master lives here
    _cleanup(ix)
    return ix


def _verify_set(node: Node, name: str, handle: fh.FileHandle) -> bool:
    """ovl_verify_set_fh(set=True): True on a mismatch; a missing (or unreadable) handle is
    written."""
    stored = fh.get_fh(node, name)
    if stored is None:
        node.setxattr(name, handle.to_bytes(), 0)
        return False
    return stored != handle


def _cleanup(ix: OvlIndex) -> None:
    """ovl_indexdir_cleanup(): every entry in the index dir's own order."""
    d = ix.dir
    if d.mode & _S_IFMT != st.S_IFDIR:
        raise OSError(errno.ENOTDIR, f"overlayfs: failed index dir cleanup (-{errno.ENOTDIR}); {_TRY}")
    removed = []
    for name, _dtype, _ino in d.readdir():
        entry = d.lookup(name)
        if entry is None:
            continue
        if name.startswith("#"):  # a leftover of an index create or cleanup, or a whiteout master
            remove_tree(d, name, entry)
            continue
        err, line = verify_index(ix, name, entry)
        if err == 0:
            continue
        if err not in (errno.ESTALE, errno.ENOENT):  # an incompatible index: keep it intact
            raise OSError(err, f"{line}; overlayfs: failed index dir cleanup (-{err}); {_TRY}")
        if err == errno.ENOENT and ix.ofs.params.nfs_export:
            whiteout_entry(ix, name, entry)  # an orphan blocks open by handle from now on
        else:
            (d.rmdir if entry.mode & _S_IFMT == st.S_IFDIR else d.unlink)(name, entry)
        removed.append(name)
    if removed:
        ix.ofs.emit(Event("index", ix.ofs.mount_path, ix.ofs.mount_path,
                          "stale or orphan index entries removed at mount",
                          {"removed": len(removed)}))  # fmt: skip


def verify_index(ix: OvlIndex, name: str, entry: Node) -> tuple[int, str]:
    """ovl_verify_index(): 0, or the errno and the log line. ESTALE (stale, mismatched) and
    ENOENT (orphan) entries are removed; any other errno refuses the mount."""
    ofs = ix.ofs
    ftype = entry.mode & _S_IFMT

    def fail(code: int) -> tuple[int, str]:
        return code, f"overlayfs: failed to verify index (index/{name}, ftype={ftype:x}, err=-{code})"

    try:
        handle = fh.from_index_name(name)
    except fh.HandleError as e:
        return fail(e.errno)
    if _is_whiteout(entry):
        return 0, ""  # marks a stale exported handle (nfs_export): kept
    if ftype == st.S_IFDIR and not ofs.params.nfs_export:
        return 0, ""  # directory entries are only checked for NFS export
    if ftype == st.S_IFDIR:  # ovl_index_upper(): the origin is on the upper dir it names
        up = fh.get_fh(entry, ofs.prefix + "upper")
        if up is None:
            return fail(errno.ESTALE)
        upper = index_upper(ix, entry)
        if upper is None:  # the upper dir is gone: an orphan, whited out
            return errno.ENOENT, (f"overlayfs: orphan index entry (index/{name}, ftype={ftype:x}, "
                                  f"nlink={_nlink(entry)})")  # fmt: skip
        entry = upper
    stored = fh.get_fh(entry, ofs.prefix + "origin")
    if stored is None:
        return fail(errno.ENODATA)
    if stored != handle:
        return fail(errno.ESTALE)
    if ftype != st.S_IFDIR and _nlink(entry) == 1:
        found = fh.decode_lower(ofs, handle)
        if found is None or found[1].mode & _S_IFMT != ftype:
            return fail(errno.ESTALE)
        if get_nlink(ofs, found[1], entry, 0) == 0:
            return errno.ENOENT, (f"overlayfs: orphan index entry (index/{name}, ftype={ftype:x}, "
                                  "nlink=1)")  # fmt: skip
    return 0, ""


def index_upper(ix: OvlIndex, entry: Node) -> Node | None:
    """ovl_index_upper(connected): the upper dir a directory index entry names, or None
    when it names none that lives (an upper handle decoded on the upper layer)."""
    ofs = ix.ofs
    handle = fh.get_fh(entry, ofs.prefix + "upper")
    root = ofs.upper_root
    if handle is None or root is None:
        return None
    node = ofs.handles.decode(handle, root, with_uuid=ofs.origin_uuid, connected=True)
    if node is None or node.mode & _S_IFMT != st.S_IFDIR:
        return None
    return node


def whiteout_entry(ix: OvlIndex, name: str, entry: Node) -> None:
    """ovl_cleanup_and_whiteout(): the index entry becomes a whiteout (a link to the mount's
    shared whiteout), so a handle of the removed object is stale rather than decodable."""
    d = ix.dir
    if entry.mode & _S_IFMT == st.S_IFDIR:
        remove_tree(d, name, entry)
    else:
        d.unlink(name, entry)
    d.link(name, ix.ofs.whiteout_master())


def remove_tree(parent: Node, name: str, node: Node) -> None:
    """Remove ``name`` and everything below it (work/work at mount, stale index entries)."""
    if node.mode & _S_IFMT == st.S_IFDIR:
        for child in list(node.iter_names()):
            sub = node.lookup(child)
            if sub is not None:
                remove_tree(node, child, sub)
        parent.rmdir(name, node)
    else:
        parent.unlink(name, node)


def _is_whiteout(node: Node) -> bool:
    return node.mode & _S_IFMT == st.S_IFCHR and node.stat().st_rdev == 0


def _xattr(node: Node, name: str) -> bytes | None:
    try:
        return node.getxattr(name)
    except OSError:
        return None


def _nlink(node: Node) -> int:
    return node.nlink if isinstance(node, MemInode) else node.stat().st_nlink


# --- lookup -----------------------------------------------------------------------------------
def lookup(ofs: OvlFS, upper: Node | None, stack: list[tuple[int, Node]],
           uppermetacopy: bool) -> tuple[Node | None, list[tuple[int, Node]]]:  # fmt: skip
    """The index parts of ovl_lookup() for a non-directory: an upper file's lower is its
    decoded origin (a metacopy file's, found by path, must match it: ESTALE otherwise); a
    name with no upper file of its own finds its copied-up inode in the index."""
    origin: Node | None = None
    if upper is not None:
        found = fh.check_origin(ofs, upper)
        if found is None:
            return upper, stack
        if not uppermetacopy:
            stack, origin = [found], found[1]
        elif stack:
            this = fh.encode(stack[0][1], with_uuid=ofs.origin_uuid)
            if this is None or this != fh.get_fh(upper, ofs.prefix + "origin"):
                raise fserr(errno.ESTALE)  # ovl_verify_origin: not the lower it was copied from
            origin = stack[0][1]
    elif stack:
        origin = stack[0][1]
    if origin is None or origin.mode & _S_IFMT == st.S_IFDIR:
        return upper, stack
    entry = lookup_index(ofs, upper, origin)
    return (entry if upper is None else upper), stack


def lookup_dir(ofs: OvlFS, upper: Node | None,
               stack: list[tuple[int, Node]]) -> list[tuple[int, Node]]:  # fmt: skip
    """The nfs_export parts of ovl_lookup() for a directory: a merge dir's upper must have
    been copied up from the lower dir found (``origin``, none yet: ovl_fix_origin will set
    it), else it is not merged; then its index entry, if any, must name this upper dir. A
    lower dir with an entry (removed or redirected since) or a whiteout entry is EIO."""
    if not stack:
        return stack
    origin = stack[0][1]
    if upper is not None:
        stored = _xattr(upper, ofs.prefix + "origin")
        if stored is not None:
            this = fh.encode(origin, with_uuid=ofs.origin_uuid)
            if this is None or stored != this.to_bytes():
                return []  # "invalid origin": the upper dir stands alone
    ix = ofs.index
    assert ix is not None
    entry = ix.entry_of(origin)
    if entry is None:
        return stack
    if upper is None or entry.mode & _S_IFMT != st.S_IFDIR:
        raise fserr(errno.EIO)  # "bad index found" / "suspected uncovered redirected dir"
    want = fh.encode(upper, upper=True, with_uuid=ofs.origin_uuid)
    if want is None or fh.get_fh(entry, ofs.prefix + "upper") != want:
        raise fserr(errno.EIO)  # "suspected multiply redirected dir found"
    return stack


def lookup_index(ofs: OvlFS, upper: Node | None, origin: Node) -> Node | None:
    """ovl_lookup_index(verify): the index entry of ``origin`` for a non-directory; None when
    there is none or it is not ``upper``'s inode. A whiteout or an entry of another type is
    EIO ("bad index found")."""
    ix = ofs.index
    assert ix is not None
    entry = ix.entry_of(origin)
    if entry is None:
        return None
    if _is_whiteout(entry) or (entry.mode ^ origin.mode) & _S_IFMT:
        raise fserr(errno.EIO)
    if upper is not None and entry is not upper:
        return None
    return entry


def is_indexed(ino: OvlInode) -> bool:
    """OVL_INDEX: the upper inode is the index entry of the name's lower (origin) inode."""
    ix = ino.ofs.index
    if ix is None or ino.upper is None or not ino.lowers or ino.ftype == st.S_IFDIR:
        return False
    return ix.entry_of(ino.lowers[0][1]) is ino.upper


def need_index(ino: OvlInode) -> bool:
    """ovl_need_index(): lower hard links are indexed; with nfs_export every lower object
    (ovl_index_all), directories included, so a handle keeps finding it after copy-up."""
    if ino.ofs.index is None or not ino.lowers:
        return False
    if ino.ofs.params.nfs_export:
        return True
    lower = ino.lowers[0][1]
    return lower.mode & _S_IFMT != st.S_IFDIR and _nlink(lower) > 1


def dir_indexed(ino: OvlInode) -> bool:
    """OVL_INDEX of a directory (nfs_export): its origin's index entry is a directory."""
    ix = ino.ofs.index
    if ix is None or not ino.ofs.params.nfs_export or ino.upper is None or not ino.lowers:
        return False
    entry = ix.entry_of(ino.lowers[0][1])
    return entry is not None and entry.mode & _S_IFMT == st.S_IFDIR


def create_dir_index(ino: OvlInode, upper: Node) -> None:
    """ovl_create_index(): a directory copied up under nfs_export gets an entry in W/index,
    a directory of mode 0000 named by its origin's handle whose ``upper`` xattr holds the
    upper dir's handle (made as a temp name, then renamed into place)."""
    ofs = ino.ofs
    ix = ofs.index
    assert ix is not None
    name = ix.name_of(ino.lowers[0][1])
    handle = fh.encode(upper, upper=True, with_uuid=ofs.origin_uuid)
    if name is None or handle is None:
        return
    temp = ofs.temp_name()
    made = ix.dir.mkdir(temp, 0, 0, 0)
    made.setxattr(ofs.prefix + "upper", handle.to_bytes(), 0)
    try:
        ix.dir.rename(temp, made, ix.dir, name, 0)
    except OSError:  # e.g. a whiteout there (ENOTDIR): the copy-up fails, the temp goes
        ix.dir.rmdir(temp, made)
        raise


def has_upper_alias(ino: OvlInode) -> bool:
    """Whether this name is linked in the upper layer (not just its inode in W/index)."""
    parent = ino.parent
    upper = ino.upper
    if upper is None:
        return False
    if parent is ino:
        return True
    pu = parent.upper  # type: ignore[attr-defined]
    return pu is not None and pu.lookup(ino.name) is upper


# --- link counts ------------------------------------------------------------------------------
def get_nlink(ofs: OvlFS, lower: Node | None, upper: Node | None, fallback: int) -> int:
    """ovl_get_nlink(): the overlay link count stored on an index entry, else ``fallback``."""
    if lower is None or upper is None or _nlink(lower) == 1:
        return fallback
    raw = _xattr(upper, ofs.prefix + "nlink")
    m = None if raw is None or len(raw) > 12 else _NLINK.fullmatch(raw.decode("latin-1"))
    if m is None or not -(2**31) <= int(m.group(2)) < 2**31:
        return fallback  # "failed to get index nlink"
    n = _nlink(lower if m.group(1) == "L" else upper) + int(m.group(2))
    return n if n > 0 else fallback


def overlay_nlink(ino: OvlInode) -> int:
    """The overlay inode's i_nlink: the lower count until an index entry exists, then the
    stored count (kept in step with the upper inode by every operation)."""
    upper = ino.upper
    if upper is None:
        return _nlink(ino.lowers[0][1])
    lower = ino.lowers[0][1] if ino.lowers else None
    if lower is None or not is_indexed(ino):
        return _nlink(upper)
    if _nlink(lower) == 1:
        return _single_nlink(ino, upper)
    raw = _xattr(upper, ino.ofs.prefix + "nlink")
    m = None if raw is None else _NLINK.fullmatch(raw.decode("latin-1"))
    if m is None:
        return _nlink(upper)
    return _nlink(lower if m.group(1) == "L" else upper) + int(m.group(2))


def stat_nlink(ino: OvlInode, real_nlink: int) -> int:
    """st_nlink of a non-directory through the merged view (ovl_get_inode's count)."""
    if ino.upper is None or not ino.lowers or not is_indexed(ino):
        return real_nlink
    if _nlink(ino.lowers[0][1]) == 1:
        return _single_nlink(ino, ino.upper)
    return get_nlink(ino.ofs, ino.lowers[0][1], ino.upper, real_nlink)


def _single_nlink(ino: OvlInode, upper: Node) -> int:
    """The count of an indexed object whose lower has one link (nfs_export): the upper
    inode's, less the index link when this mount indexed it (see ``OvlIndex.fresh``)."""
    ix = ino.ofs.index
    fresh = ix is not None and id(upper) in ix.fresh
    return _nlink(upper) - (1 if fresh else 0)


def _set_nlink(ino: OvlInode, form: str, value: int) -> None:
    upper = ino.upper
    assert upper is not None
    real = upper if form == "U" else ino.lowers[0][1]
    upper.setxattr(ino.ofs.prefix + "nlink", f"{form}{value - _nlink(real):+d}".encode(), 0)


def set_nlink_upper(ino: OvlInode, value: int | None = None) -> None:
    """ovl_set_nlink_upper(): store the overlay count relative to the upper inode's."""
    _set_nlink(ino, "U", overlay_nlink(ino) if value is None else value)


def link_up(ino: OvlInode, upper_parent: Node) -> None:
    """ovl_link_up(): link the indexed upper inode at this name. The parent is marked
    impure, the count is stored relative to the lower inode while the link is made, then
    relative to the upper one; the parent's times are restored."""
    ofs = ino.ofs
    upper = ino.upper
    assert upper is not None
    if _xattr(upper_parent, ofs.prefix + "impure") is None:
        upper_parent.setxattr(ofs.prefix + "impure", b"y", 0)
    count = overlay_nlink(ino)
    _set_nlink(ino, "L", count)
    saved = (upper_parent.atime, upper_parent.mtime) if isinstance(upper_parent, MemInode) else None
    upper_parent.link(ino.name, upper)
    ix = ofs.index
    if ix is not None and ino.lowers and _nlink(ino.lowers[0][1]) == 1:
        ix.fresh.add(id(upper))  # nfs_export: the in-memory count leaves the index link out
    if isinstance(upper_parent, MemInode) and saved is not None:
        upper_parent.atime, upper_parent.mtime = saved
        upper_parent.stc = None
    _set_nlink(ino, "U", count)
    ofs.emit(Event("index", ino.merged_path(), ofs.mount_path, "link to the index entry",
                   {"nlink": count}))  # fmt: skip


def nlink_start(ino: OvlInode, reason: str) -> None:
    """ovl_nlink_start(), before an unlink, a rename over or a link: a lower hard link is
    copied up first (so its index entry holds the count), and an indexed count is stored
    relative to the upper inode."""
    from overlaysim.overlay.copy_up import copy_up

    if need_index(ino) and not has_upper_alias(ino):
        copy_up(ino, reason)
    if ino.ftype == st.S_IFDIR:
        return
    if is_indexed(ino):
        set_nlink_upper(ino)


def nlink_end(ino: OvlInode, was_dir_indexed: bool = False) -> None:
    """ovl_nlink_end(): once no name is left, the index entry goes (ovl_cleanup_index); with
    nfs_export it becomes a whiteout, directories' included (``was_dir_indexed``: the
    removed directory had an index entry)."""
    ofs = ino.ofs
    ix = ofs.index
    if ix is None:
        return
    if ino.ftype == st.S_IFDIR:
        if was_dir_indexed:
            _cleanup_index(ino)
        return
    if is_indexed(ino) and overlay_nlink(ino) == 0:
        upper = ino.upper
        assert upper is not None
        if _nlink(upper) != 1:
            # "cleanup linked index": the count went wrong (a lower link added while
            # mounted); keep the entry with the count of its other links.
            set_nlink_upper(ino, _nlink(upper) - 1)
        else:
            _cleanup_index(ino)
    _evict_unused(ino)


def _evict_unused(ino: OvlInode) -> None:
    """Overlay inodes go with their last dentry (generic_delete_inode): when no cached name
    is left for an inode in ``OvlIndex.fresh``, its in-memory count goes too, and the next
    lookup counts the upper inode's links (as measured: link d g; unlink d; stat g is 2 when
    g had not been looked up since the link, whose new dentry the kernel drops)."""
    ix = ino.ofs.index
    upper = ino.upper
    if ix is None or upper is None or id(upper) not in ix.fresh:
        return
    root: Node = ino
    while root.parent is not root:
        root = root.parent
    pending = [root]
    while pending:
        d = pending.pop()
        for child in d.children.values():  # type: ignore[attr-defined]
            if child is None or child.dead:
                continue
            if child.upper is upper:
                return
            if child.ftype == st.S_IFDIR:
                pending.append(child)
    ix.fresh.discard(id(upper))


def _cleanup_index(ino: OvlInode) -> None:
    ofs = ino.ofs
    ix = ofs.index
    assert ix is not None
    name = ix.name_of(ino.lowers[0][1])
    assert name is not None
    entry = ix.dir.lookup(name)
    if entry is None:
        return
    if ofs.params.nfs_export:
        whiteout_entry(ix, name, entry)
        why = "last name removed: index entry whited out (stale handle)"
    else:
        ix.dir.unlink(name, entry)
        why = "last name removed: index entry cleaned up"
    ofs.emit(Event("index", ino.merged_path(), ofs.mount_path, why, {}))


def same_inode(a: OvlInode, b: OvlInode) -> bool:
    """Two names of one overlay inode by way of the index: one lower inode, neither name
    with an upper inode of its own (then the shared upper inode says it)."""
    if a.ofs.index is None or a.upper is not None or b.upper is not None:
        return False
    return bool(a.lowers and b.lowers) and a.lowers[0][1] is b.lowers[0][1] and need_index(a)
