"""A simulated process: credentials, root, cwd, umask and an fd table.

``HostFS.os`` acts as the root process; ``fs.as_user(...)`` makes another process on the same
filesystem, with its own cwd and fds, so permission scenarios never touch global state.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from overlaysim.vfs.cred import Cred
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import FileData, Node, fserr

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import HostFS


class OpenFile:
    """An open file description: shared by dup()ed fds (position and flags are shared)."""

    __slots__ = ("data", "dir_cache", "flags", "mnt", "node", "pos")

    def __init__(self, mnt: Mount, node: Node, flags: int, data: FileData | None) -> None:
        self.mnt = mnt
        self.node = node
        self.flags = flags
        self.data = data
        self.pos = 0
        self.dir_cache: list[tuple[str, int, int]] | None = None


class Task:
    def __init__(self, fs: HostFS, cred: Cred, root: tuple[Mount, Node], umask: int = 0o022) -> None:
        self.fs = fs
        self.cred = cred
        self.root = root
        self.cwd = root
        self.umask = umask
        self.fds: dict[int, OpenFile] = {}
        # Successful walks of plain absolute paths by root (namei.resolve), valid while the
        # namespace generation and this task's root are the ones they were made under: the
        # (mount, node) found, or where the walk left tmpfs and what it walks from there.
        self.dcache: dict[str, tuple[Mount, Node] | tuple[Mount, Node, list[str]]] = {}
        self.dcache_gen = -1
        self.dcache_root = root

    def file(self, fd: int) -> OpenFile:
        try:
            return self.fds[fd]
        except (KeyError, TypeError):
            raise fserr(errno.EBADF) from None

    def install(self, f: OpenFile, lowest: int = 3) -> int:
        fd = lowest
        fds = self.fds
        while fd in fds:
            fd += 1
        fds[fd] = f
        return fd

    def fork(self, cred: Cred) -> Task:
        t = Task(self.fs, cred, self.root, self.umask)
        t.cwd = self.cwd
        return t
