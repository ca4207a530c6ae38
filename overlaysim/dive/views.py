"""The explorer's tree pane as data: which names to show for a layer, with which marks.

Kept apart from the textual widgets so the filters are plain functions a test can call,
and so the UI only turns rows into tree nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from overlaysim.dive.model import Entry, Layer, path_key
from overlaysim.dive.stack import ADDED, MODIFIED, OPAQUE, REMOVED, UNMODIFIED, merged
from overlaysim.dive.waste import Waste

SYMBOL = {ADDED: "+", MODIFIED: "~", REMOVED: "-", OPAQUE: "o", UNMODIFIED: " "}


@dataclass
class Row:
    path: str
    entry: Entry
    mark: str
    wasted: str = ""  # why this file's data is waste ("" if it is not)

    @property
    def depth(self) -> int:
        return len(path_key(self.path))

    def text(self) -> str:
        e = self.entry
        name = e.name + ("/" if e.kind == "dir" else "")
        if e.kind == "symlink":
            name += f" -> {e.digest}"
        size = f"  {e.size} B" if e.kind == "file" else ""
        if e.kind == "file" and not e.first_link:
            size = "  (hard link: data counted once)"
        waste = f"  [wasted: {self.wasted}]" if self.wasted else ""
        return f"{SYMBOL[self.mark]} {name}{size}{waste}"


def _wasted_paths(waste: Waste, index: int) -> dict[str, str]:
    return {p: w.reason for w in waste.items if w.layer == index for p in w.paths}


def layer_rows(layers: list[Layer], marks: list[dict[str, str]], waste: Waste,
               index: int) -> list[Row]:  # fmt: skip
    """What layer ``index`` itself holds, each name marked against the layers below."""
    wasted = _wasted_paths(waste, index)
    layer = layers[index]
    return [Row(e.path, e, marks[index][e.path], wasted.get(e.path, ""))
            for e in layer.sorted_entries()]  # fmt: skip


def merged_rows(layers: list[Layer], marks: list[dict[str, str]], waste: Waste,
                index: int) -> list[Row]:  # fmt: skip
    """The merged view up to layer ``index``; names it removed are listed, marked removed."""
    view = merged(layers, index)
    rows = []
    for path, node in view.walk():
        mark = marks[index].get(path, UNMODIFIED) if node.layer == index else UNMODIFIED
        rows.append(Row(path, node.entry, mark))
    for e in layers[index].entries.values():
        if e.kind == "whiteout":
            rows.append(Row(e.path, e, REMOVED))
    wasted = _wasted_paths(waste, index)
    for row in rows:
        if row.entry is layers[index].entries.get(row.path):
            row.wasted = wasted.get(row.path, "")
    return sorted(rows, key=lambda r: path_key(r.path))


def filtered(rows: list[Row], hidden: set[str]) -> list[Row]:
    """Drop rows whose mark is hidden, keeping a directory that still has a shown name below."""
    shown = {r.path for r in rows if r.mark not in hidden}
    keep = set(shown)
    for path in shown:
        parts = path_key(path)
        for depth in range(1, len(parts)):
            keep.add("/" + "/".join(parts[:depth]))
    return [r for r in rows if r.path in keep]
