"""Overlay file handles: the handle parts of fs/overlayfs/util.c, namei.c and export.c.

What ``trusted.overlay.origin`` (and an index dir's ``upper``) holds is ``struct ovl_fb``:
version 0, magic 0xfb, total length, flags, the real fs's handle type, the real fs's uuid
(16 bytes) and the real fs's file id. Measured on Linux 6.18, a tmpfs handle
(``shmem_encode_fh``) is type 1 with three little-endian u32 words: the inode generation (a
random u32 per inode), then the low and high halves of the inode number, 33 bytes in all; a
tmpfs has a random uuid per mount. The simulator makes exactly that shape for its own
filesystems (:class:`~overlaysim.vfs.superblock.SuperBlock` gives the uuid and a derived
generation), so index names (the hex of a handle) have the kernel's length and form.
Real dirs mapped as layers (vfs/passthrough, ``mount --live``) give the real filesystem's
own handle (name_to_handle_at) and decode by open_by_handle_at: origins, W/index names and
its ``upper`` are then byte for byte what the kernel writes on those dirs.

Decoding mirrors ``ovl_decode_real_fh``: the uuid must be the layer fs's (null with
``uuid=off``), then the inode is looked up by number and generation. Handles made elsewhere
(another machine, another fs) do not decode, as on Linux, and are then "origin unknown".
An overlay used as a layer has no decodable handles without nfs_export: its copies get an
empty ``origin`` (the kernel's "copied up, origin unknown").
"""

from __future__ import annotations

import errno
import re
import stat as st
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import Node
from overlaysim.vfs.passthrough import PassNode

if TYPE_CHECKING:
    from overlaysim.overlay.super import OvlFS
    from overlaysim.vfs.superblock import SuperBlock

FH_VERSION = 0
FH_MAGIC = 0xFB
FLAG_BIG_ENDIAN, FLAG_ANY_ENDIAN, FLAG_PATH_UPPER = 1, 2, 4
FLAG_ALL = FLAG_BIG_ENDIAN | FLAG_ANY_ENDIAN | FLAG_PATH_UPPER
FLAG_CPU_ENDIAN = 0  # the hosts we model are little-endian
FB_HEADER = 21  # sizeof(struct ovl_fb): version, magic, len, flags, type, uuid[16]
FILEID_INO32_GEN = 1  # the type shmem_encode_fh returns (with 3 words)
NULL_UUID = bytes(16)
_HEX = re.compile(r"[0-9a-fA-F]*")


class HandleError(Exception):
    """A handle buffer the kernel rejects: ``errno`` is EINVAL (malformed) or ENODATA
    (another version, unknown flags, other endianness: "origin unknown")."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.errno = code


@dataclass(frozen=True, slots=True)
class FileHandle:
    """One ``struct ovl_fb``, as its ``len`` bytes. Handles are equal when those bytes are
    (ovl_verify_fh compares them with memcmp)."""

    raw: bytes

    @classmethod
    def make(cls, ftype: int, uuid: bytes, fid: bytes, flags: int = FLAG_CPU_ENDIAN) -> FileHandle:
        head = bytes([FH_VERSION, FH_MAGIC, FB_HEADER + len(fid), flags, ftype])
        return cls(head + uuid + fid)

    @property
    def flags(self) -> int:
        return self.raw[3]

    @property
    def type(self) -> int:
        return self.raw[4]

    @property
    def uuid(self) -> bytes:
        return self.raw[5:FB_HEADER]

    @property
    def fid(self) -> bytes:
        return self.raw[FB_HEADER:]

    @property
    def upper(self) -> bool:
        """Encoded from an upper inode (OVL_FH_FLAG_PATH_UPPER), e.g. an index dir's 'upper'."""
        return bool(self.flags & FLAG_PATH_UPPER)

    def to_bytes(self) -> bytes:
        return self.raw

    def index_name(self) -> str:
        """The name of this origin's entry in W/index (ovl_get_index_name_fh: lower-case hex)."""
        return self.raw.hex()


def check_fb(data: bytes) -> FileHandle:
    """ovl_check_fb_len(): the handle in ``data`` (bytes past its own length are ignored)."""
    if len(data) < FB_HEADER or len(data) < data[2]:
        raise HandleError(errno.EINVAL)
    if data[1] != FH_MAGIC:
        raise HandleError(errno.EINVAL)
    version, flags = data[0], data[3]
    if version > FH_VERSION or flags & ~FLAG_ALL:
        raise HandleError(errno.ENODATA)
    if not flags & FLAG_ANY_ENDIAN and flags & FLAG_BIG_ENDIAN != FLAG_CPU_ENDIAN:
        raise HandleError(errno.ENODATA)
    return FileHandle(bytes(data[: data[2]]))


def from_index_name(name: str) -> FileHandle:
    """The handle an index entry's name spells (ovl_verify_index: hex2bin of len/2 bytes)."""
    if len(name) < 2 * FB_HEADER:
        raise HandleError(errno.EINVAL)
    digits = name[: len(name) // 2 * 2]
    if not _HEX.fullmatch(digits):
        raise HandleError(errno.EINVAL)
    return check_fb(bytes.fromhex(digits))


def get_fh(node: Node, name: str) -> FileHandle | None:
    """ovl_get_fh(): the handle stored in xattr ``name``; None when absent, empty ("copied up
    but origin unknown"), malformed or of an unknown kind."""
    try:
        value = node.getxattr(name)
    except OSError:
        return None
    if not value:
        return None
    try:
        return check_fb(value)
    except HandleError:
        return None


def can_encode(node: Node) -> bool:
    """ovl_can_decode_fh(): the simulator's own filesystems, and real dirs (vfs/passthrough)
    whose real filesystem gives file handles; an overlay used as a layer gives none."""
    return isinstance(node, MemInode) or _real_handle(node) is not None


def _real_handle(node: Node) -> tuple[int, bytes, bytes] | None:
    """(type, fid, fs uuid) of a real dir's inode (name_to_handle_at), None for other nodes."""
    return node.real_handle() if isinstance(node, PassNode) else None


def encode(node: Node, *, upper: bool = False, with_uuid: bool = True) -> FileHandle | None:
    """ovl_encode_real_fh(): the handle of ``node``; None when its fs has none to give.
    ``with_uuid`` is False for ``uuid=off`` (a null uuid in every handle). A real inode's
    handle is the real filesystem's, uuid included, byte for byte what the kernel writes."""
    flags = FLAG_CPU_ENDIAN | (FLAG_PATH_UPPER if upper else 0)
    if not isinstance(node, MemInode):
        got = _real_handle(node)
        if got is None:
            return None
        ftype, fid, uuid = got
        return FileHandle.make(ftype, uuid if with_uuid else NULL_UUID, fid, flags)
    sb, ino = node.sb, node.ino
    fid = struct.pack("<III", sb.generation(ino), ino & 0xFFFFFFFF, ino >> 32)
    return FileHandle.make(FILEID_INO32_GEN, sb.uuid if with_uuid else NULL_UUID, fid, flags)


def origin_value(ofs: OvlFS, lower: Node) -> bytes:
    """What ovl_set_origin() stores for ``lower``: its handle, or b"" when it has none.
    (``encode(lower).to_bytes()``, built without the FileHandle: every copy-up makes one.)"""
    if not isinstance(lower, MemInode):
        handle = encode(lower, with_uuid=ofs.origin_uuid)  # a real dir (vfs/passthrough)
        return b"" if handle is None else handle.to_bytes()
    sb, ino = lower.sb, lower.ino
    return (_ORIGIN_HEAD + (sb.uuid if ofs.origin_uuid else NULL_UUID)
            + struct.pack("<III", sb.generation(ino), ino & 0xFFFFFFFF, ino >> 32))  # fmt: skip


_ORIGIN_HEAD = bytes([FH_VERSION, FH_MAGIC, FB_HEADER + 12, FLAG_CPU_ENDIAN, FILEID_INO32_GEN])


class Decoder:
    """exportfs_decode_fh() for the simulator's filesystems, one per mount.

    The kernel finds an inode by number in the fs's inode hash; the simulator keeps no such
    table (it would cost memory in every inode), so the numbers of a layer's inodes are
    learnt by walking that layer once, when a handle first needs it, and again only for a
    number made after that walk. Origins are lower inodes, so the lower layers hold them;
    a handle to an inode moved out of every layer (an offline change) decodes on Linux only.
    """

    __slots__ = ("_known", "_real", "_walked_at")

    def __init__(self) -> None:
        self._known: dict[int, dict[int, MemInode]] = {}  # id(sb) -> ino -> inode
        self._walked_at: dict[int, int] = {}  # id(layer root) -> sb.next_ino when walked
        # real dirs: (id(sb), handle bytes) -> the inode open_by_handle_at found, while it
        # lives (a lookup decodes each origin; the real call costs a syscall and a path)
        self._real: dict[tuple[int, bytes], PassNode] = {}

    def decode(self, handle: FileHandle, root: Node, *, with_uuid: bool = True,
               connected: bool = False, near: Iterable[Node] = ()) -> Node | None:  # fmt: skip
        """ovl_decode_real_fh() on the layer whose root is ``root``: the live inode or None.
        ``connected`` (ovl_acceptable): a directory must be inside that layer. ``near``:
        the other layer roots, whose inodes are on the same fs too."""
        if isinstance(root, PassNode):
            key = (id(root.sb), handle.raw)
            got = self._real.get(key)
            if got is None or got.sb.nodes.get(got.ino) is not got:
                got = _decode_real(handle, root, with_uuid=with_uuid)
                if got is None:
                    return None
                self._real[key] = got
            if connected and got.ftype == st.S_IFDIR and not _under(got, root):
                return None
            return got
        if not isinstance(root, MemInode):
            return None
        sb = root.sb
        if handle.uuid != (sb.uuid if with_uuid else NULL_UUID) or len(handle.fid) < 12:
            return None
        gen, lo, hi = struct.unpack_from("<III", handle.fid)
        ino = hi << 32 | lo
        node = self._find(sb, ino, [root, *near])
        if node is None or node.nlink == 0 or sb.generation(ino) != gen:
            return None
        if connected and node.ftype == st.S_IFDIR and not _under(node, root):
            return None
        return node

    def _find(self, sb: SuperBlock, ino: int, roots: list[Node]) -> MemInode | None:
        known = self._known.setdefault(id(sb), {})
        node = known.get(ino)
        if node is not None and node.nlink:
            return node
        for r in roots:
            if not isinstance(r, MemInode) or r.sb is not sb:
                continue
            walked = self._walked_at.get(id(r))
            if walked is None or walked <= ino < sb.next_ino:  # not walked, or made since
                self._walked_at[id(r)] = sb.next_ino
                _walk(r, known)
                if ino in known:
                    return known[ino]
        return None


def _walk(top: MemInode, known: dict[int, MemInode]) -> None:
    pending = [top]
    known.setdefault(top.ino, top)
    while pending:
        d = pending.pop()
        for child in d.entries.values():
            known[child.ino] = child
            if child.ftype == st.S_IFDIR:
                pending.append(child)


def _decode_real(handle: FileHandle, root: PassNode, *, with_uuid: bool) -> PassNode | None:
    """A layer on a real filesystem (vfs/passthrough): the real kernel decodes the handle."""
    if handle.uuid != (root.sb.uuid if with_uuid else NULL_UUID):
        return None
    return root.decode_handle(handle.type, handle.fid)


def _under(node: Node, root: Node) -> bool:
    cur = node
    while cur is not root:
        if cur.parent is cur:
            return False
        cur = cur.parent
    return True


def decode_lower(ofs: OvlFS, handle: FileHandle) -> tuple[int, Node] | None:
    """ovl_check_origin_fh() without the type check: the first lower layer the handle decodes
    on, and the inode (a handle made on another fs or machine decodes nowhere)."""
    roots = ofs.lower_roots
    for i, root in enumerate(roots):
        node = ofs.handles.decode(handle, root, with_uuid=ofs.origin_uuid, near=roots[i + 1 :])
        if node is not None:
            return i, node
    return None


def check_origin(ofs: OvlFS, upper: Node) -> tuple[int, Node] | None:
    """ovl_check_origin(): the (layer, lower inode) ``upper`` was copied up from, when its
    ``origin`` decodes on a lower layer to an object of the same type; None for no, an empty,
    an unknown or a stale handle (one made on another fs or machine is stale)."""
    handle = get_fh(upper, ofs.prefix + "origin")
    if handle is None:
        return None
    found = decode_lower(ofs, handle)
    if found is None or (found[1].mode ^ upper.mode) & 0o170000:
        return None  # "invalid origin": taken as unknown
    return found
