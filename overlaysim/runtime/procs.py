"""Simulated processes: pids, liveness, signals and exit statuses, kept in ``world.meta``.

A container's main process is not executed continuously (there is no scheduler): it is a
record that is *alive* until a signal ends it. What a signal does follows Linux's rule for
the init process of a PID namespace: signals sent from outside are delivered only if the
process installed a handler, except SIGKILL and SIGSTOP. Shells, ``sleep``, ``cat`` and
``tail`` install none, which is why ``docker stop`` on them waits and ends with SIGKILL
(exit status 137) and ``runc kill ID`` (SIGTERM) leaves them running.
"""

from __future__ import annotations

import posixpath
import signal as _signal
from collections.abc import Callable
from typing import Any

from overlaysim.errors import RuntimeStateError

_NO_HANDLER = frozenset({"sh", "bash", "dash", "ash", "sleep", "cat", "tail", "busybox"})
_FIRST_PID = 4000


def parse_signal(raw: str) -> int:
    """``9``, ``KILL`` or ``SIGKILL`` (any case) -> the Linux signal number."""
    if raw.isdigit():
        return int(raw)
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise RuntimeStateError(f"unknown signal {raw!r}") from None


class ProcessTable:
    """The machine's process table, stored as plain JSON in ``meta["processes"]``."""

    def __init__(self, meta: dict[str, Any], clock: Callable[[], int]) -> None:
        self.data = meta.setdefault("processes", {"next_pid": _FIRST_PID, "table": {}})
        self.clock = clock

    def spawn(self, argv: list[str], start_ns: int, owner: str, ends_ns: int | None = None) -> int:
        """A new live process; with ``ends_ns`` it exits by itself (status 0) at that time."""
        pid = int(self.data["next_pid"])
        self.data["next_pid"] = pid + 1
        self.data["table"][str(pid)] = {
            "argv": list(argv),
            "start_ns": start_ns,
            "owner": owner,
            "alive": True,
            "exit_status": None,
            "ends_ns": ends_ns,
        }
        return pid

    def _get(self, pid: int) -> dict[str, Any] | None:
        rec = self.data["table"].get(str(pid))
        if not isinstance(rec, dict):
            return None
        ends = rec.get("ends_ns")
        if rec["alive"] and ends is not None and self.clock() >= ends:
            rec["alive"] = False
            rec["exit_status"] = 0
        return rec

    def alive(self, pid: int) -> bool:
        rec = self._get(pid)
        return bool(rec and rec["alive"])

    def ended_at(self, pid: int) -> int | None:
        """When a process that exited by itself (``ends_ns``) ended."""
        rec = self._get(pid)
        if rec is None or rec["alive"]:
            return None
        ends = rec.get("ends_ns")
        return int(ends) if ends is not None else None

    def exit_status(self, pid: int) -> int | None:
        rec = self._get(pid)
        return None if rec is None else rec["exit_status"]

    def start_ns(self, pid: int) -> int:
        rec = self._get(pid)
        return int(rec["start_ns"]) if rec else 0

    def handles(self, pid: int, sig: int) -> bool:
        """Whether the process would die of ``sig`` sent from outside its PID namespace."""
        if sig in (_signal.SIGKILL, _signal.SIGSTOP):
            return True
        rec = self._get(pid)
        if rec is None:
            return False
        prog = posixpath.basename(str(rec["argv"][0])) if rec["argv"] else ""
        return prog not in _NO_HANDLER

    def signal(self, pid: int, sig: int) -> bool:
        """Deliver ``sig``; True if the process ended (its status is 128 + sig)."""
        rec = self._get(pid)
        if rec is None or not rec["alive"]:
            return False
        if sig == 0 or sig == _signal.SIGSTOP or not self.handles(pid, sig):
            return False
        rec["alive"] = False
        rec["exit_status"] = 128 + sig
        return True

    def set_end(self, pid: int, ends_ns: int) -> None:
        rec = self._get(pid)
        if rec is not None:
            rec["ends_ns"] = ends_ns

    def exit(self, pid: int, status: int) -> None:
        rec = self._get(pid)
        if rec is not None:
            rec["alive"] = False
            rec["exit_status"] = status

    def reap(self, pid: int) -> None:
        self.data["table"].pop(str(pid), None)
