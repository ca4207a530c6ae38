"""What every group of replayed calls shares: the state a :class:`Replayer` holds and the
helpers that name files (inside or outside the mount) and keep recorded fd numbers.

The calls themselves live beside it by concern, as in the kernel's own split:
``calls_fd`` (open, close, dup, read, write, copy), ``calls_path`` (namespace, attributes,
lookups); ``executor`` drives them and handles processes.
"""

from __future__ import annotations

import os
from typing import Any

from overlaysim.errors import TraceError
from overlaysim.replay.format import Op
from overlaysim.replay.procs import AT_FDCWD, FdInfo, Located, Proc, Scope, locate
from overlaysim.replay.report import ReportBuilder
from overlaysim.replay.session import Session

AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x100, 0x200, 0x400, 0x1000
#: File data lives in memory: a call that would make a file larger than this is refused
#: (a hostile or unusual trace: ``ftruncate(fd, 1 TiB)``, ``pwrite`` at 2**62).
MAX_FILE_BYTES = 1 << 30


class CallsBase:
    session: Session
    scope: Scope
    report: ReportBuilder
    max_file_bytes: int

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

    def _limit(self, op: Op, end: int) -> None:
        if end > self.max_file_bytes:
            raise TraceError(
                f"{op.get('call') or op['op']} at line {op.get('line')} would make a file "
                f"{end:,} bytes long; the replay keeps file data in memory and stops at "
                f"{self.max_file_bytes:,} (--max-file-size)"
            )

    def _end(self, proc: Proc, fd: int, offset: Any, size: int) -> int:
        if isinstance(offset, int):
            return max(0, offset) + size
        try:
            return int(proc.sim.os.lseek(fd, 0, os.SEEK_CUR)) + size
        except OSError:  # a pipe or an O_PATH fd: the call itself will say what happens
            return size

    def _unknown_content(self, info: FdInfo) -> None:
        if info.path is not None and self.scope.contains(info.path):
            self.report.content_unknown(self.scope.relative(info.path))

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


def join_path(proc: Proc, op: Op) -> str:
    """The lexical path a call named (for fds and cwds the replay follows outside)."""
    path = str(op.get("path", ""))
    if path.startswith("/"):
        return path
    dirfd = op.get("dirfd")
    base = proc.cwd
    if dirfd is not None and dirfd != AT_FDCWD:
        info = proc.fds.get(dirfd)
        base = (info.path if info else None) or "/"
    return base + "/" + path
