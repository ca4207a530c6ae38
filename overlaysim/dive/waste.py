"""The honest waste figure: bytes a layer stores that the merged view can never show.

Definition (the README has it too). Let ``stored(L)`` be the data of every regular-file
inode of layer ``L``, each inode once however many hard links name it (a metacopy upper
file stores no data). An inode of layer ``L`` is *live* if at least one of its names is the
winner of that path in the merged view of all layers; otherwise its data is *wasted*::

    total      = sum(stored(L))                    over all layers
    waste      = sum(size of each non-live inode)  over all layers
    efficiency = 1 - waste / total                 (1.0 when total is 0)
    user waste = waste / (total - stored(base))    (the base layer is not the user's)

Each wasted inode is given the first layer above it that hid it and why: deleted (whiteout),
deleted with a directory, hidden by an opaque directory, overwritten, replaced by another
type, re-added identically, or re-stored by a metadata-only change (chmod/chown copies the
whole file into the new layer: the lower copy becomes waste).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overlaysim.dive.model import Entry, Layer, path_key
from overlaysim.dive.stack import merged

DELETED = "deleted (whiteout)"
DELETED_DIR = "its directory was deleted (whiteout)"
OPAQUE_DIR = "hidden by an opaque directory"
OVERWRITTEN = "overwritten with new content"
SAME = "re-added identically"
METADATA = "metadata-only change (chmod/chown) re-stored the whole file"
REPLACED = "replaced by another file type"
PARENT_REPLACED = "its directory was replaced by a non-directory"
_NONE = Entry("", "none", 0, 0, 0, 0, 0)


@dataclass
class Wasted:
    """One wasted inode: where it is stored, its names, and what hid it."""

    layer: int
    paths: list[str]
    size: int
    by_layer: int
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "paths": self.paths, "size": self.size,
                "hidden_by_layer": self.by_layer, "reason": self.reason}  # fmt: skip


@dataclass
class Waste:
    total: int
    user_total: int
    layer_sizes: list[int]
    items: list[Wasted] = field(default_factory=list)

    @property
    def wasted(self) -> int:
        return sum(w.size for w in self.items)

    @property
    def efficiency(self) -> float:
        return 1.0 if self.total == 0 else 1.0 - self.wasted / self.total

    @property
    def user_wasted_percent(self) -> float | None:
        """Waste over the bytes the user's layers added (None when only a base layer)."""
        return None if self.user_total == 0 else self.wasted / self.user_total

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.items:
            out[w.reason] = out.get(w.reason, 0) + w.size
        return out

    def per_layer(self) -> list[int]:
        out = [0] * len(self.layer_sizes)
        for w in self.items:
            out[w.layer] += w.size
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "total_bytes": self.total,
            "user_bytes": self.user_total,
            "wasted_bytes": self.wasted,
            "efficiency": self.efficiency,
            "user_wasted_percent": self.user_wasted_percent,
            "wasted_by_reason": self.by_reason(),
            "wasted_per_layer": self.per_layer(),
            "items": [w.as_json() for w in sorted(self.items, key=lambda w: -w.size)],
        }


def _why(entry: Entry, above: list[Layer]) -> tuple[int, str]:
    """The first of the layers ``above`` an entry's own that hides its path, and how."""
    parts = path_key(entry.path)
    for layer in above:
        for depth in range(1, len(parts)):
            anc = layer.entries.get("/" + "/".join(parts[:depth]))
            if anc is None:
                continue
            if anc.kind == "whiteout":
                return layer.index, DELETED_DIR
            if anc.kind != "dir":
                return layer.index, PARENT_REPLACED
            if anc.opaque:
                return layer.index, OPAQUE_DIR
        new = layer.entries.get(entry.path)
        if new is None:
            continue
        if new.kind == "whiteout":
            return layer.index, DELETED
        if new.kind != "file":
            return layer.index, REPLACED
        if new.metacopy or new.digest == entry.digest:
            return layer.index, SAME if new.same_metadata(entry) else METADATA
        return layer.index, OVERWRITTEN
    return -1, "unreachable"


def honest_waste(layers: list[Layer]) -> Waste:
    """Compute :class:`Waste` for ``layers`` (bottom first)."""
    top = merged(layers)
    winners = {(node.layer, path) for path, node in top.walk()}
    for path, node in top.walk():
        if node.entry.metacopy:  # a metacopy upper file reads its data from the file below
            below = [x.index for x in layers[: node.layer] if x.entries.get(path, _NONE).kind == "file"]
            if below:
                winners.add((below[-1], path))
    sizes = [layer.size for layer in layers]
    result = Waste(sum(sizes), sum(sizes[1:]), sizes)
    for layer in layers:
        groups: dict[int, list[Entry]] = {}
        for e in layer.sorted_entries():
            if e.kind == "file":
                groups.setdefault(e.ino, []).append(e)
        for names in groups.values():
            size = sum(e.size for e in names if e.first_link and not e.metacopy)
            if size == 0 or any((layer.index, e.path) in winners for e in names):
                continue
            by, reason = min(_why(e, layers[layer.index + 1 :]) for e in names)
            result.items.append(Wasted(layer.index, [e.path for e in names], size, by, reason))
    return result
