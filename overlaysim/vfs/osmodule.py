"""``fs.os``: an ``os`` look-alike over HostFS.

Every attribute is implemented here or is a pure helper/constant; there is deliberately no
fallback to the host's ``os`` (pyfakefs forwards ~140 unfaked calls to the real disk).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from overlaysim.vfs.ospath import PathModule
from overlaysim.vfs.sys_dir import DirEntry
from overlaysim.vfs.sys_handle import HandleCalls
from overlaysim.vfs.task import Task

_CONSTANT_PREFIXES = ("O_", "F_", "R_", "W_", "X_", "SEEK_", "XATTR_", "ST_", "AT_", "EX_")


class OsModule(HandleCalls):  # HandleCalls -> DirCalls -> ... -> FileCalls
    name = "posix"
    sep, altsep, curdir, pardir, extsep, pathsep, linesep, devnull, defpath = (
        "/", None, ".", "..", ".", ":", "\n", "/dev/null", "/bin:/usr/bin",
    )  # fmt: skip
    error = OSError
    stat_result = os.stat_result
    statvfs_result = os.statvfs_result
    DirEntry = DirEntry
    PathLike = os.PathLike
    fspath = staticmethod(os.fspath)
    fsencode = staticmethod(os.fsencode)
    fsdecode = staticmethod(os.fsdecode)
    major = staticmethod(os.major)
    minor = staticmethod(os.minor)
    makedev = staticmethod(os.makedev)
    strerror = staticmethod(os.strerror)
    RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4

    def __init__(self, task: Task) -> None:
        super().__init__(task)
        self.path = PathModule(self)
        self.supports_dir_fd = {
            self.open, self.stat, self.mkdir, self.mknod, self.mkfifo, self.readlink,
            self.rename, self.link, self.symlink, self.unlink, self.rmdir, self.chmod,
            self.chown, self.utime, self.access,
        }  # fmt: skip
        self.supports_fd = {self.stat, self.listdir, self.scandir, self.chdir, self.chmod,
                            self.chown, self.utime, self.truncate, self.statvfs}  # fmt: skip
        self.supports_follow_symlinks = {self.stat, self.link, self.chown, self.utime, self.access}
        self.supports_effective_ids = {self.access}

    def readlink(self, path: Any, *, dir_fd: int | None = None) -> Any:
        from overlaysim.vfs.sysbase import as_fspath, named

        try:
            _, node = self._resolve(path, dir_fd, False)
            target = node.readlink()
        except OSError as e:
            raise named(e, as_fspath(path)) from None
        node.touch_atime()
        return os.fsencode(target) if isinstance(as_fspath(path), bytes) else target

    # --- the pure-Python parts of os, over our calls ------------------------------------------
    def makedirs(self, name: Any, mode: int = 0o777, exist_ok: bool = False) -> None:
        head, tail = self.path.split(name)
        if not tail:
            head, tail = self.path.split(head)
        if head and tail and not self.path.exists(head):
            try:
                self.makedirs(head, exist_ok=exist_ok)
            except FileExistsError:
                pass
            cdir: Any = b"." if isinstance(tail, bytes) else "."
            if tail == cdir:
                return
        try:
            self.mkdir(name, mode)
        except OSError:
            if not exist_ok or not self.path.isdir(name):
                raise

    def removedirs(self, name: Any) -> None:
        self.rmdir(name)
        head, tail = self.path.split(name)
        if not tail:
            head, tail = self.path.split(head)
        while head and tail:
            try:
                self.rmdir(head)
            except OSError:
                break
            head, tail = self.path.split(head)

    def renames(self, old: Any, new: Any) -> None:
        head, tail = self.path.split(new)
        if head and tail and not self.path.exists(head):
            self.makedirs(head)
        self.rename(old, new)
        head, tail = self.path.split(old)
        if head and tail:
            try:
                self.removedirs(head)
            except OSError:
                pass

    def walk(
        self,
        top: Any,
        topdown: bool = True,
        onerror: Callable[[OSError], Any] | None = None,
        followlinks: bool = False,
    ) -> Iterator[tuple[Any, list[Any], list[Any]]]:
        try:
            entries = list(self.scandir(top))
        except OSError as e:
            if onerror is not None:
                onerror(e)
            return
        dirs: list[Any] = []
        files: list[Any] = []
        walk_into: list[Any] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
            if is_dir and (followlinks or not entry.is_symlink()):
                walk_into.append(entry.path)
        if topdown:
            yield top, dirs, files
            for name in dirs:
                new_path = self.path.join(top, name)
                if followlinks or not self.path.islink(new_path):
                    yield from self.walk(new_path, topdown, onerror, followlinks)
        else:
            for new_path in walk_into:
                yield from self.walk(new_path, topdown, onerror, followlinks)
            yield top, dirs, files

    def fdopen(self, fd: int, mode: str = "r", buffering: int = -1) -> Any:
        from overlaysim.vfs.pyio import fdopen

        return fdopen(self, fd, mode, buffering)


for _name in dir(os):
    if _name.startswith(_CONSTANT_PREFIXES) and isinstance(getattr(os, _name), int):
        setattr(OsModule, _name, getattr(os, _name))
