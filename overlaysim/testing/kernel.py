"""The kernel oracle: real ``mount(2)`` of overlays built from a :class:`LayerStack`.

``mount(2)``/``umount2(2)`` and the new mount API go through ctypes, so errno is the
kernel's and no ``mount(8)`` rewriting of options gets in the way. :class:`KernelOverlay`
implements the mount interface of :mod:`overlaysim.testing.differential`.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from overlaysim.testing.layers import LayerStack, StackPaths, build_stack

MNT_DETACH = 2
_SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT, _SYS_MOVE_MOUNT = 430, 431, 432, 429
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_MOVE_MOUNT_F_EMPTY_PATH = 4
_AT_FDCWD = -100


@functools.cache
def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                          ctypes.c_char_p]  # fmt: skip
    lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.unshare.argtypes = [ctypes.c_int]
    lib.syscall.restype = ctypes.c_long
    return lib


def _check(ret: int, path: str | None = None) -> int:
    if ret < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return ret


_CLONE_NEWNS = 0x00020000
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_private = threading.local()


def private_mounts() -> None:
    """Move the calling thread into a mount namespace of its own, with private propagation,
    once. Found by ``make fuzz`` while a real dockerd ran on the machine: a container created
    meanwhile copies every mount of the host, an oracle overlay included, and keeps it alive
    after our umount, so the kernel refuses the next mount of those dirs with EBUSY (upper dir
    in use). Private mounts cannot be copied by anyone. Best effort: where unshare(2) is
    refused the mounts stay shared, as before."""
    if getattr(_private, "done", False):
        return
    _private.done = True
    lib = _libc()
    if lib.unshare(_CLONE_NEWNS) == 0:
        lib.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)


def mount(source: str, target: str, fstype: str, data: str | bytes = "", flags: int = 0) -> None:
    """``mount(2)`` (in this thread's private mount namespace, see :func:`private_mounts`);
    raises ``OSError`` with the kernel's errno."""
    private_mounts()
    raw = os.fsencode(data) if data else None
    _check(_libc().mount(os.fsencode(source), os.fsencode(target), os.fsencode(fstype),
                         flags, raw), target)  # fmt: skip


def umount(target: str, flags: int = 0) -> None:
    _check(_libc().umount2(os.fsencode(target), flags), target)


def fsconfig_mount(target: str, fstype: str, params: Sequence[tuple[str, str | None]]) -> str:
    """Mount with the new API (fsopen/fsconfig/fsmount), one parameter at a time.

    Unlike ``mount(2)`` there is no 4095-byte limit and no comma splitting. On failure the
    ``OSError`` message is the filesystem's log for that context.
    """
    private_mounts()
    lib = _libc()
    fsfd = _check(lib.syscall(_SYS_FSOPEN, os.fsencode(fstype), 0))
    try:
        try:
            for key, value in params:
                if value is None:
                    _check(lib.syscall(_SYS_FSCONFIG, fsfd, _FSCONFIG_SET_FLAG,
                                       os.fsencode(key), None, 0))  # fmt: skip
                else:
                    _check(lib.syscall(_SYS_FSCONFIG, fsfd, _FSCONFIG_SET_STRING,
                                       os.fsencode(key), os.fsencode(value), 0))  # fmt: skip
            _check(lib.syscall(_SYS_FSCONFIG, fsfd, _FSCONFIG_CMD_CREATE, None, None, 0))
        except OSError as e:
            raise OSError(e.errno, _read_fs_log(fsfd) or e.strerror, target) from None
        mfd = _check(lib.syscall(_SYS_FSMOUNT, fsfd, 0, 0))
        try:
            _check(lib.syscall(_SYS_MOVE_MOUNT, mfd, b"", _AT_FDCWD, os.fsencode(target),
                               _MOVE_MOUNT_F_EMPTY_PATH), target)  # fmt: skip
        finally:
            os.close(mfd)
    finally:
        os.close(fsfd)
    return target


def _read_fs_log(fd: int) -> str:
    lines = []
    while True:
        try:
            lines.append(os.read(fd, 4096).decode(errors="replace").strip())
        except OSError:
            return "; ".join(lines)


@dataclass(frozen=True)
class MountInfo:
    """One line of ``/proc/self/mountinfo``, with paths decoded."""

    mount_id: int
    parent_id: int
    device: str
    root: str
    mount_point: str
    mount_options: str
    fstype: str
    source: str
    super_options: str


def decode_octal(text: str) -> str:
    """Undo the ``\\040``-style escapes of /proc mount tables."""
    out, i = bytearray(), 0
    raw = os.fsencode(text)
    while i < len(raw):
        if raw[i] == 0x5C and i + 3 < len(raw) and all(c in b"01234567" for c in raw[i + 1 : i + 4]):
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def mount_table() -> list[MountInfo]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().splitlines()
    table = []
    for line in lines:
        head, _, tail = line.partition(" - ")
        h, t = head.split(" "), tail.split(" ", 2)
        table.append(MountInfo(int(h[0]), int(h[1]), h[2], decode_octal(h[3]),
                               decode_octal(h[4]), h[5], t[0], decode_octal(t[1]),
                               t[2] if len(t) > 2 else ""))  # fmt: skip
    return table


def mount_info(target: str) -> MountInfo | None:
    """The topmost mount at ``target`` (an absolute, symlink-free path)."""
    found = None
    for entry in mount_table():
        if entry.mount_point == target:
            found = entry
    return found


@functools.cache
def can_mount() -> tuple[bool, str]:
    """Whether this process may mount tmpfs and overlay, and if not, why (for skip reasons)."""
    if os.geteuid() != 0:
        return False, f"needs root to mount(2) overlays (euid is {os.geteuid()})"
    base = tempfile.mkdtemp(prefix="ovl-probe-")
    try:
        for d in ("l1", "l2", "m"):
            os.mkdir(os.path.join(base, d))
        opts = f"lowerdir={base}/l1:{base}/l2"
        try:
            mount("overlay", f"{base}/m", "overlay", opts)
        except OSError as e:
            return False, f"mount -t overlay refused here: {e.strerror} (errno {e.errno})"
        umount(f"{base}/m")
        return True, "mount(2) of overlay works"
    finally:
        shutil.rmtree(base, ignore_errors=True)


class KernelOverlay:
    """A real overlay over a freshly built stack in a temp dir; a context manager.

    ``options`` are added after the layer options (``lowerdir=...,upperdir=...,workdir=...``);
    with ``stack.upper=None`` the mount is read-only. ``os``/``upper_os``/``work_os`` are the
    real ``os`` module, so the same code drives this and a HostFS simulator.
    """

    os: Any = os

    def __init__(self, stack: LayerStack, options: str = "", *, base: str | None = None):
        self.stack, self.extra = stack, options
        self._own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="ovl-kernel-")
        self.mount_path = os.path.join(self.base, "m")
        self.mounted = False
        self._fs_mounts: list[str] = []  # the lower layers' own tmpfs (stack.separate_fs)
        try:
            if stack.separate_fs:
                for i in range(len(stack.lowers)):
                    path = os.path.join(self.base, f"l{i}")
                    os.mkdir(path, 0o700)
                    mount("tmpfs", path, "tmpfs", "mode=700")
                    self._fs_mounts.append(path)
            self.paths: StackPaths = build_stack(stack, os, self.base, options=options)
            os.mkdir(self.mount_path)
        except BaseException:
            self.close()
            raise
        self.options = self.paths.options(options)
        self.upper_os: Any = os
        self.work_os: Any = os
        self.upper_root, self.work_root = self.paths.upper, self.paths.work

    def mount(self) -> None:
        mount("overlay", self.mount_path, "overlay", self.options)
        self.mounted = True

    def umount(self) -> None:
        if self.mounted:
            umount(self.mount_path)
            self.mounted = False

    def remount(self) -> None:
        self.umount()
        self.mount()

    def detach(self) -> None:
        """Unmount the overlay, lazily if busy."""
        if self.mounted:
            try:
                umount(self.mount_path)
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                umount(self.mount_path, MNT_DETACH)
            self.mounted = False

    def close(self) -> None:
        """Unmount (lazily if busy) and delete everything that was built."""
        self.detach()
        while self._fs_mounts:
            umount(self._fs_mounts.pop(), MNT_DETACH)
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> KernelOverlay:
        try:
            self.mount()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def move_lowers_to_tmpfs(base: str, count: int) -> list[str]:
    """Put each of ``base/l0..`` on a tmpfs of its own (for a stack with ``separate_fs``
    written as plain dirs): the tree is copied with ``cp -a`` (xattrs, devices, hard links).
    Returns the mount points, to unmount when done."""
    mounted = []
    for i in range(count):
        path, held = os.path.join(base, f"l{i}"), os.path.join(base, f".l{i}")
        os.rename(path, held)
        os.mkdir(path, 0o700)
        mount("tmpfs", path, "tmpfs", "mode=700")
        mounted.append(path)
        subprocess.run(["cp", "-a", f"{held}/.", f"{path}/"], check=True)
        shutil.rmtree(held)
    return mounted


def kernel_factory(stack: LayerStack, options: str) -> KernelOverlay:
    """A mounted :class:`KernelOverlay` (the oracle side of a differential run)."""
    k = KernelOverlay(stack, options)
    return k.__enter__()
