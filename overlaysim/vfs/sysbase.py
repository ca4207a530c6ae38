"""Shared plumbing of the os look-alike: argument conversion, errno decoration, fd-or-path."""

from __future__ import annotations

import errno
import os
from typing import Any

from overlaysim.vfs import namei
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import Node, fserr
from overlaysim.vfs.task import OpenFile, Task

O_PATH = os.O_PATH


def named(exc: OSError, path: Any, path2: Any = None) -> OSError:
    """Attach the caller's path(s) to an OSError, as ``os`` does."""
    if exc.filename is not None or path is None or isinstance(path, int):
        return exc
    if path2 is not None:
        return OSError(exc.errno, exc.strerror, path, None, path2)
    return OSError(exc.errno, exc.strerror, path)


def as_fspath(path: Any) -> Any:
    """Keep the caller's type for error messages (str/bytes), unwrapping PathLike."""
    return os.fspath(path) if isinstance(path, os.PathLike) else path


class SysBase:
    """Holds the task (simulated process) every call acts as."""

    def __init__(self, task: Task) -> None:
        self._t = task

    # --- resolution helpers ----------------------------------------------------------------
    def _resolve(
        self, path: Any, dir_fd: int | None = None, follow: bool = True
    ) -> tuple[Mount, Node]:
        p, _ = namei.fspath(path)
        return namei.resolve(self._t, p, dir_fd, follow)

    def _target(
        self, path: Any, dir_fd: int | None = None, follow: bool = True
    ) -> tuple[Mount, Node, OpenFile | None]:
        """A path, or an int fd where os accepts one (stat, chmod, utime, xattrs...)."""
        if isinstance(path, int) and not isinstance(path, bool):
            f = self._t.file(path)
            return f.mnt, f.node, f
        mnt, node = self._resolve(path, dir_fd, follow)
        return mnt, node, None

    def _parent(self, path: Any, dir_fd: int | None = None) -> namei.Parent:
        p, _ = namei.fspath(path)
        return namei.resolve_parent(self._t, p, dir_fd)

    @staticmethod
    def _want_write(mnt: Mount) -> None:
        if mnt.rdonly or mnt.root.sb.rdonly:
            raise fserr(errno.EROFS)

    @staticmethod
    def _check_fd_path_ok(f: OpenFile | None) -> None:
        """Most fd-taking calls refuse O_PATH descriptors with EBADF."""
        if f is not None and f.flags & O_PATH:
            raise fserr(errno.EBADF)
