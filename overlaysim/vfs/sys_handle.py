"""name_to_handle_at(2) and open_by_handle_at(2) (fs/fhandle.c, fs/exportfs).

Python's ``os`` has neither, so the look-alike takes its shape from the C calls: a handle is
the bytes of ``struct file_handle`` (u32 ``handle_bytes``, int ``handle_type``, then the
filesystem's ``f_handle``), as a C caller would keep it. The VFS does the argument checks,
the permission rule (CAP_DAC_READ_SEARCH: root only) and the errno mapping (every decode
failure is ESTALE to user space); each filesystem type says how it encodes and decodes, by
registering :class:`ExportOps` (the kernel's ``s_export_op``), so ``vfs/`` never imports
the overlay. tmpfs (every MemInode filesystem) gives ``shmem_encode_fh`` handles: type 1,
three u32 words (generation, inode number low and high halves).
"""

from __future__ import annotations

import errno
import os
import stat as st
import struct
from typing import Any, Protocol

from overlaysim.vfs import namei
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import Node, fserr
from overlaysim.vfs.sys_dir import DirCalls
from overlaysim.vfs.sysbase import named
from overlaysim.vfs.task import OpenFile

MAX_HANDLE_SZ = 128
FILEID_INVALID = 0xFF
FILEID_INO32_GEN = 1
AT_HANDLE_MNT_ID_UNIQUE, AT_HANDLE_CONNECTABLE, AT_HANDLE_FID = 0x1, 0x2, 0x200
AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x400, 0x1000
_N2H_FLAGS = (AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | AT_HANDLE_FID | AT_HANDLE_MNT_ID_UNIQUE
              | AT_HANDLE_CONNECTABLE)  # fmt: skip
_HEAD = struct.Struct("<Ii")


class ExportOps(Protocol):
    """A filesystem type's handle operations (struct export_operations)."""

    def encode_fh(self, mnt: Mount, node: Node, fid_only: bool) -> tuple[int, bytes]:
        """(handle type, handle bytes); FILEID_INVALID when it cannot; OSError(EOPNOTSUPP)
        when the filesystem gives no (such) handles at all."""
        ...

    def fh_to_node(self, mnt: Mount, handle_type: int, data: bytes) -> Node | None:
        """The live object a handle names, or None (stale, malformed, not decodable)."""
        ...


_OPS: dict[str, ExportOps] = {}


def register_export_ops(fstype: str, ops: ExportOps) -> None:
    """What a filesystem type sets as its superblocks' ``s_export_op``."""
    _OPS[fstype] = ops


def pack_handle(handle_type: int, data: bytes) -> bytes:
    """``struct file_handle`` as bytes."""
    return _HEAD.pack(len(data), handle_type) + data


def unpack_handle(handle: bytes) -> tuple[int, int, bytes]:
    """(handle_bytes, handle_type, f_handle) of a ``struct file_handle``."""
    if len(handle) < _HEAD.size:
        raise fserr(errno.EFAULT)
    nbytes, htype = _HEAD.unpack_from(handle)
    return nbytes, htype, bytes(handle[_HEAD.size : _HEAD.size + min(nbytes, MAX_HANDLE_SZ)])


class _ShmemExport:
    """shmem_encode_fh / shmem_fh_to_dentry for the simulator's own filesystems."""

    def encode_fh(self, mnt: Mount, node: Node, fid_only: bool) -> tuple[int, bytes]:
        if not isinstance(node, MemInode):
            raise fserr(errno.EOPNOTSUPP)
        ino = node.ino
        return FILEID_INO32_GEN, struct.pack("<III", node.sb.generation(ino), ino & 0xFFFFFFFF,
                                             ino >> 32)  # fmt: skip

    def fh_to_node(self, mnt: Mount, handle_type: int, data: bytes) -> Node | None:
        """The type is not checked (as shmem does not): any 3 words are tried."""
        root: Node = mnt.root
        if len(data) < 12:
            return None
        gen, lo, hi = struct.unpack_from("<III", data)
        ino = hi << 32 | lo
        while root.parent is not root:
            root = root.parent
        found = find_inode(root, ino) if isinstance(root, MemInode) else None
        if found is None or found.sb.generation(ino) != gen:
            return None
        return found


def find_inode(top: MemInode, ino: int) -> MemInode | None:
    """The linked inode numbered ``ino`` below ``top`` (the kernel's inode hash)."""
    pending = [top]
    if top.ino == ino:
        return top
    while pending:
        d = pending.pop()
        for child in d.entries.values():
            if child.ino == ino:
                return child
            if child.ftype == st.S_IFDIR:
                pending.append(child)
    return None


_SHMEM = _ShmemExport()


def _ops(node: Node) -> ExportOps | None:
    ops = _OPS.get(node.sb.fstype)
    if ops is not None:
        return ops
    return _SHMEM if isinstance(node, MemInode) else None


class HandleCalls(DirCalls):
    def name_to_handle_at(self, dirfd: int | None, path: Any, flags: int = 0,
                          handle_bytes: int = MAX_HANDLE_SZ) -> tuple[bytes, int]:  # fmt: skip
        """(``struct file_handle`` bytes, mount id). ``handle_bytes``: the room the caller
        gives (EOVERFLOW when the handle needs more). ``dirfd`` None is AT_FDCWD."""
        try:
            return self._name_to_handle(dirfd, path, flags, handle_bytes)
        except OSError as e:
            raise named(e, path) from None

    def _name_to_handle(self, dirfd: int | None, path: Any, flags: int,
                        room: int) -> tuple[bytes, int]:  # fmt: skip
        if flags & ~_N2H_FLAGS:
            raise fserr(errno.EINVAL)
        if flags & AT_HANDLE_CONNECTABLE and flags & (AT_HANDLE_FID | AT_EMPTY_PATH):
            raise fserr(errno.EINVAL)
        p, _ = namei.fspath(path)
        if not p and flags & AT_EMPTY_PATH:
            if dirfd is None:
                mnt, node = self._t.cwd
            else:
                f = self._t.file(dirfd)
                mnt, node = f.mnt, f.node
        else:
            mnt, node = namei.resolve(self._t, p, dirfd, bool(flags & AT_SYMLINK_FOLLOW))
        ops = _ops(node)
        if ops is None:
            raise fserr(errno.EOPNOTSUPP)
        if room > MAX_HANDLE_SZ:
            raise fserr(errno.EINVAL)
        htype, data = ops.encode_fh(mnt, node, bool(flags & AT_HANDLE_FID))
        if htype == FILEID_INVALID or len(data) > room // 4 * 4:
            raise OSError(errno.EOVERFLOW, f"{os.strerror(errno.EOVERFLOW)} (handle needs "
                          f"{len(data)} bytes)")  # fmt: skip
        return pack_handle(htype, data), mnt.id

    def open_by_handle_at(self, mount_fd: int | None, handle: bytes, flags: int) -> int:
        """An fd for the object ``handle`` names, on the filesystem of ``mount_fd`` (None
        is AT_FDCWD). Needs CAP_DAC_READ_SEARCH (EPERM otherwise); ESTALE when the handle
        does not decode there."""
        nbytes, htype, data = unpack_handle(handle)
        if nbytes > MAX_HANDLE_SZ or nbytes == 0:
            raise fserr(errno.EINVAL)
        if htype < 0 or htype >> 16 & ~0x3:  # FILEID_USER_FLAGS beyond the valid ones
            raise fserr(errno.EINVAL)
        t = self._t
        mnt = t.cwd[0] if mount_fd is None else t.file(mount_fd).mnt
        if t.cred.uid != 0:
            raise fserr(errno.EPERM)
        ops = _ops(mnt.root)
        node = None
        if ops is not None:
            node = ops.fh_to_node(mnt, htype & 0xFFFF, data[: nbytes // 4 * 4])
        if node is None:
            raise fserr(errno.ESTALE)
        if flags & os.O_CREAT:
            flags &= ~os.O_CREAT
        if flags & os.O_PATH:
            if flags & os.O_DIRECTORY and node.mode & 0o170000 != st.S_IFDIR:
                raise fserr(errno.ENOTDIR)
            f = OpenFile(mnt, node, os.O_PATH | (flags & (os.O_DIRECTORY | os.O_NOFOLLOW)), None)
        else:
            f = self._do_open(mnt, node, flags, False)
        return t.install(f)
