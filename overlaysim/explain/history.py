"""The "History" part of an explanation: what the world's event log says happened to the path.

Where provenance says which layer holds a path now, history says which command put it there:
``copy-up 91 bytes by `sh -c 'echo hi >> /etc/passwd'` (docker exec) at ...``. The rows come
from the saved log (:mod:`overlaysim.world.eventlog`), matched by the overlay's mount point
and the path inside it.
"""

from __future__ import annotations

from typing import Any

from overlaysim.explain import narrate
from overlaysim.world.eventlog import Entry


def _what(e: Entry) -> str:
    d = e.detail
    if e.kind == "copy_up":
        n = int(d.get("bytes", 0))
        kind = d.get("type", "object")
        if d.get("metadata_only"):
            return f"metadata-only copy-up of the {kind} (0 bytes, metacopy)"
        return f"copy-up of the {kind}, {n} byte{'s' if n != 1 else ''} from {d.get('layer', 'a lower')}"
    if e.kind == "whiteout":
        return "whiteout created"
    if e.kind == "opaque":
        return "made opaque"
    if e.kind == "redirect":
        return f"redirect set to {d.get('redirect')!r}"
    return e.kind.replace("_", " ")


def line(e: Entry) -> str:
    """``copy-up of the file, 91 bytes from lower1 by `...` (docker exec) at ...``."""
    return f"{_what(e)} by {e.by()} at {e.when()}"


def of(world: Any, mount: str, path: str) -> tuple[list[dict[str, Any]], int]:
    """The logged events of ``path`` in the overlay at ``mount``, and how many events of that
    overlay's container were dropped from the log (the bound) before them."""
    log = getattr(world, "log", None)
    if log is None:
        return [], 0
    top = mount.rstrip("/") or "/"
    mine = [e for e in log.entries if e.mount == top]
    rows = [{**e.as_json(), "text": line(e), "sentence": narrate.sentence(e.event()),
             "kernel": narrate.kernel_function(e.event())}
            for e in mine if e.path == path]  # fmt: skip
    owners = {e.container for e in mine}
    return rows, sum(log.dropped.get(c, 0) for c in owners)
