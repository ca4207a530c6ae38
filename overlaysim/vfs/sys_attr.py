"""Attribute calls: stat, chmod, chown, utime, truncate, access and xattrs (fs/attr.c, fs/xattr.c)."""

from __future__ import annotations

import errno
import os
import stat as st
from typing import Any

from overlaysim.vfs import acl, namei
from overlaysim.vfs.cred import MAY_EXEC, MAY_READ, MAY_WRITE, is_owner, permitted
from overlaysim.vfs.node import NS_GEN, UTIME_NOW, Node, fserr
from overlaysim.vfs.sys_file import kill_suid
from overlaysim.vfs.sys_ns import NamespaceCalls
from overlaysim.vfs.sysbase import as_fspath, named

_S_IFMT = 0o170000
_S_IFDIR, _S_IFLNK, _S_IFREG = st.S_IFDIR, st.S_IFLNK, st.S_IFREG
XATTR_SIZE_MAX = 65536
XATTR_NAME_MAX = 255
_NAMESPACES = ("user.", "trusted.", "security.", "system.")


class AttrCalls(NamespaceCalls):
    # --- stat -------------------------------------------------------------------------------
    def stat(
        self, path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> os.stat_result:
        t = self._t
        if type(path) is str and "\0" not in path:
            return self._stat_str(t, path, dir_fd, follow_symlinks)
        if type(path) is int:
            return t.file(path).node.stat()
        try:
            p, _ = namei.fspath(path)
            _, node = namei.resolve(t, p, dir_fd, follow_symlinks)
        except OSError as e:
            raise named(e, as_fspath(path)) from None
        return node.stat()

    def lstat(self, path: Any, *, dir_fd: int | None = None) -> os.stat_result:
        if type(path) is str and "\0" not in path:
            return self._stat_str(self._t, path, dir_fd, False)
        return self.stat(path, dir_fd=dir_fd, follow_symlinks=False)

    @staticmethod
    def _stat_str(t: Any, path: str, dir_fd: int | None, follow: bool) -> os.stat_result:
        """The hot path: a walk namei.resolve cached (plain absolute path, root, no symlink on
        the way) is the same with or without following, so it answers without another walk."""
        if t.dcache_gen == NS_GEN[0] and t.dcache_root is t.root and t.cred.uid == 0:
            hit = t.dcache.get(path)
            if hit is not None and len(hit) == 2:
                return hit[1].stat()  # type: ignore[no-any-return]
        try:
            _, node = namei.resolve(t, path, dir_fd, follow)
        except OSError as e:
            raise named(e, path) from None
        return node.stat()

    # --- chmod / chown ----------------------------------------------------------------------
    def chmod(
        self, path: Any, mode: int, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> None:
        try:
            mnt, node, f = self._target(path, dir_fd, follow_symlinks)
            if node.mode & _S_IFMT == _S_IFLNK:
                # CPython on Linux: fchmodat(AT_SYMLINK_NOFOLLOW) on a symlink is unsupported.
                raise NotImplementedError("chmod: follow_symlinks unavailable on this platform")
            self._check_fd_path_ok(f)
            self._want_write(mnt)
            cred = self._t.cred
            if not is_owner(cred, node):
                raise fserr(errno.EPERM)
            mode &= 0o7777
            if cred.uid != 0 and not cred.in_group(node.gid):
                mode &= ~st.S_ISGID
            node.setattr(mode=mode)
            acl.chmod_acl(node, mode)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def fchmod(self, fd: int, mode: int) -> None:
        self.chmod(fd, mode)

    def lchmod(self, path: Any, mode: int) -> None:
        self.chmod(path, mode, follow_symlinks=False)

    def chown(
        self,
        path: Any,
        uid: int,
        gid: int,
        *,
        dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        try:
            mnt, node, f = self._target(path, dir_fd, follow_symlinks)
            self._check_fd_path_ok(f)
            self._want_write(mnt)
            self._chown(node, uid, gid)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def _chown(self, node: Node, uid: int, gid: int) -> None:
        cred = self._t.cred
        new_uid = None if uid == -1 else uid
        new_gid = None if gid == -1 else gid
        if cred.uid != 0:
            if new_uid is not None and (new_uid != node.uid or node.uid != cred.uid):
                raise fserr(errno.EPERM)
            if new_gid is not None and (
                node.uid != cred.uid or (new_gid != node.gid and not cred.in_group(new_gid))
            ):
                raise fserr(errno.EPERM)
        mode = None
        old = node.mode
        if old & _S_IFMT != _S_IFDIR:  # chown_common: ATTR_KILL_SUID | ATTR_KILL_SGID
            m = old & ~st.S_ISUID
            if old & st.S_ISGID and old & st.S_IXGRP:
                m &= ~st.S_ISGID
            if m != old:
                mode = m & 0o7777
        node.setattr(uid=new_uid, gid=new_gid, mode=mode)

    def lchown(self, path: Any, uid: int, gid: int) -> None:
        self.chown(path, uid, gid, follow_symlinks=False)

    def fchown(self, fd: int, uid: int, gid: int) -> None:
        self.chown(fd, uid, gid)

    # --- times and size ---------------------------------------------------------------------
    def utime(
        self,
        path: Any,
        times: tuple[float, float] | None = None,
        *,
        ns: tuple[int, int] | None = None,
        dir_fd: int | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        if times is not None and ns is not None:
            raise ValueError("utime: you may specify either 'times' or 'ns' but not both")
        try:
            mnt, node, _f = self._target(path, dir_fd, follow_symlinks)
            self._want_write(mnt)
            cred = self._t.cred
            if times is None and ns is None:
                if not is_owner(cred, node) and not permitted(cred, node, MAY_WRITE):
                    raise fserr(errno.EACCES)
                node.setattr(atime=UTIME_NOW, mtime=UTIME_NOW)
                return
            if not is_owner(cred, node):
                raise fserr(errno.EPERM)
            if ns is not None:
                a, m = int(ns[0]), int(ns[1])
            else:
                assert times is not None
                a, m = int(times[0] * 1e9), int(times[1] * 1e9)
            node.setattr(atime=a, mtime=m)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def truncate(self, path: Any, length: int) -> None:
        if isinstance(path, int):
            self.ftruncate(path, length)
            return
        try:
            if length < 0:
                raise fserr(errno.EINVAL)
            mnt, node = self._resolve(path)
            ftype = node.mode & _S_IFMT
            if ftype == _S_IFDIR:
                raise fserr(errno.EISDIR)
            if ftype != _S_IFREG:
                raise fserr(errno.EINVAL)
            self._want_write(mnt)
            if self._t.cred.uid != 0 and not permitted(self._t.cred, node, MAY_WRITE):
                raise fserr(errno.EACCES)
            data = node.open_data(os.O_WRONLY)
            kill_suid(self._t.cred.uid, data.node())
            data.truncate(length)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def access(
        self,
        path: Any,
        mode: int,
        *,
        dir_fd: int | None = None,
        effective_ids: bool = False,
        follow_symlinks: bool = True,
    ) -> bool:
        if mode & ~(os.R_OK | os.W_OK | os.X_OK):
            return False  # the kernel says EINVAL; os.access reports False
        try:
            mnt, node = self._resolve(path, dir_fd, follow_symlinks)
        except OSError:
            return False
        if mode == os.F_OK:
            return True
        mask = (
            (MAY_READ if mode & os.R_OK else 0)
            | (MAY_WRITE if mode & os.W_OK else 0)
            | (MAY_EXEC if mode & os.X_OK else 0)
        )
        if mask & MAY_WRITE and node.mode & _S_IFMT in (_S_IFREG, _S_IFDIR, _S_IFLNK):
            if mnt.rdonly or mnt.root.sb.rdonly:
                return False
        return permitted(self._t.cred, node, mask)

    # --- xattrs -----------------------------------------------------------------------------
    def _xattr_check(self, node: Node, name: str, write: bool) -> None:
        """xattr_permission() plus the commoncap rule for security.*."""
        b = len(name.encode("utf-8", "surrogateescape"))
        if b == 0 or b > XATTR_NAME_MAX:
            raise fserr(errno.ERANGE)
        ns = next((p for p in _NAMESPACES if name.startswith(p)), None)
        if ns is None:
            raise fserr(errno.EOPNOTSUPP)
        if name == ns:
            raise fserr(errno.EINVAL)
        cred = self._t.cred
        if ns == "trusted.":
            if cred.uid != 0:
                raise fserr(errno.EPERM if write else errno.ENODATA)
            return
        if ns == "system.":
            if name not in acl.NAMES:
                raise fserr(errno.EOPNOTSUPP)
            if write and not is_owner(cred, node):
                raise fserr(errno.EPERM)
            return
        if ns == "security.":
            if write and cred.uid != 0 and name != "security.capability":
                raise fserr(errno.EPERM)
            return
        ftype = node.mode & _S_IFMT
        if ftype not in (_S_IFREG, _S_IFDIR):
            raise fserr(errno.EPERM if write else errno.ENODATA)
        if (
            write
            and ftype == _S_IFDIR
            and node.mode & st.S_ISVTX
            and not is_owner(cred, node)
        ):
            raise fserr(errno.EPERM)
        if cred.uid != 0 and not permitted(cred, node, MAY_WRITE if write else MAY_READ):
            raise fserr(errno.EACCES)

    def getxattr(self, path: Any, attribute: Any, *, follow_symlinks: bool = True) -> bytes:
        try:
            _, node, _f = self._target(path, None, follow_symlinks)
            name, _ = namei.fspath(attribute)
            self._xattr_check(node, name, False)
            return node.getxattr(name)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def setxattr(
        self,
        path: Any,
        attribute: Any,
        value: bytes,
        flags: int = 0,
        *,
        follow_symlinks: bool = True,
    ) -> None:
        try:
            mnt, node, f = self._target(path, None, follow_symlinks)
            self._check_fd_path_ok(f)
            name, _ = namei.fspath(attribute)
            if flags & ~(os.XATTR_CREATE | os.XATTR_REPLACE):
                raise fserr(errno.EINVAL)
            if len(value) > XATTR_SIZE_MAX:
                raise fserr(errno.E2BIG)
            self._want_write(mnt)
            self._xattr_check(node, name, True)
            if name in acl.NAMES:
                cred = self._t.cred
                acl.set_acl(node, name, bytes(value), cred.uid == 0 or cred.in_group(node.gid))
                return
            node.setxattr(name, bytes(value), flags)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def removexattr(self, path: Any, attribute: Any, *, follow_symlinks: bool = True) -> None:
        try:
            mnt, node, f = self._target(path, None, follow_symlinks)
            self._check_fd_path_ok(f)
            name, _ = namei.fspath(attribute)
            self._want_write(mnt)
            self._xattr_check(node, name, True)
            if name in acl.NAMES:
                acl.remove_acl(node, name)
                return
            node.removexattr(name)
        except OSError as e:
            raise named(e, as_fspath(path)) from None

    def listxattr(self, path: Any = None, *, follow_symlinks: bool = True) -> list[str]:
        try:
            _, node, _f = self._target("." if path is None else path, None, follow_symlinks)
        except OSError as e:
            raise named(e, as_fspath(path)) from None
        names = node.listxattr()
        if self._t.cred.uid != 0:
            names = [n for n in names if not n.startswith("trusted.")]
        return sorted(names, reverse=True)  # tmpfs lists its xattr tree in this order

