"""Directory calls: listdir, scandir, getcwd, chdir, fchdir, chroot, umask (fs/readdir.c, fs/d_path.c)."""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Iterator
from typing import Any

from overlaysim.vfs import namei
from overlaysim.vfs.cred import MAY_EXEC, MAY_READ, check
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import DT_DIR, DT_LNK, DT_REG, Node, fserr
from overlaysim.vfs.sys_attr import AttrCalls
from overlaysim.vfs.sysbase import as_fspath, named

_S_IFMT = 0o170000
_S_IFDIR = st.S_IFDIR


class DirEntry:
    """Like ``os.DirEntry``: d_type from readdir, stat on demand through the same os."""

    __slots__ = ("_bytes", "_dtype", "_ino", "_lstat", "_os", "_stat", "name", "path")

    def __init__(
        self, osm: AttrCalls, parent: str, name: str, dtype: int, ino: int, as_bytes: bool
    ) -> None:
        self._os = osm
        self._dtype = dtype
        self._ino = ino
        self._bytes = as_bytes
        full = name if parent == "" else (parent + name if parent.endswith("/") else f"{parent}/{name}")
        self.name: Any = os.fsencode(name) if as_bytes else name
        self.path: Any = os.fsencode(full) if as_bytes else full
        self._stat: os.stat_result | None = None
        self._lstat: os.stat_result | None = None

    def inode(self) -> int:
        return self._ino

    def __fspath__(self) -> Any:
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        if not follow_symlinks or self._dtype != DT_LNK:
            if self._lstat is None:
                self._lstat = self._os.lstat(self.path)
            if not follow_symlinks or self._dtype != DT_LNK:
                return self._lstat
        if self._stat is None:
            self._stat = self._os.stat(self.path)
        return self._stat

    def _test(self, want: int, follow_symlinks: bool) -> bool:
        if self._dtype == DT_LNK and follow_symlinks:
            try:
                return (self.stat().st_mode >> 12) & 0o17 == want
            except FileNotFoundError:
                return False
        return self._dtype == want

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._test(DT_DIR, follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._test(DT_REG, follow_symlinks)

    def is_symlink(self) -> bool:
        return self._dtype == DT_LNK

    def is_junction(self) -> bool:
        return False


class ScandirIterator:
    def __init__(self, entries: list[DirEntry]) -> None:
        self._it = iter(entries)

    def __iter__(self) -> ScandirIterator:
        return self

    def __next__(self) -> DirEntry:
        return next(self._it)

    def __enter__(self) -> ScandirIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._it = iter(())


class DirCalls(AttrCalls):
    def _read_dir(self, path: Any) -> tuple[Node, list[tuple[str, int, int]]]:
        t = self._t
        if isinstance(path, int) and not isinstance(path, bool):
            f = t.file(path)
            node = f.node
            if f.flags & os.O_PATH:
                raise fserr(errno.EBADF)
        else:
            _, node = self._resolve(path)
        if node.mode & _S_IFMT != _S_IFDIR:
            raise fserr(errno.ENOTDIR)
        check(t.cred, node, MAY_READ)
        entries = node.readdir()
        node.touch_atime()
        return node, entries

    def listdir(self, path: Any = None) -> list[Any]:
        arg = "." if path is None else path
        try:
            _, entries = self._read_dir(arg)
        except OSError as e:
            raise named(e, as_fspath(arg)) from None
        if isinstance(arg, bytes):
            return [os.fsencode(n) for n, _t, _i in entries]
        return [n for n, _t, _i in entries]

    def scandir(self, path: Any = None) -> ScandirIterator:
        arg = "." if path is None else path
        try:
            _, entries = self._read_dir(arg)
        except OSError as e:
            raise named(e, as_fspath(arg)) from None
        if isinstance(arg, int):
            return ScandirIterator([_FdEntry(self, arg, n, d, i) for n, d, i in entries])
        parent, as_bytes = namei.fspath(arg)
        if path is None:
            parent = "."
        return ScandirIterator([DirEntry(self, parent, n, d, i, as_bytes) for n, d, i in entries])

    # --- cwd and root -----------------------------------------------------------------------
    def getcwd(self) -> str:
        t = self._t
        mnt, node = t.cwd
        if node.is_dead():
            raise fserr(errno.ENOENT)
        return path_of(t.root, mnt, node)

    def getcwdb(self) -> bytes:
        return os.fsencode(self.getcwd())

    def chdir(self, path: Any) -> None:
        try:
            if isinstance(path, int) and not isinstance(path, bool):
                f = self._t.file(path)
                mnt, node = f.mnt, f.node
            else:
                mnt, node = self._resolve(path)
            if node.mode & _S_IFMT != _S_IFDIR:
                raise fserr(errno.ENOTDIR)
            check(self._t.cred, node, MAY_EXEC)
        except OSError as e:
            raise named(e, as_fspath(path)) from None
        self._t.cwd = (mnt, node)

    def fchdir(self, fd: int) -> None:
        self.chdir(fd)

    def chroot(self, path: Any) -> None:
        """chroot(2): later absolute paths and ``..`` stay inside ``path`` (needs root)."""
        try:
            mnt, node = self._resolve(path)
            if node.mode & _S_IFMT != _S_IFDIR:
                raise fserr(errno.ENOTDIR)
            check(self._t.cred, node, MAY_EXEC)
            if self._t.cred.uid != 0:
                raise fserr(errno.EPERM)
        except OSError as e:
            raise named(e, as_fspath(path)) from None
        self._t.root = (mnt, node)

    def umask(self, mask: int, /) -> int:
        old = self._t.umask
        self._t.umask = mask & 0o777
        return old

    def statvfs(self, path: Any) -> os.statvfs_result:
        try:
            _, node, _f = self._target(path)
        except OSError as e:
            raise named(e, as_fspath(path)) from None
        flags = os.ST_RDONLY if node.sb.rdonly else 0
        return os.statvfs_result((4096, 4096, 6_291_456, 6_291_456, 6_291_456, 1 << 20, 1 << 20,
                                  1 << 20, flags, 255, node.sb.dev))  # fmt: skip


class _FdEntry(DirEntry):
    """scandir(fd) entries: ``path`` is the bare name, stat goes relative to the fd."""

    __slots__ = ("_fd",)

    def __init__(self, osm: DirCalls, fd: int, name: str, dtype: int, ino: int) -> None:
        super().__init__(osm, "", name, dtype, ino, False)
        self._fd = fd

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        follow = follow_symlinks and self._dtype == DT_LNK
        return self._os.stat(self.name, dir_fd=self._fd, follow_symlinks=follow)


def path_of(root: tuple[Mount, Node], mnt: Mount, node: Node) -> str:
    """d_path(): the physical path of ``node`` as seen from the process root."""
    parts: list[str] = []
    rmnt, rnode = root
    while True:
        if node is rnode and mnt is rmnt:
            break
        if node is mnt.root:
            up, mp = mnt.parent, mnt.mountpoint
            if up is None or mp is None:
                break  # outside the process root: Linux shows "(unreachable)"
            mnt, node = up, mp
            continue
        above = node.parent
        parts.append(name_in(above, node))
        node = above
    return "/" + "/".join(reversed(parts))


def name_in(parent: Node, node: Node) -> str:
    for name in parent.iter_names():
        if parent.lookup(name) is node:
            return name
    raise fserr(errno.ENOENT)


def iter_names(node: Node) -> Iterator[str]:
    return iter(node.iter_names())
