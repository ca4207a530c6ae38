"""Apply normalized trace operations to a mounted simulated overlay, one traced pid at a time.

Each recorded pid gets a simulated process (threads share one) forked as the trace says,
with the recorded fd numbers kept exactly (``dup2`` onto the number the kernel returned), so
later ``*at()`` calls and writes land where they did. Every call's simulated result is
compared with the recorded one; what the engine did (copy-up, whiteout...) is attributed to
the call's line, pid and program.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections import Counter
from collections.abc import Callable
from typing import Any

from overlaysim.replay.format import Op
from overlaysim.replay.procs import (
    AT_FDCWD,
    FdInfo,
    Ignored,
    Located,
    Proc,
    Scope,
    locate,
    normalize,
)
from overlaysim.replay.report import ReportBuilder
from overlaysim.replay.session import Session

AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x100, 0x200, 0x400, 0x1000
AT_EACCESS = 0x200
CLOSE_RANGE_CLOEXEC = 4
FALLOC_FL_KEEP_SIZE = 1
_ERRNAMES = errno.errorcode
#: Ops whose recorded return value is a number the simulator must reproduce exactly.
_VALUE_OPS = frozenset({"read", "write", "lseek", "readlink", "getxattr", "listxattr", "copy"})
#: How many ops of a pid seen before its parent's fork returned are held back.
_PENDING_LIMIT = 100_000


class Replayer:
    """Feed ops with :meth:`apply`; :meth:`finish` ends the trace and returns the report."""

    def __init__(self, session: Session, scope: Scope, report: ReportBuilder) -> None:
        self.session = session
        self.fs = session.fs
        self.scope = scope
        self.report = report
        self.procs: dict[int, Proc] = {}
        self.first_pid: int | None = None
        self.pending: dict[int, list[Op]] = {}
        self.pending_count = 0
        self.ignored: Counter[str] = Counter()
        self.replayed = 0
        self._handlers: dict[str, Callable[[Proc, Op], Any]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_op_")
        }
        self.fs.events.clear()

    # --- processes ------------------------------------------------------------------------
    def _new_proc(self, pid: int) -> Proc:
        root = self.session.root
        sim = root.fork()
        mp = self.scope.mount_point
        try:
            cwd = sim.os.getcwd()
        except OSError:
            cwd = mp
        proc = Proc(sim, {}, normalize(cwd), True, "")
        proc.pids = 1
        self.procs[pid] = proc
        return proc

    def _flush_pending(self, pid: int) -> None:
        ops = self.pending.pop(pid, [])
        self.pending_count -= len(ops)
        for op in ops:
            self._apply(op)

    def apply(self, op: Op) -> None:
        pid = op["pid"]
        if pid not in self.procs:
            if self.first_pid is None:
                self.first_pid = pid
                self._new_proc(pid)
            else:
                # A child's first calls can be logged before its parent's clone returns.
                self.pending.setdefault(pid, []).append(op)
                self.pending_count += 1
                if self.pending_count > _PENDING_LIMIT:
                    self._orphans()
                return
        self._apply(op)

    def _orphans(self) -> None:
        """Pids whose fork was never seen start from the session's initial state."""
        for pid in list(self.pending):
            self.report.note_orphan(pid)
            self._new_proc(pid)
            self._flush_pending(pid)

    def finish(self) -> None:
        self._orphans()
        for pid in list(self.procs):
            self._exit(pid)

    def _apply(self, op: Op) -> None:
        proc = self.procs[op["pid"]]
        handler = self._handlers[op["op"]]
        sim_err = 0
        value: Any = None
        try:
            value = handler(proc, op)
        except Ignored as e:
            self.ignored[e.reason] += 1
            self._drain_events(proc, op)
            return
        except OSError as e:
            sim_err = e.errno or errno.EIO
        self.replayed += 1
        self._compare(proc, op, sim_err, value)
        self._drain_events(proc, op)

    def _drain_events(self, proc: Proc, op: Op) -> None:
        events = self.fs.events
        if len(events):
            for ev in events:
                self.report.event(ev, op, proc.program)
            events.clear()

    def _compare(self, proc: Proc, op: Op, sim_err: int, value: Any) -> None:
        rec_err = op.get("err")
        rec_ret = op.get("ret")
        if rec_err is None and rec_ret is None:
            return  # the log does not say how the call ended
        if sim_err:
            if rec_err == _ERRNAMES.get(sim_err):
                return
            self.report.mismatch(op, proc.program, _recorded(op), f"-1 {_ERRNAMES.get(sim_err)}")
            return
        if rec_err is not None:
            self.report.mismatch(op, proc.program, _recorded(op), f"{_shown(value)}")
            return
        name = op["op"]
        if name in _VALUE_OPS and value is not None and value != rec_ret:
            self.report.mismatch(op, proc.program, _recorded(op), f"{value}")
        elif name == "getdents" and isinstance(value, str):
            self.report.mismatch(op, proc.program, _recorded(op), value)

    # --- helpers ----------------------------------------------------------------------------
    def _where(self, proc: Proc, op: Op, key: str = "path", dkey: str = "dirfd") -> Located:
        return locate(self.scope, proc, op.get(dkey), op[key])

    def _place_fd(self, proc: Proc, got: int, want: Any, info: FdInfo) -> None:
        """Move simulated fd ``got`` to the recorded number ``want``."""
        if isinstance(want, int) and want >= 0 and want != got:
            proc.sim.os.dup2(got, want)
            proc.sim.os.close(got)
            got = want
        proc.fds[got] = info

    def _forget_fd(self, proc: Proc, fd: int) -> None:
        """The recorded fd number now means something the simulation does not hold."""
        proc.fds.pop(fd, None)
        try:
            proc.sim.os.close(fd)
        except OSError:
            pass

    def _unknown_content(self, info: FdInfo) -> None:
        if info.path is not None and self.scope.contains(info.path):
            self.report.content_unknown(self.scope.relative(info.path))

    def _exit(self, pid: int) -> None:
        proc = self.procs.pop(pid, None)
        if proc is None:
            return
        proc.pids -= 1
        if proc.pids <= 0:
            proc.sim.exit()

    # --- open, close, dup ---------------------------------------------------------------------
    def _op_open(self, proc: Proc, op: Op) -> int:
        ret = op.get("ret")
        flags = op["flags"]
        cloexec = bool(flags & os.O_CLOEXEC)
        try:
            loc = self._where(proc, op)
        except Ignored:
            if isinstance(ret, int) and ret >= 0:
                self._forget_fd(proc, ret)
                proc.fds[ret] = FdInfo(normalize(_join(proc, op)), False, cloexec)
            raise
        try:
            fd = proc.sim.os.open(loc.path, flags, op.get("mode") or 0, dir_fd=loc.dir_fd)
        except OSError:
            if isinstance(ret, int) and ret >= 0:
                self._forget_fd(proc, ret)
                info = FdInfo(loc.abspath, True, cloexec)
                info.broken = True
                proc.fds[ret] = info
            raise
        if op.get("err") is not None:
            proc.sim.os.close(fd)
            return 0
        self._place_fd(proc, fd, ret, FdInfo(loc.abspath, True, cloexec))
        return 0

    def _op_close(self, proc: Proc, op: Op) -> None:
        fd = op["fd"]
        info = proc.fds.pop(fd, None)
        if info is None:
            raise Ignored("fd inherited or never opened in the trace")
        if not info.inside or info.broken:
            raise Ignored("outside the mount")
        proc.sim.os.close(fd)

    def _op_close_range(self, proc: Proc, op: Op) -> None:
        lo, hi = op["fd"], op["max_fd"]
        hi = (1 << 31) - 1 if hi < 0 else hi
        for fd in [f for f in proc.fds if lo <= f <= hi]:
            if (op.get("flags") or 0) & CLOSE_RANGE_CLOEXEC:
                proc.fds[fd].cloexec = True
            else:
                info = proc.fds.pop(fd)
                if info.inside and not info.broken:
                    proc.sim.os.close(fd)

    def _op_dup(self, proc: Proc, op: Op) -> None:
        old, ret = op["fd"], op.get("ret")
        info = proc.fds.get(old)
        if info is None:
            raise Ignored("fd inherited or never opened in the trace")
        if not isinstance(ret, int) or ret < 0:
            if op.get("err") is None:
                raise Ignored("result not recorded")
            raise Ignored("failed in the trace")
        new = info.copy()
        new.cloexec = bool(op.get("cloexec"))
        if not info.inside or info.broken:
            self._forget_fd(proc, ret)
            proc.fds[ret] = new
            raise Ignored("outside the mount")
        if ret != old:
            proc.sim.os.dup2(old, ret)
        proc.fds[ret] = new

    def _op_setfd(self, proc: Proc, op: Op) -> None:
        info = proc.fds.get(op["fd"])
        if info is None:
            raise Ignored("fd inherited or never opened in the trace")
        info.cloexec = bool(op["cloexec"])
        raise Ignored("fd flags only")

    # --- processes ------------------------------------------------------------------------------
    def _op_fork(self, proc: Proc, op: Op) -> None:
        child = op["child"]
        if op.get("err") is not None or child is None or child < 0:
            raise Ignored("failed in the trace")
        if op.get("thread") or (op.get("share_files") and op.get("share_fs")):
            proc.pids += 1
            self.procs[child] = proc
        else:
            share = bool(op.get("share_files"))
            fds = proc.fds if share else {fd: i.copy() for fd, i in proc.fds.items()}
            new = Proc(proc.sim.fork(share_files=share), fds, proc.cwd, proc.cwd_inside,
                       proc.program)  # fmt: skip
            new.pids = 1
            self.procs[child] = new
        if child in self.pending:
            self._flush_pending(child)
        raise Ignored("process bookkeeping")

    def _op_exec(self, proc: Proc, op: Op) -> None:
        if op.get("err") is not None:
            raise Ignored("failed in the trace")
        argv = op.get("argv") or []
        proc.program = posixpath.basename(str(argv[0]) if argv else op["path"])
        for fd in [f for f, i in proc.fds.items() if i.cloexec]:
            info = proc.fds.pop(fd)
            if info.inside and not info.broken:
                proc.sim.os.close(fd)
        raise Ignored("process bookkeeping")

    def _op_exit(self, proc: Proc, op: Op) -> None:
        self._exit(op["pid"])
        raise Ignored("process bookkeeping")

    def _op_umask(self, proc: Proc, op: Op) -> None:
        proc.sim.os.umask(op["mask"] & 0o777)
        raise Ignored("process bookkeeping")

    def _op_chdir(self, proc: Proc, op: Op) -> None:
        if "path" not in op:
            info = proc.fds.get(op["fd"])
            if info is None or not info.inside or info.broken:
                proc.cwd, proc.cwd_inside = (info.path if info else None) or "/", False
                raise Ignored("outside the mount")
            proc.sim.os.fchdir(op["fd"])
            proc.cwd, proc.cwd_inside = info.path or proc.cwd, True
            return
        try:
            loc = self._where(proc, op)
        except Ignored:
            if op.get("err") is None:
                proc.cwd, proc.cwd_inside = normalize(_join(proc, op)), False
            raise
        proc.sim.os.chdir(loc.path)
        if loc.abspath:
            proc.cwd = loc.abspath
        proc.cwd_inside = True

    # --- data -------------------------------------------------------------------------------
    def _op_read(self, proc: Proc, op: Op) -> int:
        fd = op["fd"]
        info = proc.fd(fd)
        info.dir_left = None
        o, off = proc.sim.os, op.get("offset")
        size = max(0, op["size"])
        data = o.read(fd, size) if off is None else o.pread(fd, size, off)
        return len(data)

    def _op_write(self, proc: Proc, op: Op) -> int:
        fd = op["fd"]
        info = proc.fd(fd)
        size = max(0, op["size"])
        data = bytes.fromhex(op.get("data") or "")
        if len(data) < size or op.get("complete") is False:
            data = data[:size].ljust(size, b"\0")
            if op.get("err") is None and size:
                self._unknown_content(info)
        elif len(data) > size:
            data = data[:size]
        o, off = proc.sim.os, op.get("offset")
        return int(o.write(fd, data) if off is None else o.pwrite(fd, data, off))

    def _op_lseek(self, proc: Proc, op: Op) -> int:
        fd = op["fd"]
        proc.fd(fd).dir_left = None
        return int(proc.sim.os.lseek(fd, op["offset"], op["whence"]))

    def _op_truncate(self, proc: Proc, op: Op) -> None:
        if "path" not in op:
            proc.fd(op["fd"])
            proc.sim.os.ftruncate(op["fd"], op["length"])
            return
        loc = self._where(proc, op)
        if loc.dir_fd is not None:  # truncate(2) has no dirfd; a relative path is from cwd
            raise Ignored("truncate relative to an fd")
        proc.sim.os.truncate(loc.path, op["length"])

    def _op_fallocate(self, proc: Proc, op: Op) -> None:
        fd = op["fd"]
        proc.fd(fd)
        o = proc.sim.os
        st = o.fstat(fd)
        if op.get("offset", 0) < 0 or op["length"] <= 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        end = op["offset"] + op["length"]
        if not (op.get("mode") or 0) & FALLOC_FL_KEEP_SIZE and end > st.st_size:
            o.ftruncate(fd, end)

    def _op_copy(self, proc: Proc, op: Op) -> int:
        """copy_file_range/sendfile/splice: the bytes come from the source when it is inside."""
        fd_out = op["fd_out"]
        out = proc.fd(fd_out)
        if op.get("err") is not None:
            raise Ignored("in-kernel copy that failed in the trace (the program fell back)")
        ret = op.get("ret")
        o = proc.sim.os
        src = proc.fds.get(op["fd_in"])
        if src is not None and src.inside and not src.broken:
            size = ret if isinstance(ret, int) and ret >= 0 else max(0, op["size"])
            off_in = op.get("off_in")
            data = o.read(op["fd_in"], size) if off_in is None else o.pread(
                op["fd_in"], size, off_in)  # fmt: skip
        else:
            if not isinstance(ret, int) or ret < 0:
                raise Ignored("in-kernel copy from outside with no recorded length")
            data = b"\0" * ret
            if ret:
                self._unknown_content(out)
        off_out = op.get("off_out")
        return int(o.write(fd_out, data) if off_out is None else o.pwrite(fd_out, data, off_out))

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

    # --- attributes -----------------------------------------------------------------------------
    def _target(self, proc: Proc, op: Op) -> tuple[Any, int | None, bool]:
        """(path or fd, dir_fd, follow) for calls that take either a name or an fd."""
        flags = op.get("flags") or 0
        follow = not flags & AT_SYMLINK_NOFOLLOW and op.get("follow", True) is not False
        if "path" not in op:
            proc.fd(op["fd"])
            return op["fd"], None, True
        if op["path"] == "" and flags & AT_EMPTY_PATH:
            dirfd = op.get("dirfd")
            if dirfd is None or dirfd == AT_FDCWD:
                return ".", None, True
            proc.fd(dirfd)
            return dirfd, None, True
        loc = self._where(proc, op)
        return loc.path, loc.dir_fd, follow

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
        now = self.fs.clock()
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


def _join(proc: Proc, op: Op) -> str:
    path = str(op.get("path", ""))
    if path.startswith("/"):
        return path
    dirfd = op.get("dirfd")
    base = proc.cwd
    if dirfd is not None and dirfd != AT_FDCWD:
        info = proc.fds.get(dirfd)
        base = (info.path if info else None) or "/"
    return base + "/" + path


def _time_ns(value: Any, current: int, now: int) -> int:
    if value is None:
        return now
    if value == "omit":
        return current
    sec, nsec = value
    return int(sec) * 10**9 + int(nsec)


def _recorded(op: Op) -> str:
    if op.get("err") is not None:
        return f"-1 {op['err']}"
    return str(op.get("ret"))


def _shown(value: Any) -> str:
    return "0" if value is None else str(value)
