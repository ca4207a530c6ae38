"""What the passthrough type (:mod:`overlaysim.vfs.passthrough`) needs from the real kernel
beyond Python's ``os``: renameat2 flags, utimensat with UTIME_OMIT, file handles both ways;
and the pools of real descriptors it keeps, bounded so that no tree exhausts them."""

from __future__ import annotations

import ctypes
import errno
import os
from collections import OrderedDict
from typing import TYPE_CHECKING

from overlaysim.vfs.node import UTIME_NOW

if TYPE_CHECKING:
    from overlaysim.vfs.passthrough import PassNode

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_C_UTIME_NOW, _C_UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
LONG = 3072  # real paths at least this long are reached through a parent dir's fd
O_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_libc = ctypes.CDLL(None, use_errno=True)


def _raise(path: str) -> None:
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code), path)


def renameat2(old: str, new: str, flags: int) -> None:
    """rename(2) with RENAME_NOREPLACE/EXCHANGE/WHITEOUT (Python's os has no renameat2)."""
    if not flags:
        os.rename(old, new)
        return
    if _libc.renameat2(_AT_FDCWD, os.fsencode(old), _AT_FDCWD, os.fsencode(new),
                       ctypes.c_uint(flags)) != 0:  # fmt: skip
        _raise(old)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path: str | int, atime: int | None, mtime: int | None) -> None:
    """utimensat(2) of a path (a symlink itself) or futimens(3) of an fd; None leaves a time
    (UTIME_OMIT), UTIME_NOW takes the kernel's clock, as the simulated setattr means them."""
    times = (_Timespec * 2)()
    for slot, value in zip(times, (atime, mtime), strict=True):
        if value is None:
            slot.tv_sec, slot.tv_nsec = 0, _C_UTIME_OMIT
        elif value == UTIME_NOW:
            slot.tv_sec, slot.tv_nsec = 0, _C_UTIME_NOW
        else:
            slot.tv_sec, slot.tv_nsec = divmod(value, 10**9)
    if isinstance(path, int):
        if _libc.futimens(path, times) != 0:
            _raise("")
    elif _libc.utimensat(_AT_FDCWD, os.fsencode(path), times, _AT_SYMLINK_NOFOLLOW) != 0:
        _raise(path)


class _Handle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]  # fmt: skip


def open_by_handle(mount_path: str, ftype: int, fid: bytes) -> tuple[os.stat_result, str] | None:
    """open_by_handle_at(2) of a handle on the filesystem of ``mount_path``: the inode's
    stat and a current path of it (None for a stale or foreign handle, or a deleted inode)."""
    if len(fid) > 128:
        return None
    h = _Handle()
    h.handle_bytes, h.handle_type = len(fid), ftype
    ctypes.memmove(h.f_handle, fid, len(fid))
    mfd = os.open(mount_path, os.O_RDONLY | os.O_CLOEXEC)  # fdget() refuses an O_PATH fd
    try:
        fd = _libc.open_by_handle_at(mfd, ctypes.byref(h), os.O_PATH | os.O_CLOEXEC)
        if fd < 0:
            if ctypes.get_errno() in (errno.ESTALE, errno.ENOENT, errno.EINVAL, errno.ENOTDIR):
                return None
            _raise(mount_path)
    finally:
        os.close(mfd)
    try:
        real = os.fstat(fd)
        where = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    if real.st_nlink == 0 or not where.startswith("/") or where.endswith(" (deleted)"):
        return None
    return real, where


def name_to_handle(path: str) -> tuple[int, bytes] | None:
    """The real filesystem's file handle of ``path`` (type, bytes), not following a symlink;
    None when that filesystem has none to give."""
    h = _Handle()
    h.handle_bytes = 128
    mount_id = ctypes.c_int()
    if _libc.name_to_handle_at(_AT_FDCWD, os.fsencode(path), ctypes.byref(h),
                               ctypes.byref(mount_id), 0) != 0:  # fmt: skip
        if ctypes.get_errno() in (errno.EOPNOTSUPP, errno.EOVERFLOW):
            return None
        _raise(path)
    return h.handle_type, bytes(h.f_handle[: h.handle_bytes])


def open_noatime(path: str, flags: int) -> int:
    """Open for reading without touching the real atime (as overlay opens its real files),
    where the caller may (root, or the owner)."""
    try:
        return os.open(path, flags | os.O_NOATIME)
    except PermissionError:
        return os.open(path, flags)


class DirFds:
    """O_PATH descriptors of directories whose real path is too long for the kernel to walk
    at once: each opened relative to its parent's, least recently used closed first."""

    def __init__(self, cap: int = 64) -> None:
        self.cap = cap
        self.fds: OrderedDict[PassNode, int] = OrderedDict()

    def get(self, node: PassNode) -> int:
        fd = self.fds.get(node)
        if fd is not None:
            self.fds.move_to_end(node)
            return fd
        flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
        path = node.path()
        if len(path) < LONG or node.parent is node:
            fd = os.open(path, flags)
        else:
            parent: PassNode = node.parent  # type: ignore[assignment]  # a PassNode's is one
            assert node.pname is not None
            fd = os.open(node.pname, flags | os.O_NOFOLLOW, dir_fd=self.get(parent))
        self.fds[node] = fd
        while len(self.fds) > self.cap:
            os.close(self.fds.popitem(last=False)[1])
        return fd


class FdPool:
    """At most ``cap`` real descriptors of regular files, least recently used closed first.

    Files are opened read-only without atime updates, and read-write when first written.
    The VFS has no release callback per open file, so descriptors are kept per inode, not
    per open: an unlinked file stays readable while its descriptor is in the pool."""

    def __init__(self, cap: int = 128) -> None:
        self.cap = cap
        self.fds: OrderedDict[PassNode, tuple[int, bool]] = OrderedDict()
        #: descriptors that are the only way to an inode (O_TMPFILE files): never evicted
        self.pinned: dict[PassNode, int] = {}

    def peek(self, node: PassNode) -> int | None:
        fd = self.pinned.get(node)
        if fd is not None:
            return fd
        got = self.fds.get(node)
        return None if got is None else got[0]

    def get(self, node: PassNode, write: bool) -> int:
        fd = self.pinned.get(node)
        if fd is not None:
            return fd
        got = self.fds.get(node)
        if got is not None and (got[1] or not write):
            self.fds.move_to_end(node)
            return got[0]
        path = node.where()
        fd = (os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW) if write
              else open_noatime(path, O_READ))  # fmt: skip
        self.put(node, fd, write)
        return fd

    def put(self, node: PassNode, fd: int, writable: bool, *, pin: bool = False) -> None:
        if pin:
            self.pinned[node] = fd
            return
        old = self.fds.pop(node, None)
        if old is not None:
            os.close(old[0])
        self.fds[node] = (fd, writable)
        while len(self.fds) > self.cap:
            _n, (victim, _w) = self.fds.popitem(last=False)
            os.close(victim)

    def clear(self) -> None:
        """Close every descriptor (at unmount of the last mapping, and in tests)."""
        while self.fds:
            _n, (fd, _w) = self.fds.popitem()
            os.close(fd)
        while self.pinned:
            os.close(self.pinned.popitem()[1])


FD_POOL = FdPool()
DIR_FDS = DirFds()
