"""File handles of overlay objects (fs/overlayfs/export.c): what name_to_handle_at gives for
a merged path and what open_by_handle_at finds again, ``nfs_export=on`` being what makes
them decodable.

An overlay handle is ``struct ovl_fh``: 3 bytes of padding, then the ``ovl_fb`` of one real
object (fh.py), handle type 0xf8 (36 bytes on tmpfs layers). Which real object, as measured
on Linux 6.18 with tmpfs layers:

* the upper one (flag 4) for the root, a pure upper object, and, with nfs_export, an upper
  object that is not indexed (copied up before nfs_export was on);
* otherwise the topmost lower one (origin), so that the handle of a lower object stays the
  same after it is copied up (with nfs_export every copy-up is indexed, directories too).
  Encoding a lower directory below a merge dir of a higher layer first copies up the
  ancestor that the decode will need (ovl_connect_layer).

Without nfs_export the overlay encodes the same bytes for AT_HANDLE_FID only (EOPNOTSUPP
otherwise) and decodes none (ESTALE). Decoding: an upper handle is found on the upper fs; a
lower one on the lower fs, then through W/index (a whiteout there means removed: ESTALE; a
directory entry leads to its upper dir). Directories come back connected (found again from
the root by name, each step checked against the real dir); other objects disconnected (no
name: a write copies them into W/index only) unless a cached name has them. The root of a
lower-only mount encodes a lower handle that 6.18 does not decode (ESTALE).
"""

from __future__ import annotations

import errno
import stat as st
import struct
from typing import TYPE_CHECKING

from overlaysim.overlay import fh, index
from overlaysim.overlay.copy_up import copy_up
from overlaysim.overlay.inode import OvlInode
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import Node
from overlaysim.vfs.passthrough import PassNode

if TYPE_CHECKING:
    from overlaysim.overlay.super import OvlFS

OVL_FILEID_V0, OVL_FILEID_V1 = 0xFB, 0xF8
FILEID_INVALID = 0xFF
FILEID_INO64_GEN = 0x81  # exportfs_encode_ino64_fid: AT_HANDLE_FID on a fs without export ops
WIRE_OFFSET = 3  # the padding that aligns ovl_fb's handle in ovl_fh
_S_IFMT = 0o170000


class Disconnected(OvlInode):
    """An overlay inode decoded from a handle with no name (an anonymous dentry)."""

    __slots__ = ()


def _is_root(ino: OvlInode) -> bool:
    return ino.parent is ino and not isinstance(ino, Disconnected)


def _indexed(ino: OvlInode) -> bool:
    """OVL_INDEX: the upper object is its origin's index entry (or named by it, a dir)."""
    return index.dir_indexed(ino) if ino.is_dir() else index.is_indexed(ino)


# --- encode -----------------------------------------------------------------------------------
def _connectable_layer(ino: OvlInode) -> int:
    """ovl_connectable_layer(): the lowest layer (1-based) ``ino`` can be found again from."""
    if _is_root(ino):
        return len(ino.ofs.merged_roots)
    if ino.upper is not None and not _indexed(ino):
        return 0
    return ino.lowers[0][0] + 1


def _connect_layer(ino: OvlInode) -> None:
    """ovl_connect_layer(): copy up the topmost ancestor a decode of ``ino``'s lower dir
    could not get past (a parent not connectable from that layer), stopping at an indexed
    parent."""
    origin_layer = ino.lowers[0][0] + 1
    nxt = ino
    while not _is_root(nxt):
        parent = nxt.parent
        assert isinstance(parent, OvlInode)
        if _connectable_layer(parent) < origin_layer:
            if nxt.upper is None:
                copy_up(nxt, "encode of a file handle")
            return
        if _indexed(parent):
            return
        nxt = parent


def _encode_lower(ino: OvlInode, decodable: bool) -> bool:
    """ovl_check_encode_origin(): True for a lower (origin) handle, False for an upper one."""
    ofs = ino.ofs
    if ino.upper is None and not decodable:
        return True
    if not ino.lowers:
        return False  # pure upper
    if _is_root(ino) and ino.upper is not None:
        return False  # the root is never indexed
    if ino.upper is not None and decodable and not _indexed(ino):
        return False
    if ino.is_dir() and ofs.upper_root is not None and decodable:
        _connect_layer(ino)
    return True


class OvlExport:
    """The overlay's export operations (ovl_export_operations / ovl_export_fid_operations)."""

    def encode_fh(self, mnt: Mount, node: Node, fid_only: bool) -> tuple[int, bytes]:
        ofs = _ofs(mnt)
        if not isinstance(node, OvlInode) or ofs is None:
            raise OSError(errno.EOPNOTSUPP, "not an overlay object")
        if not ofs.export or (ofs.export == "fid" and not fid_only):
            if ofs.export or not fid_only:
                raise OSError(errno.EOPNOTSUPP, "overlay: file handles need nfs_export=on")
            return FILEID_INO64_GEN, struct.pack("<QI", node.ino, 0)
        try:
            lower = _encode_lower(node, ofs.export == "nfs")
        except OSError:
            return FILEID_INVALID, b""  # "failed to encode file handle": EOVERFLOW
        real = node.lowers[0][1] if lower else node.upper
        handle = None if real is None else fh.encode(real, upper=not lower,
                                                     with_uuid=ofs.origin_uuid)  # fmt: skip
        if handle is None:
            return FILEID_INVALID, b""
        return OVL_FILEID_V1, bytes(WIRE_OFFSET) + handle.to_bytes()

    def fh_to_node(self, mnt: Mount, handle_type: int, data: bytes) -> Node | None:
        ofs = _ofs(mnt)
        if ofs is None or ofs.export != "nfs":
            return None  # no fh_to_dentry: ESTALE
        if handle_type == OVL_FILEID_V1:
            if len(data) < WIRE_OFFSET + fh.FB_HEADER:
                return None
            raw = data[WIRE_OFFSET:]
        elif handle_type == OVL_FILEID_V0 and len(data) > WIRE_OFFSET:
            raw = data[: len(data) - WIRE_OFFSET]
        else:
            return None
        try:
            handle = fh.check_fb(raw)
        except fh.HandleError:
            return None
        root = mnt.root
        assert isinstance(root, OvlInode)
        try:
            if handle.upper:
                return _upper_fh_to_d(ofs, root, handle)
            return _lower_fh_to_d(ofs, root, handle)
        except OSError:
            return None  # a lookup on the way failed (EIO, ENOENT...): ESTALE to user space


def _ofs(mnt: Mount) -> OvlFS | None:
    from overlaysim.overlay.super import OvlFS

    return mnt.private if isinstance(mnt.private, OvlFS) else None


# --- decode -----------------------------------------------------------------------------------
def _fs_root(node: Node) -> Node:
    while node.parent is not node:
        node = node.parent
    return node


def _decode_on(ofs: OvlFS, handle: fh.FileHandle, root: Node, connected: bool) -> Node | None:
    """ovl_decode_real_fh(): an inode anywhere on the layer's fs (a non-directory may be
    outside the layer, even in another overlay's layer); a directory must be in the layer."""
    return ofs.handles.decode(handle, root, with_uuid=ofs.origin_uuid, connected=connected,
                              near=[_fs_root(root)])  # fmt: skip


def _upper_fh_to_d(ofs: OvlFS, root: OvlInode, handle: fh.FileHandle) -> OvlInode | None:
    if ofs.upper_root is None:
        return None  # EACCES, seen as ESTALE
    upper = _decode_on(ofs, handle, ofs.upper_root, True)
    if upper is None:
        return None
    return _get_dentry(ofs, root, upper, None, None)


def _lower_fh_to_d(ofs: OvlFS, root: OvlInode, handle: fh.FileHandle) -> OvlInode | None:
    origin: tuple[int, Node] | None = None
    for i, layer_root in enumerate(ofs.lower_roots):
        node = _decode_on(ofs, handle, layer_root, False)
        if node is not None:
            origin = (i, node)
            break
    if origin is None:
        return None
    entry: Node | None = None
    ix = ofs.index
    if ix is not None:  # ovl_get_index_fh()
        entry = ix.dir.lookup(handle.index_name())
        if entry is not None and index._is_whiteout(entry):
            return None  # removed since: stale
    if entry is not None and entry.mode & _S_IFMT == st.S_IFDIR:
        assert ix is not None
        upper = index.index_upper(ix, entry)
        return None if upper is None else _get_dentry(ofs, root, upper, None, None)
    if origin[1].mode & _S_IFMT == st.S_IFDIR:  # again, with the layer check (ovl_acceptable)
        origin = None
        for i, layer_root in enumerate(ofs.lower_roots):
            node = _decode_on(ofs, handle, layer_root, True)
            if node is not None:
                origin = (i, node)
                break
        if origin is None:
            return None
    if entry is not None:  # ovl_verify_origin(index, origin)
        if fh.get_fh(entry, ofs.prefix + "origin") != handle:
            return None
    return _get_dentry(ofs, root, None, origin, entry)


def _get_dentry(ofs: OvlFS, root: OvlInode, upper: Node | None, lower: tuple[int, Node] | None,
                entry: Node | None) -> OvlInode | None:  # fmt: skip
    """ovl_get_dentry(): a disconnected inode for a non-directory, a connected one (found
    from the root by name) for a directory."""
    real = upper if upper is not None else entry if entry is not None else None
    if real is None:
        assert lower is not None
        real = lower[1]
    if real.mode & _S_IFMT != st.S_IFDIR:
        return _obtain_alias(ofs, root, upper if upper is not None else entry, lower)
    if real.is_dead():
        return None  # a removed directory (ENOENT)
    if upper is not None:
        return _lookup_real(ofs, root, upper, -1)
    assert lower is not None
    return _lookup_real(ofs, root, lower[1], lower[0])


def _obtain_alias(ofs: OvlFS, root: OvlInode, upper: Node | None,
                  lower: tuple[int, Node] | None) -> OvlInode:  # fmt: skip
    """ovl_obtain_alias(): a cached name of that inode if there is one, else a nameless one."""
    want = upper if upper is not None else lower[1] if lower is not None else None
    found = _find_alias(root, want)
    if found is not None:
        return found
    ino = Disconnected(ofs, None, "", upper, [lower] if lower is not None else [])
    if upper is not None and lower is not None:
        ino.origin_ino = lower[1].ino
    return ino


def _find_alias(root: OvlInode, real: Node | None) -> OvlInode | None:
    """d_find_any_alias(): a live name, among those looked up, whose inode is ``real``'s."""
    pending = [root]
    while pending:
        d = pending.pop()
        for child in d.children.values():
            if child is None or child.dead:
                continue
            if child.upper is real or (child.upper is None and child.lowers
                                       and child.lowers[0][1] is real):  # fmt: skip
                return child
            if child.ftype == st.S_IFDIR:
                pending.append(child)
    return None


def _real_at(ino: OvlInode, layer: int) -> Node | None:
    """ovl_dentry_real_at(): the real object of ``ino`` on that layer (-1: upper)."""
    if layer < 0:
        return ino.upper
    for i, node in ino.lowers:
        if i == layer:
            return node
    return None


def _names_up(node: Node, top: Node) -> list[tuple[Node, str]] | None:
    """(dir, name) pairs from ``node`` up to ``top``; None when ``node`` is not below it."""
    out: list[tuple[Node, str]] = []
    cur = node
    while cur is not top:
        parent = cur.parent
        if parent is cur:
            return None  # moved out of the layer (EXDEV)
        name = _name_in(parent, cur)
        if name is None:
            return None
        out.append((cur, name))
        cur = parent
    return out


def _name_in(parent: Node, node: Node) -> str | None:
    """The name ``node`` has in ``parent``: a memfs dir's entry, a real dir's (vfs/passthrough)
    last known name of it, if that name still holds it."""
    if isinstance(parent, MemInode):
        return next((n for n, c in parent.entries.items() if c is node), None)
    name = node.pname if isinstance(node, PassNode) else None
    if name is None or parent.lookup(name) is not node:
        return None
    return name


def _lookup_real(ofs: OvlFS, root: OvlInode, real: Node, layer: int) -> OvlInode | None:
    """ovl_lookup_real(): the overlay dir whose real dir on ``layer`` is ``real``, found from
    the root (or from the topmost indexed ancestor of a lower dir) name by name."""
    top = ofs.upper_root if layer < 0 else ofs.lower_roots[layer]
    assert top is not None
    if layer >= 0 and real is top:
        return None  # measured: a lower-only mount's root handle is stale
    chain = _names_up(real, top)
    if chain is None:
        return None
    conn: OvlInode | None = root
    start = len(chain)
    ix = ofs.index
    if layer >= 0 and ix is not None:  # ovl_lookup_real_ancestor() through the index
        for k, (anc, _name) in enumerate(chain):
            entry = ix.entry_of(anc)
            if entry is None:
                continue
            if entry.mode & _S_IFMT != st.S_IFDIR:
                return None
            upper = index.index_upper(ix, entry)
            conn = None if upper is None else _lookup_real(ofs, root, upper, -1)
            if conn is None or _real_at(conn, layer) is not anc:
                return None
            start = k
            break
    for anc, name in reversed(chain[:start]):
        assert conn is not None
        child = conn.lookup(name)
        if child is None or _real_at(child, layer) is not anc:
            return None
        conn = child
    return conn


OVL_EXPORT = OvlExport()
