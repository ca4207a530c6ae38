"""Calls on file descriptors: open and its fd bookkeeping, close, dup, and the data calls
(read, write, lseek, truncate, fallocate, in-kernel copies)."""

from __future__ import annotations

import errno
import os

from overlaysim.replay.calls_base import CallsBase, join_path
from overlaysim.replay.format import Op
from overlaysim.replay.procs import FdInfo, Ignored, Proc, normalize

CLOSE_RANGE_CLOEXEC = 4
FALLOC_FL_KEEP_SIZE = 1


class FdCalls(CallsBase):
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
                proc.fds[ret] = FdInfo(normalize(join_path(proc, op)), False, cloexec)
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
        self._limit(op, self._end(proc, fd, op.get("offset"), size))
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
        self._limit(op, op["length"])
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
        self._limit(op, end)
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
        size = ret if isinstance(ret, int) and ret >= 0 else max(0, op["size"])
        if src is not None and src.inside and not src.broken:
            off_in = op.get("off_in")
            data = o.read(op["fd_in"], size) if off_in is None else o.pread(
                op["fd_in"], size, off_in)  # fmt: skip
        else:
            if not isinstance(ret, int) or ret < 0:
                raise Ignored("in-kernel copy from outside with no recorded length")
            self._limit(op, self._end(proc, fd_out, op.get("off_out"), ret))
            data = b"\0" * ret
            if ret:
                self._unknown_content(out)
        off_out = op.get("off_out")
        return int(o.write(fd_out, data) if off_out is None else o.pwrite(fd_out, data, off_out))
