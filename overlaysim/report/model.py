"""What a report shows, as plain data: the layer bands, the path rows, the copy-up timeline.

Collected once (:mod:`overlaysim.report.collect`) and rendered twice: into SVG for the eye and
into the JSON the page's script reads, so the numbers a test reads back from the page are the
numbers the engine produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Path rows drawn (and explained) by default: ~4 KB of explain text each keeps a report of a
#: big image under about a megabyte; every layer's totals stay exact beyond the cap.
MAX_PATHS = 200
#: Copy-up bars drawn; the totals count every copy-up.
MAX_BARS = 1000


@dataclass
class Band:
    """One layer of the stack, named as ``explain`` names it (``upper``, ``lower1`` = topmost lower)."""

    role: str
    label: str
    dir: str
    command: str = ""
    entries: int = 0
    bytes: int = 0  # data stored (each inode once, metacopy files not counted)
    whiteouts: int = 0
    opaque: int = 0


@dataclass
class Cell:
    """A layer that holds the literal path, and what the lookup made of it."""

    band: int  # index into Report.bands (0 = topmost)
    role: str  # explain's: "name+data", "name", "data", "merged into the directory", "hidden"
    whiteout: bool = False
    opaque: bool = False


@dataclass
class PathRow:
    path: str
    merged: str  # the merged view's type ("regular file"...), "" when the name is hidden
    winner: int | None  # band whose entry the merged view shows
    cells: list[Cell] = field(default_factory=list)
    explain: str = ""  # explain's text for the path (or why it could not be explained)


@dataclass
class CopyUp:
    """One copy-up event of the engine, in the order it happened."""

    seq: int
    path: str
    type: str
    layer: str  # the lower it was copied from ("lower2")
    bytes: int
    metadata_only: bool = False
    reason: str = ""
    line: int | None = None  # the trace line that caused it (replays)
    call: str = ""
    row: int | None = None  # the path row it belongs to, when that path is drawn


@dataclass
class Report:
    kind: str  # "image", "container", "replay"
    name: str
    bands: list[Band]
    rows: list[PathRow]
    total_paths: int  # paths in all layers; ``rows`` holds at most the cap
    copy_ups: list[CopyUp] | None  # None: no event log to read (a saved container)
    copy_up_count: int = 0
    copy_up_bytes: int = 0
    decisions: dict[str, int] = field(default_factory=dict)  # whiteouts, opaque_dirs... made
    upper_state: list[dict[str, Any]] = field(default_factory=list)  # a container without events
    facts: list[tuple[str, str]] = field(default_factory=list)  # header lines: (label, value)
    notes: list[str] = field(default_factory=list)

    def page_data(self) -> dict[str, Any]:
        """What the page's script needs (the rest is in the SVG's attributes)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "paths": [r.path for r in self.rows],
            "explain": [r.explain for r in self.rows],
            "bands": [b.role for b in self.bands],
            "copy_up_count": self.copy_up_count,
            "copy_up_bytes": self.copy_up_bytes,
        }
