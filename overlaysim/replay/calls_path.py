"""Calls that name files: the namespace (mkdir, link, unlink, rename...), attributes (chmod,
chown, times, xattrs) and lookups (stat, access, readlink, getdents), whose side effects on
the upper dir (origin fix-ups, impure) the kernel has too."""

from __future__ import annotations

import errno
import os
from typing import Any

from overlaysim.replay.calls_base import (
    AT_REMOVEDIR,
    AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW,
    CallsBase,
)
from overlaysim.replay.format import Op
from overlaysim.replay.procs import Ignored, Proc

AT_EACCESS = 0x200


class PathCalls(CallsBase):
    # --- namespace --------------------------------------------------------------------------
    def _op_mkdir(self, proc: Proc, op: Op) -> None:
        loc = self._where(proc, op)
        proc.sim.os.mkdir(loc.path, op.get("mode", 0o777), dir_fd=loc.dir_fd)

    def _op_mknod(self, proc: Proc, op: Op) -> None:
        loc = self._where(proc, op)
        proc.sim.os.mknod(loc.path, op["mode"], op.get("dev") or 0, dir_fd=loc.dir_fd)

    def _op_symlink(self, proc: Proc, op: Op) -> None:
        loc = self._where(proc, op)
        proc.sim.os.symlink(op["target"], loc.path, dir_fd=loc.dir_fd)

    def _op_link(self, proc: Proc, op: Op) -> None:
        old = self._where(proc, op, "oldpath", "olddirfd")
        new = self._where(proc, op, "newpath", "newdirfd")
        proc.sim.os.link(old.path, new.path, src_dir_fd=old.dir_fd, dst_dir_fd=new.dir_fd,
                         follow_symlinks=bool((op.get("flags") or 0) & AT_SYMLINK_FOLLOW))

    def _op_unlink(self, proc: Proc, op: Op) -> None:
        loc = self._where(proc, op)
        if (op.get("flags") or 0) & AT_REMOVEDIR:
            proc.sim.os.rmdir(loc.path, dir_fd=loc.dir_fd)
        else:
            proc.sim.os.unlink(loc.path, dir_fd=loc.dir_fd)
        if loc.abspath and op.get("err") is None:
            self.report.forget_content(self.scope.relative(loc.abspath))

    def _op_rename(self, proc: Proc, op: Op) -> None:
        old = self._where(proc, op, "oldpath", "olddirfd")
        new = self._where(proc, op, "newpath", "newdirfd")
        proc.sim.os.renameat2(old.path, new.path, op.get("flags") or 0,
                              src_dir_fd=old.dir_fd, dst_dir_fd=new.dir_fd)  # fmt: skip
        if old.abspath and new.abspath:
            self.report.move_content(self.scope.relative(old.abspath),
                                     self.scope.relative(new.abspath))  # fmt: skip

    def _op_chmod(self, proc: Proc, op: Op) -> None:
        target, dir_fd, follow = self._target(proc, op)
        if isinstance(target, int):
            proc.sim.os.fchmod(target, op["mode"] & 0o7777)
        else:
            proc.sim.os.chmod(target, op["mode"] & 0o7777, dir_fd=dir_fd, follow_symlinks=follow)

    def _op_chown(self, proc: Proc, op: Op) -> None:
        target, dir_fd, follow = self._target(proc, op)
        uid, gid = op["uid"], op["gid"]
        if isinstance(target, int):
            proc.sim.os.fchown(target, uid, gid)
        else:
            proc.sim.os.chown(target, uid, gid, dir_fd=dir_fd, follow_symlinks=follow)

    def _op_utimes(self, proc: Proc, op: Op) -> None:
        target, dir_fd, follow = self._target(proc, op)
        o = proc.sim.os
        at, mt = op.get("atime"), op.get("mtime")
        if at is None and mt is None:
            o.utime(target, dir_fd=dir_fd, follow_symlinks=follow)
            return
        if isinstance(target, int):
            cur = o.fstat(target)
        else:
            cur = o.stat(target, dir_fd=dir_fd, follow_symlinks=follow)
        now = self.session.fs.clock()
        ns = (_time_ns(at, cur.st_atime_ns, now), _time_ns(mt, cur.st_mtime_ns, now))
        o.utime(target, ns=ns, dir_fd=dir_fd, follow_symlinks=follow)

    def _xattr_target(self, proc: Proc, op: Op) -> tuple[Any, bool]:
        target, dir_fd, follow = self._target(proc, op)
        if dir_fd is not None:
            raise Ignored("xattr call relative to an fd")
        return target, follow

    def _op_setxattr(self, proc: Proc, op: Op) -> None:
        target, follow = self._xattr_target(proc, op)
        proc.sim.os.setxattr(target, op["name"], bytes.fromhex(op["value"]),
                             op.get("flags") or 0, follow_symlinks=follow)  # fmt: skip

    def _op_removexattr(self, proc: Proc, op: Op) -> None:
        target, follow = self._xattr_target(proc, op)
        proc.sim.os.removexattr(target, op["name"], follow_symlinks=follow)

    def _op_getxattr(self, proc: Proc, op: Op) -> int:
        target, follow = self._xattr_target(proc, op)
        return len(proc.sim.os.getxattr(target, op["name"], follow_symlinks=follow))

    def _op_listxattr(self, proc: Proc, op: Op) -> int:
        target, follow = self._xattr_target(proc, op)
        names = proc.sim.os.listxattr(target, follow_symlinks=follow)
        return sum(len(os.fsencode(n)) + 1 for n in names)

    # --- lookups ------------------------------------------------------------------------------
    def _op_stat(self, proc: Proc, op: Op) -> None:
        target, dir_fd, follow = self._target(proc, op)
        if isinstance(target, int):
            proc.sim.os.fstat(target)
        else:
            proc.sim.os.stat(target, dir_fd=dir_fd, follow_symlinks=follow)

    def _op_access(self, proc: Proc, op: Op) -> None:
        loc = self._where(proc, op)
        flags = op.get("flags") or 0
        follow = not flags & AT_SYMLINK_NOFOLLOW
        o = proc.sim.os
        if o.access(loc.path, op["mode"], dir_fd=loc.dir_fd, follow_symlinks=follow,
                    effective_ids=bool(flags & AT_EACCESS)):  # fmt: skip
            return
        o.stat(loc.path, dir_fd=loc.dir_fd, follow_symlinks=follow)  # ENOENT, ENOTDIR, ELOOP...
        if op["mode"] & os.W_OK and o.statvfs(loc.path).f_flag & os.ST_RDONLY:
            raise OSError(errno.EROFS, "Read-only file system")
        raise OSError(errno.EACCES, "Permission denied")

    def _op_readlink(self, proc: Proc, op: Op) -> int:
        loc = self._where(proc, op)
        return len(os.fsencode(proc.sim.os.readlink(loc.path, dir_fd=loc.dir_fd)))

    def _op_getdents(self, proc: Proc, op: Op) -> str | None:
        """Directory reads have side effects in overlayfs (impure, origin); the entry count
        is compared over the whole listing, since it is split across calls."""
        fd = op["fd"]
        info = proc.fd(fd)
        if info.dir_left is None:
            info.dir_left = len(proc.sim.os.listdir(fd)) + 2  # with . and ..
        got = op.get("entries")
        ret = op.get("ret")
        if got is None:
            if ret == 0:
                info.dir_left = 0
            return None
        if got > info.dir_left:
            left, info.dir_left = info.dir_left, 0
            return f"{left} entries left"
        info.dir_left -= got
        if ret == 0 and info.dir_left:
            return f"{info.dir_left} entries left"
        return None


def _time_ns(value: Any, current: int, now: int) -> int:
    if value is None:
        return now
    if value == "omit":
        return current
    sec, nsec = value
    return int(sec) * 10**9 + int(nsec)
