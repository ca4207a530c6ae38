"""Apply normalized trace operations to a mounted simulated overlay, one traced pid at a time.

Each recorded pid gets a simulated process (threads share one) forked as the trace says,
with the recorded fd numbers kept exactly (``dup2`` onto the number the kernel returned), so
later ``*at()`` calls and writes land where they did. Every call's simulated result is
compared with the recorded one; what the engine did (copy-up, whiteout...) is attributed to
the call's line, pid and program.
"""

from __future__ import annotations

import errno
import posixpath
from collections import Counter
from collections.abc import Callable
from typing import Any

from overlaysim.replay.calls_base import MAX_FILE_BYTES, join_path
from overlaysim.replay.calls_fd import FdCalls
from overlaysim.replay.calls_path import PathCalls
from overlaysim.replay.format import Op
from overlaysim.replay.procs import Ignored, Proc, Scope, normalize
from overlaysim.replay.report import ReportBuilder
from overlaysim.replay.session import Session

_ERRNAMES = errno.errorcode
#: Ops whose recorded return value is a number the simulator must reproduce exactly.
_VALUE_OPS = frozenset({"read", "write", "lseek", "readlink", "getxattr", "listxattr", "copy"})
#: How many ops of a pid seen before its parent's fork returned are held back.
_PENDING_LIMIT = 100_000
__all__ = ["MAX_FILE_BYTES", "Replayer"]


class Replayer(FdCalls, PathCalls):
    """Feed ops with :meth:`apply`; :meth:`finish` ends the trace and returns the report."""

    def __init__(self, session: Session, scope: Scope, report: ReportBuilder,
                 max_file_bytes: int = MAX_FILE_BYTES) -> None:  # fmt: skip
        self.max_file_bytes = max_file_bytes
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

    def _exit(self, pid: int) -> None:
        proc = self.procs.pop(pid, None)
        if proc is None:
            return
        proc.pids -= 1
        if proc.pids <= 0:
            proc.sim.exit()

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
                proc.cwd, proc.cwd_inside = normalize(join_path(proc, op)), False
            raise
        proc.sim.os.chdir(loc.path)
        if loc.abspath:
            proc.cwd = loc.abspath
        proc.cwd_inside = True

def _recorded(op: Op) -> str:
    if op.get("err") is not None:
        return f"-1 {op['err']}"
    return str(op.get("ret"))


def _shown(value: Any) -> str:
    return "0" if value is None else str(value)
