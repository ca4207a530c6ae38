"""Namespace calls: mkdir, mknod, symlink, link, unlink, rmdir, rename (fs/namei.c).

The order of checks follows Linux so that the errno matches when several things are wrong at
once (e.g. EEXIST wins over EROFS for mkdir; EROFS wins over ENOENT for unlink).
"""

from __future__ import annotations

import errno
import stat as st
from typing import Any

from overlaysim.vfs import namei
from overlaysim.vfs.cred import MAY_READ, MAY_WRITE, check, may_delete, permitted
from overlaysim.vfs.memfs import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT
from overlaysim.vfs.node import Node, fserr
from overlaysim.vfs.sys_file import FileCalls
from overlaysim.vfs.sysbase import as_fspath, named

_S_IFMT = 0o170000
_S_IFDIR, _S_IFLNK, _S_IFREG = st.S_IFDIR, st.S_IFLNK, st.S_IFREG


def _is_dir(node: Node) -> bool:
    return node.mode & _S_IFMT == _S_IFDIR


class NamespaceCalls(FileCalls):
    # --- creation ---------------------------------------------------------------------------
    def _create_parent(self, path: Any, dir_fd: int | None, is_dir: bool) -> namei.Parent:
        """filename_create(): the parent, with the last name known not to exist."""
        par = self._parent(path, dir_fd)
        if par.kind != namei.LAST_NORM:
            raise fserr(errno.EEXIST)
        if par.lookup(self._t) is not None:
            raise fserr(errno.EEXIST)
        if par.trailing and not is_dir:
            raise fserr(errno.ENOENT)
        self._want_write(par.mnt)
        self._may_create(par.node)
        return par

    def mkdir(self, path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        try:
            par = self._create_parent(path, dir_fd, True)
            gid, m = self._new_gid_mode(par.node, _S_IFDIR | (mode & ~self._t.umask & 0o1777))
            par.node.mkdir(par.name, m, self._t.cred.uid, gid)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def mknod(
        self, path: Any, mode: int = 0o600, device: int = 0, *, dir_fd: int | None = None
    ) -> None:
        try:
            ftype = mode & _S_IFMT or _S_IFREG
            if ftype == _S_IFDIR:
                raise fserr(errno.EPERM)
            if ftype not in (_S_IFREG, st.S_IFCHR, st.S_IFBLK, st.S_IFIFO, st.S_IFSOCK):
                raise fserr(errno.EINVAL)
            par = self._create_parent(path, dir_fd, False)
            is_whiteout = ftype == st.S_IFCHR and device == 0
            if ftype in (st.S_IFCHR, st.S_IFBLK) and not is_whiteout and self._t.cred.uid != 0:
                raise fserr(errno.EPERM)
            gid, m = self._new_gid_mode(par.node, ftype | (mode & ~self._t.umask & 0o7777))
            rdev = device if ftype in (st.S_IFCHR, st.S_IFBLK) else 0
            par.node.create(par.name, m, self._t.cred.uid, gid, rdev)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def mkfifo(self, path: Any, mode: int = 0o666, *, dir_fd: int | None = None) -> None:
        self.mknod(path, st.S_IFIFO | (mode & 0o7777), 0, dir_fd=dir_fd)

    def symlink(
        self, src: Any, dst: Any, target_is_directory: bool = False, *, dir_fd: int | None = None
    ) -> None:
        try:
            target, _ = namei.fspath(src)
            if not target:
                raise fserr(errno.ENOENT)
            if len(target.encode("utf-8", "surrogateescape")) >= namei.PATH_MAX:
                raise fserr(errno.ENAMETOOLONG)
            par = self._create_parent(dst, dir_fd, False)
            par.node.symlink(par.name, target, self._t.cred.uid, self._new_gid_mode(par.node, 0)[0])
        except OSError as e:
            raise named(e, as_fspath(src), as_fspath(dst)) from None

    def link(
        self,
        src: Any,
        dst: Any,
        *,
        src_dir_fd: int | None = None,
        dst_dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        t = self._t
        # CPython calls link(2), which never follows, unless a dir_fd or nofollow is given.
        follow = follow_symlinks and (src_dir_fd is not None or dst_dir_fd is not None)
        try:
            smnt, node = self._resolve(src, src_dir_fd, follow)
            par = self._parent(dst, dst_dir_fd)
            if par.kind != namei.LAST_NORM or par.lookup(t) is not None:
                raise fserr(errno.EEXIST)
            if par.trailing:
                raise fserr(errno.ENOENT)
            if par.mnt is not smnt:
                raise fserr(errno.EXDEV)
            self._want_write(par.mnt)
            self._may_create(par.node)
            if _is_dir(node):
                raise fserr(errno.EPERM)
            if t.cred.uid != 0 and node.uid != t.cred.uid and not self._safe_hardlink(node):
                raise fserr(errno.EPERM)  # fs.protected_hardlinks = 1
            if node.stat().st_nlink == 0:
                raise fserr(errno.ENOENT)
            par.node.link(par.name, node)
        except OSError as e:
            raise named(e, as_fspath(src), as_fspath(dst)) from None

    def _safe_hardlink(self, node: Node) -> bool:
        mode = node.mode
        if mode & _S_IFMT != _S_IFREG or mode & st.S_ISUID:
            return False
        if mode & st.S_ISGID and mode & st.S_IXGRP:
            return False
        return permitted(self._t.cred, node, MAY_READ | MAY_WRITE)

    # --- removal ----------------------------------------------------------------------------
    def unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        t = self._t
        try:
            par = self._parent(path, dir_fd)
            if par.kind != namei.LAST_NORM:
                raise fserr(errno.EISDIR)
            self._want_write(par.mnt)
            child = par.lookup(t, False)
            if par.trailing:
                if child is None:
                    raise fserr(errno.ENOENT)
                raise fserr(errno.EISDIR if _is_dir(child) else errno.ENOTDIR)
            if child is None:
                raise fserr(errno.ENOENT)
            if _is_dir(child):
                raise fserr(errno.EISDIR)
            may_delete(t.cred, par.node, child)
            if child.mounted:
                raise fserr(errno.EBUSY)
            par.node.unlink(par.name, child)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    remove = unlink

    def rmdir(self, path: Any, *, dir_fd: int | None = None) -> None:
        t = self._t
        try:
            par = self._parent(path, dir_fd)
            if par.kind == namei.LAST_DOT:
                raise fserr(errno.EINVAL)
            if par.kind == namei.LAST_DOTDOT:
                raise fserr(errno.ENOTEMPTY)
            if par.kind == namei.LAST_ROOT:
                raise fserr(errno.EBUSY)
            self._want_write(par.mnt)
            child = par.lookup(t, False)
            if child is None:
                raise fserr(errno.ENOENT)
            if not _is_dir(child):
                raise fserr(errno.ENOTDIR)
            may_delete(t.cred, par.node, child)
            if child.mounted or self._is_mount_root(child) or child is t.root[1]:
                raise fserr(errno.EBUSY)
            par.node.rmdir(par.name, child)  # the filesystem decides ENOTEMPTY
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def _is_mount_root(self, node: Node) -> bool:
        return any(m.root is node for m in self._t.fs.mount_table.order)

    # --- rename -----------------------------------------------------------------------------
    def rename(
        self, src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
    ) -> None:
        self.renameat2(src, dst, 0, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    replace = rename

    def renameat2(
        self,
        src: Any,
        dst: Any,
        flags: int = 0,
        *,
        src_dir_fd: int | None = None,
        dst_dir_fd: int | None = None,
    ) -> None:
        """rename(2) with RENAME_NOREPLACE (1), RENAME_EXCHANGE (2), RENAME_WHITEOUT (4)."""
        try:
            self._rename(src, dst, flags, src_dir_fd, dst_dir_fd)
        except OSError as e:
            raise named(e, as_fspath(src), as_fspath(dst)) from None

    def _rename(
        self, src: Any, dst: Any, flags: int, src_dir_fd: int | None, dst_dir_fd: int | None
    ) -> None:
        t = self._t
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
            raise fserr(errno.EINVAL)
        if flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
            raise fserr(errno.EINVAL)
        if flags & RENAME_WHITEOUT and t.cred.uid != 0:
            raise fserr(errno.EPERM)
        old = self._parent(src, src_dir_fd)
        new = self._parent(dst, dst_dir_fd)
        if old.mnt is not new.mnt:
            raise fserr(errno.EXDEV)
        if old.kind != namei.LAST_NORM or new.kind != namei.LAST_NORM:
            raise fserr(errno.EBUSY)
        self._want_write(old.mnt)
        src_node = old.lookup(t, False)
        if src_node is None:
            raise fserr(errno.ENOENT)
        exchange = bool(flags & RENAME_EXCHANGE)
        if (old.trailing or (new.trailing and not exchange)) and not _is_dir(src_node):
            raise fserr(errno.ENOTDIR)
        dst_node = new.lookup(t, False)
        if flags & RENAME_NOREPLACE and dst_node is not None:
            raise fserr(errno.EEXIST)
        if exchange:
            if dst_node is None:
                raise fserr(errno.ENOENT)
            if new.trailing and not _is_dir(dst_node):
                raise fserr(errno.ENOTDIR)
        if self._is_ancestor(src_node, new.node):
            raise fserr(errno.EINVAL)
        if dst_node is not None and self._is_ancestor(dst_node, old.node):
            raise fserr(errno.EINVAL if exchange else errno.ENOTEMPTY)
        if dst_node is src_node:
            return
        self._may_rename(old, src_node, new, dst_node, exchange)
        old.node.rename(old.name, src_node, new.node, new.name, flags)

    def _may_rename(
        self,
        old: namei.Parent,
        src: Node,
        new: namei.Parent,
        dst: Node | None,
        exchange: bool,
    ) -> None:
        cred = self._t.cred
        src_dir = _is_dir(src)
        may_delete(cred, old.node, src)
        if dst is None:
            self._may_create(new.node)
        else:
            may_delete(cred, new.node, dst)
            dst_dir = _is_dir(dst)
            if not exchange:
                if src_dir and not dst_dir:
                    raise fserr(errno.ENOTDIR)
                if dst_dir and not src_dir:
                    raise fserr(errno.EISDIR)
        if src.mounted or (dst is not None and dst.mounted):
            raise fserr(errno.EBUSY)
        if old.node is not new.node and cred.uid != 0:
            if src_dir:
                check(cred, src, MAY_WRITE)
            if exchange and dst is not None and _is_dir(dst):
                check(cred, dst, MAY_WRITE)

    @staticmethod
    def _is_ancestor(node: Node, of: Node) -> bool:
        """True if ``node`` is ``of`` or one of its ancestors (a rename into itself)."""
        if not _is_dir(node):
            return False
        cur = of
        while True:
            if cur is node:
                return True
            parent = cur.parent
            if parent is cur:
                return False
            cur = parent

