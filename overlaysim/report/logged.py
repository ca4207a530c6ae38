"""A saved container's copy-up timeline, from the world's event log (``world.eventlog``).

The rows become the same :class:`CopyUp` records a replay's timeline is drawn from, so the
page draws both with one code path; the "call" of a bar is the command that caused it.
"""

from __future__ import annotations

from typing import Any

from overlaysim.report.model import CopyUp
from overlaysim.world.eventlog import Entry

#: event kinds counted as "other decisions" (as a replay's counts name them)
_DECISIONS = {"whiteout": "whiteouts", "opaque": "opaque_dirs", "redirect": "redirects",
              "index": "index_entries", "origin": "origin_xattrs", "exdev": "exdev_renames"}  # fmt: skip


def entries(world: Any, mount: str) -> list[Entry]:
    """The logged events of the overlay at ``mount`` (a container's merged dir), oldest first."""
    log = getattr(world, "log", None)
    top = mount.rstrip("/") or "/"
    return [] if log is None else [e for e in log.entries if e.mount == top]


def copy_ups(logged: list[Entry]) -> list[CopyUp]:
    out: list[CopyUp] = []
    for e in logged:
        if e.kind != "copy_up":
            continue
        d = e.detail
        out.append(CopyUp(len(out), e.path, str(d.get("type") or ""), str(d.get("layer") or ""),
                          int(d.get("bytes", 0)), bool(d.get("metadata_only")), e.reason,
                          None, f"{e.by()} at {e.when()}"))  # fmt: skip
    return out


def decisions(logged: list[Entry]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in logged:
        if e.kind != "copy_up":
            key = _DECISIONS.get(e.kind, e.kind)
            out[key] = out.get(key, 0) + 1
    return out


def dropped(world: Any, logged: list[Entry]) -> int:
    log = getattr(world, "log", None)
    if log is None:
        return 0
    return sum(log.dropped.get(c, 0) for c in {e.container for e in logged})
