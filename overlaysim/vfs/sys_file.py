"""open(2) and the calls on open file descriptors (fs/open.c, fs/read_write.c)."""

from __future__ import annotations

import errno
import os
import stat as st
from typing import Any

from overlaysim.vfs import devices, namei
from overlaysim.vfs.cred import MAY_READ, MAY_WRITE, check, may_create_in_sticky, permitted
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import Node, fserr
from overlaysim.vfs.sysbase import SysBase, named
from overlaysim.vfs.task import OpenFile

O_ACCMODE = os.O_ACCMODE
O_RDONLY, O_WRONLY, O_RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = os.O_CREAT, os.O_EXCL, os.O_TRUNC, os.O_APPEND
O_NOFOLLOW, O_DIRECTORY, O_PATH, O_NONBLOCK = os.O_NOFOLLOW, os.O_DIRECTORY, os.O_PATH, os.O_NONBLOCK
O_TMPFILE, O_NOATIME = os.O_TMPFILE, os.O_NOATIME
_S_IFMT = 0o170000
_S_IFREG, _S_IFDIR, _S_IFLNK = st.S_IFREG, st.S_IFDIR, st.S_IFLNK
_S_IFCHR, _S_IFBLK, _S_IFIFO = st.S_IFCHR, st.S_IFBLK, st.S_IFIFO


def kill_suid(task_uid: int, node: Node) -> None:
    """file_remove_privs(): a write or truncate by a non-root caller drops setuid/setgid."""
    mode = node.mode
    if task_uid == 0 or not mode & (st.S_ISUID | st.S_ISGID):
        return
    new = mode & ~st.S_ISUID
    if mode & st.S_ISGID and mode & st.S_IXGRP:
        new &= ~st.S_ISGID
    if new != mode:
        node.setattr(mode=new & 0o7777)


class FileCalls(SysBase):
    # --- open -------------------------------------------------------------------------------
    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        try:
            p, _ = namei.fspath(path)
            f = self._open(p, flags, mode, dir_fd)
        except OSError as e:
            raise named(e, path) from None
        return self._t.install(f)

    def _open(self, p: str, flags: int, mode: int, dir_fd: int | None) -> OpenFile:
        t = self._t
        if flags & O_CREAT and flags & O_DIRECTORY and flags & O_TMPFILE != O_TMPFILE:
            raise fserr(errno.EINVAL)
        if flags & O_PATH:
            mnt, node = namei.resolve(t, p, dir_fd, not flags & O_NOFOLLOW)
            if flags & O_DIRECTORY and node.mode & _S_IFMT != _S_IFDIR:
                raise fserr(errno.ENOTDIR)
            return OpenFile(mnt, node, O_PATH | (flags & (O_DIRECTORY | O_NOFOLLOW)), None)
        if flags & O_TMPFILE == O_TMPFILE:
            return self._open_tmpfile(p, flags, mode, dir_fd)
        created = False
        if flags & O_CREAT:
            mnt, node, created = self._open_creat(p, flags, mode, dir_fd)
        else:
            mnt, node = namei.resolve(t, p, dir_fd, not flags & O_NOFOLLOW)
        return self._do_open(mnt, node, flags, created)

    def _open_creat(
        self, p: str, flags: int, mode: int, dir_fd: int | None, links: int = 0
    ) -> tuple[Mount, Node, bool]:
        t = self._t
        par = namei.resolve_parent(t, p, dir_fd)
        if par.kind != namei.LAST_NORM or par.trailing:
            if par.kind == namei.LAST_NORM:
                raise fserr(errno.EISDIR)
            _mnt, node = namei.resolve(t, p, dir_fd, True)
            raise fserr(errno.EISDIR if node.mode & _S_IFMT == _S_IFDIR else errno.ENOTDIR)
        child = par.lookup(t)
        if child is None:
            self._want_write(par.mnt)
            self._may_create(par.node)
            gid, fmode = self._new_gid_mode(par.node, _S_IFREG | (mode & ~t.umask & 0o7777))
            node = par.node.create(par.name, fmode, t.cred.uid, gid, 0)
            return par.mnt, node, True
        if flags & O_EXCL:
            raise fserr(errno.EEXIST)
        if child.mode & _S_IFMT == _S_IFLNK:
            if flags & O_NOFOLLOW:
                raise fserr(errno.ELOOP)
            links += 1
            if links > namei.MAXSYMLINKS:
                raise fserr(errno.ELOOP)
            target = child.readlink()
            child.touch_atime()
            # Follow the link from its directory; a dangling link creates its target.
            fd = t.install(OpenFile(par.mnt, par.node, O_PATH, None))
            try:
                return self._open_creat(target, flags, mode, fd, links)
            finally:
                del t.fds[fd]
        if child.mode & _S_IFMT != _S_IFDIR:  # a dir is EISDIR first
            may_create_in_sticky(t.cred, par.node, child)
        return par.mnt, child, False

    def _open_tmpfile(self, p: str, flags: int, mode: int, dir_fd: int | None) -> OpenFile:
        t = self._t
        if flags & O_ACCMODE == O_RDONLY:
            raise fserr(errno.EINVAL)
        mnt, d = namei.resolve(t, p, dir_fd, True)
        if d.mode & _S_IFMT != _S_IFDIR:
            raise fserr(errno.ENOTDIR)
        self._want_write(mnt)
        self._may_create(d)
        gid, fmode = self._new_gid_mode(d, _S_IFREG | (mode & ~t.umask & 0o7777))
        node = d.create("\0tmpfile", fmode, t.cred.uid, gid, 0)
        d.unlink("\0tmpfile", node)
        return OpenFile(mnt, node, flags & ~O_CREAT, node.open_data(flags))

    def _do_open(self, mnt: Mount, node: Node, flags: int, created: bool) -> OpenFile:
        t = self._t
        ftype = node.mode & _S_IFMT
        acc = flags & O_ACCMODE
        if flags & O_DIRECTORY and ftype != _S_IFDIR:
            raise fserr(errno.ENOTDIR)
        if ftype == _S_IFLNK:
            raise fserr(errno.ELOOP)
        if ftype == _S_IFDIR and (acc != O_RDONLY or flags & (O_TRUNC | O_CREAT)):
            raise fserr(errno.EISDIR)
        if flags & O_NOATIME and t.cred.uid != 0 and node.uid != t.cred.uid:
            raise fserr(errno.EPERM)
        if not created:
            mask = (MAY_READ if acc in (O_RDONLY, O_RDWR) else 0) | (
                MAY_WRITE if acc in (O_WRONLY, O_RDWR) or flags & O_TRUNC else 0
            )
            if acc == 3:
                mask = MAY_READ | MAY_WRITE
            if mask and t.cred.uid != 0 and not permitted(t.cred, node, mask):
                raise fserr(errno.EACCES)
            if mask & MAY_WRITE and ftype in (_S_IFREG, _S_IFDIR):
                self._want_write(mnt)
        nonblock = bool(flags & O_NONBLOCK)
        if ftype == _S_IFREG:
            data = node.open_for(t, flags)
            if flags & O_TRUNC and not created:
                kill_suid(t.cred.uid, data.node())
                data.truncate(0)
            return OpenFile(mnt, data.node(), flags, data)
        if ftype == _S_IFDIR:
            return OpenFile(mnt, node, flags, None)
        if ftype == _S_IFCHR:
            return OpenFile(mnt, node, flags, devices.open_char(node, node.stat().st_rdev))
        if ftype == _S_IFIFO:
            return OpenFile(mnt, node, flags, devices.open_fifo(t.fs.pipes, node, acc, nonblock))
        raise fserr(errno.ENXIO)  # block devices and sockets have no driver here

    def _may_create(self, parent: Node) -> None:
        if parent.is_dead():
            raise fserr(errno.ENOENT)
        check(self._t.cred, parent, MAY_WRITE | 1)

    def _new_gid_mode(self, parent: Node, mode: int) -> tuple[int, int]:
        """inode_init_owner(): gid and mode of a new inode under ``parent`` (setgid dirs)."""
        cred = self._t.cred
        if parent.mode & st.S_ISGID:
            gid = parent.gid
            if mode & _S_IFMT == _S_IFDIR:
                mode |= st.S_ISGID
            elif (
                mode & st.S_ISGID
                and mode & st.S_IXGRP
                and cred.uid != 0
                and not cred.in_group(gid)
            ):
                mode &= ~st.S_ISGID
            return gid, mode
        return cred.gid, mode

    # --- descriptors ------------------------------------------------------------------------
    def close(self, fd: int) -> None:
        f = self._t.file(fd)
        del self._t.fds[fd]
        if f.data is not None and isinstance(f.data, devices.FifoEnd) and not self._shared(f):
            devices.close_fifo(f.data, f.flags & O_ACCMODE)

    def _shared(self, f: OpenFile) -> bool:
        return any(g is f for g in self._t.fds.values())

    def closerange(self, fd_low: int, fd_high: int) -> None:
        for fd in [fd for fd in self._t.fds if fd_low <= fd < fd_high]:
            self.close(fd)

    def dup(self, fd: int, /) -> int:
        return self._t.install(self._t.file(fd))

    def dup2(self, fd: int, fd2: int, inheritable: bool = True) -> int:
        f = self._t.file(fd)
        if fd2 < 0:
            raise fserr(errno.EBADF)
        if fd2 != fd:
            if fd2 in self._t.fds:
                self.close(fd2)
            self._t.fds[fd2] = f
        return fd2

    def _readable(self, fd: int) -> OpenFile:
        f = self._t.file(fd)
        if f.flags & O_PATH or f.flags & O_ACCMODE in (O_WRONLY, 3):
            raise fserr(errno.EBADF)
        if f.data is None:
            raise fserr(errno.EISDIR)
        return f

    def _writable(self, fd: int) -> OpenFile:
        f = self._t.file(fd)
        if f.flags & O_PATH or f.flags & O_ACCMODE in (O_RDONLY, 3):
            raise fserr(errno.EBADF)
        return f

    def read(self, fd: int, length: int, /) -> bytes:
        n = length
        if n < 0:
            raise ValueError("negative count")  # CPython's own check
        f = self._readable(fd)
        assert f.data is not None
        out = f.data.read(f.pos, n)
        f.pos += len(out)
        f.data.node().touch_atime()
        return out

    def _positional(self, fd: int, offset: int) -> None:
        """ksys_pread64/pwrite64: EINVAL for a negative offset even before EBADF, then
        ESPIPE for a pipe before the access mode is looked at."""
        if offset < 0:
            raise fserr(errno.EINVAL)
        f = self._t.file(fd)
        if not f.flags & O_PATH and isinstance(f.data, devices.FifoEnd):
            raise fserr(errno.ESPIPE)

    def pread(self, fd: int, length: int, offset: int, /) -> bytes:
        n = length
        self._positional(fd, offset)
        f = self._readable(fd)
        assert f.data is not None
        out = f.data.read(offset, n)
        f.data.node().touch_atime()
        return out

    def write(self, fd: int, data: bytes | bytearray | memoryview, /) -> int:
        f = self._writable(fd)
        return self._write_at(f, None, bytes(data))

    def pwrite(self, fd: int, buffer: bytes | bytearray | memoryview, offset: int, /) -> int:
        self._positional(fd, offset)
        f = self._writable(fd)
        return self._write_at(f, offset, bytes(buffer))

    def _write_at(self, f: OpenFile, offset: int | None, data: bytes) -> int:
        d = f.data
        assert d is not None
        if not data:
            return 0
        node = d.node()
        kill_suid(self._t.cred.uid, node)
        # Linux appends even for pwrite() on an O_APPEND fd.
        pos = d.size() if f.flags & O_APPEND else f.pos if offset is None else offset
        n = d.write(pos, data)
        if offset is None:
            f.pos = pos + n
        return n

    def lseek(self, fd: int, position: int, whence: int, /) -> int:
        pos, how = position, whence
        f = self._t.file(fd)
        if f.flags & O_PATH:
            raise fserr(errno.EBADF)
        if f.data is not None and isinstance(f.data, devices.FifoEnd):
            raise fserr(errno.ESPIPE)
        size = f.data.size() if f.data is not None else 0
        if how == os.SEEK_SET:
            new = pos
        elif how == os.SEEK_CUR:
            new = f.pos + pos
        elif how == os.SEEK_END:
            new = size + pos
        elif how in (os.SEEK_DATA, os.SEEK_HOLE) and f.data is not None:
            if pos >= size or pos < 0:
                raise fserr(errno.ENXIO)
            new = f.data.seek_data(pos, how == os.SEEK_HOLE)
        else:
            raise fserr(errno.EINVAL)
        if new < 0:
            raise fserr(errno.EINVAL)
        f.pos = new
        if f.data is None:
            f.dir_cache = None
        return new

    def fstat(self, fd: int) -> os.stat_result:
        return self._t.file(fd).node.stat()

    def ftruncate(self, fd: int, length: int, /) -> None:
        f = self._t.file(fd)
        if f.flags & O_PATH:
            raise fserr(errno.EBADF)
        if length < 0 or f.flags & O_ACCMODE == O_RDONLY or f.data is None:
            raise fserr(errno.EINVAL)
        if f.node.mode & _S_IFMT != _S_IFREG:
            raise fserr(errno.EINVAL)
        kill_suid(self._t.cred.uid, f.data.node())
        f.data.truncate(length)

    def fsync(self, fd: Any) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        f = self._t.file(fd)
        if f.flags & O_PATH:
            raise fserr(errno.EBADF)

    fdatasync = fsync

    def get_inheritable(self, fd: int) -> bool:
        self._t.file(fd)
        return False

    def set_inheritable(self, fd: int, inheritable: bool) -> None:
        self._t.file(fd)
