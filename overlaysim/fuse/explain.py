"""``--explain``: the engine's decisions (copy-up, whiteout, opaque, redirect...) streamed as
they happen, one line each, naming the program whose request caused them and the path as it
appears on the real mount point.

The event log of the daemon's HostFS is drained after every request (and emptied, so a long
mount does not grow it); without ``--explain`` it is emptied all the same.
"""

from __future__ import annotations

import os
from typing import TextIO

from overlaysim.events import Event
from overlaysim.fuse.errors import MountError
from overlaysim.fuse.simulation import SimMount


def open_output(target: str | None) -> TextIO | None:
    """``-``: a copy of stderr (it outlives the daemon's detaching); else a file, appended."""
    if target is None:
        return None
    try:
        if target == "-":
            return os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
        return open(target, "a", buffering=1, encoding="utf-8", errors="replace")
    except OSError as e:
        raise MountError(f"--explain {target}: {e.strerror}") from None


def _program(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"


def describe(event: Event, sim: SimMount, pid: int) -> str:
    who = f"{_program(pid)}[{pid}]" if pid > 0 else "overlaysim"
    why = f" ({event.reason})" if event.reason else ""
    extra = ", ".join(f"{k}={sim.real_names(v) if isinstance(v, str) else v}"
                      for k, v in event.detail.items())  # fmt: skip
    return f"{who} {event.kind} {sim.real_path(event.path)}{why}" + (f" [{extra}]" if extra else "")


class EventStream:
    """Called after each request with the caller's pid (``Operations.after``)."""

    def __init__(self, sim: SimMount, out: TextIO | None) -> None:
        self.sim = sim
        self.out = out

    def __call__(self, pid: int) -> None:
        log = self.sim.fs.events
        if not len(log):
            return
        if self.out is not None:
            try:
                self.out.write("".join(describe(e, self.sim, pid) + "\n" for e in log))
            except (OSError, ValueError):  # the reader went away: stop explaining, keep serving
                self.out = None
        log.clear()
