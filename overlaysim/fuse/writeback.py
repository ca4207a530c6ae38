"""Writing the simulated upper (and work) dir back to the real one, all or nothing.

The tree is exported in the kernel's on-disk form (char 0/0 whiteouts, ``trusted.overlay.*``
xattrs, owners, modes, times, hard links: ``HostFS.export_tree(exact=True)``, what replay's
``--write-upper`` uses) to a temporary directory beside the real one, which is then swapped
in with ``renameat2(RENAME_EXCHANGE)``. A reader sees the old tree or the new one, never a
mix; a failure (full disk, killed daemon) leaves the real dir as it was and at most a
leftover ``.NAME.overlaysim-PID`` beside it, removed by the next mount or unmount.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import shutil
from typing import Any

from overlaysim.fuse.errors import MountError, WriteBackError
from overlaysim.fuse.runstate import start_time
from overlaysim.vfs.hostfs import HostFS

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_TAG = ".overlaysim-"


@functools.cache
def _renameat2() -> Any:
    fn = ctypes.CDLL(None, use_errno=True).renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: str, b: str) -> None:
    """Swap two directory entries atomically (both must exist)."""
    if _renameat2()(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), a, None, b)


def temp_name(real_dir: str, pid: int | None = None) -> str:
    parent, base = os.path.split(real_dir.rstrip("/"))
    return os.path.join(parent, f".{base}{_TAG}{os.getpid() if pid is None else pid}")


def write_back(fs: HostFS, sim_dir: str, real_dir: str) -> None:
    """Replace ``real_dir`` by ``sim_dir`` of ``fs``; on failure ``real_dir`` is untouched."""
    tmp = temp_name(real_dir)
    _remove(tmp)
    try:
        fs.export_tree(sim_dir, tmp, exact=True)
        _fsync_tree_top(tmp)
    except OSError as e:
        _remove(tmp)
        hint = " (trusted.* xattrs and devices need root)" if os.geteuid() else ""
        raise WriteBackError(f"writing {real_dir} back: {e.strerror or e}{hint}; "
                             f"{real_dir} was left as it was") from None  # fmt: skip
    try:
        exchange(tmp, real_dir)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            _remove(tmp)
            raise WriteBackError(f"replacing {real_dir}: {e.strerror}; "
                                 f"{real_dir} was left as it was") from None  # fmt: skip
        # A filesystem without RENAME_EXCHANGE: two renames, the old tree kept until the end.
        old = tmp + ".old"
        os.rename(real_dir, old)
        os.rename(tmp, real_dir)
        tmp = old
    _remove(tmp)  # the old tree now


def _fsync_tree_top(path: str) -> None:
    """Make the new tree's top durable before it replaces the old one (its files were
    written with plain writes; syncfs covers them in one call)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        with contextlib.suppress(AttributeError, OSError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syncfs(fd)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(real_dir: str) -> list[str]:
    """Remove temp trees of write-backs whose daemon is gone (killed mid-way)."""
    parent, base = os.path.split(real_dir.rstrip("/"))
    prefix = f".{base}{_TAG}"
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].removesuffix(".old")
        if pid_text.isdigit() and start_time(int(pid_text)) is not None:
            continue
        _remove(os.path.join(parent, name))
        removed.append(name)
    return removed


class UpperLock:
    """An exclusive ``flock`` on the real upper dir for the daemon's lifetime: two mounts
    writing one upper dir back would overwrite each other."""

    def __init__(self, real_dir: str) -> None:
        self.fd = os.open(real_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise MountError(f"upperdir {real_dir} is in use by another overlaysim mount") from None

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
