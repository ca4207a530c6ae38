"""dive's own figures (wagoodman/dive, ``filetree.Efficiency`` and ``image.Analyze``),
re-derived in our words so the two can be compared on the same layers.

What dive computes, read from its source (v0.13):

- Each layer becomes a tree of its tar entries; a size is the tar header's size (a hard
  link's is 0, so shared data counts once by accident). Opaque markers (``.wh..wh..opq``) are
  dropped: dive does not see opaque directories at all. Directories a tar never names are
  created implicitly with size 0 and *not* flagged as directories.
- For every *leaf* of every layer's tree (bottom first, names sorted), keyed by its path
  (``.wh.`` stripped): a file counts its size; a whiteout counts 0 if the name below was
  not a directory, or the sum of every node of that directory in the tree stacked from the
  layers below (dive's own stacking, which keeps a directory's children when a file
  replaces it and ignores opacity). If that lookup fails, the rest of the layer is skipped
  and the path is left with a minimum of -1 (a quirk we reproduce).
- Per path: ``cumulative`` = sum of those sizes, ``minimum`` = the smallest one, and the
  path is *inefficient* once it has been seen in two layers.
- ``efficiency = sum(minimum) / sum(cumulative)`` over all paths (1.0 if the sum is 0);
  ``wasted = sum(cumulative)`` over inefficient paths: it includes the surviving copy, so
  a file written once and overwritten once is wasted twice; ``size`` = sum of every
  layer's tar sizes; ``user size`` = the same without layer 0;
  ``user wasted percent = wasted / user size`` (not a percent: a ratio, possibly above 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from overlaysim.dive.model import Layer

_WH = ".wh."
_WH_META = ".wh..wh."


@dataclass
class _DNode:
    name: str
    size: int = 0
    is_dir: bool = False
    parent: _DNode | None = None
    children: dict[str, _DNode] = field(default_factory=dict)

    def path(self) -> str:
        names: list[str] = []
        node: _DNode | None = self
        while node is not None and node.parent is not None:
            name = node.name
            if node is self and name.startswith(_WH):
                name = name[len(_WH) :]
            names.append(name)
            node = node.parent
        return "/" + "/".join(reversed(names))

    @property
    def whiteout(self) -> bool:
        return self.name.startswith(_WH)

    def copy(self, parent: _DNode | None) -> _DNode:
        new = _DNode(self.name, self.size, self.is_dir, parent)
        new.children = {k: c.copy(new) for k, c in self.children.items()}
        return new

    def child_first(self) -> list[_DNode]:
        """Every node below (not this one), children before their parent, names sorted."""
        out: list[_DNode] = []
        for name in sorted(self.children):
            child = self.children[name]
            out += child.child_first()
            out.append(child)
        return out


def _names(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _add(root: _DNode, path: str, size: int, is_dir: bool) -> None:
    node = root
    names = _names(path)
    for i, name in enumerate(names):
        if name in node.children:
            node = node.children[name]
        else:
            if name.startswith(_WH_META):
                return
            child = _DNode(name, parent=node)
            node.children[name] = child
            node = child
        if i == len(names) - 1:
            node.size, node.is_dir = size, is_dir


def _get(root: _DNode, path: str) -> _DNode | None:
    node = root
    for name in _names(path):
        if name not in node.children:
            return None
        node = node.children[name]
    return node


def _remove(root: _DNode, path: str) -> None:
    node = _get(root, path)
    if node is not None and node.parent is not None:
        del node.parent.children[node.name]


def _stack(lower: _DNode, upper: _DNode) -> None:
    for node in upper.child_first():
        if node.whiteout:
            _remove(lower, node.path())
        else:
            _add(lower, node.path(), node.size, node.is_dir)


def tar_entries(layer: Layer) -> list[tuple[str, int, bool]]:
    """(name, header size, is a directory) as Docker's tar writer would emit the layer."""
    out: list[tuple[str, int, bool]] = []
    for e in layer.sorted_entries():
        if e.kind == "whiteout":
            parent, _, name = e.path.rpartition("/")
            out.append((f"{parent}/{_WH}{name}", 0, False))
            continue
        size = e.size if e.kind == "file" and e.first_link else 0
        out.append((e.path, size, e.kind == "dir"))
        if e.opaque:
            out.append((f"{e.path}/{_WH_META}.opq", 0, False))
    return out


@dataclass
class DiveFigures:
    efficiency: float
    size: int
    user_size: int
    wasted: int
    inefficiencies: list[tuple[str, int, int]]  # (path, cumulative size, layer count)
    layer_sizes: list[int]

    @property
    def user_wasted_percent(self) -> float:
        if self.user_size == 0:
            return math.nan if self.wasted == 0 else math.inf  # Go's float division by zero
        return self.wasted / self.user_size

    def as_json(self) -> dict[str, Any]:
        uwp = self.user_wasted_percent
        return {
            "efficiency": self.efficiency,
            "size_bytes": self.size,
            "user_size_bytes": self.user_size,
            "wasted_bytes": self.wasted,
            "user_wasted_percent": uwp if math.isfinite(uwp) else None,
            "layer_sizes": self.layer_sizes,
            "inefficiencies": [{"path": p, "cumulative_size": c, "count": n}
                               for p, c, n in self.inefficiencies],
        }  # fmt: skip


def dive_figures(layers: list[Layer]) -> DiveFigures:
    """dive's efficiency, wasted bytes and sizes for ``layers`` (bottom first)."""
    return figures_from_tars([tar_entries(layer) for layer in layers])


def figures_from_tars(tars: list[list[tuple[str, int, bool]]]) -> DiveFigures:
    """The same from each layer's tar entries: (name, header size, is a directory)."""
    trees: list[_DNode] = []
    sizes: list[int] = []
    for entries in tars:
        root = _DNode("")
        total = 0
        for name, size, is_dir in entries:
            total += size
            _add(root, name, size, is_dir)
        trees.append(root)
        sizes.append(total)

    stacked: dict[int, _DNode] = {}

    def below(i: int) -> _DNode:
        if i not in stacked:
            root = trees[0].copy(None)
            for t in trees[:i]:
                _stack(root, t)
            stacked[i] = root
        return stacked[i]

    cum: dict[str, int] = {}
    low: dict[str, int] = {}
    seen: dict[str, int] = {}
    order: list[str] = []
    for i, tree in enumerate(trees):
        for node in tree.child_first():
            if node.children:
                continue  # only leaves count
            path = node.path()
            cum.setdefault(path, 0)
            low.setdefault(path, -1)
            if node.whiteout:
                prev = _get(below(i), path)
                if prev is None:
                    break  # dive's visitor errors out: the rest of this layer is skipped
                size = sum(n.size for n in prev.child_first()) + prev.size if prev.is_dir else 0
            else:
                size = node.size
            cum[path] += size
            if low[path] < 0 or size < low[path]:
                low[path] = size
            seen[path] = seen.get(path, 0) + 1
            if seen[path] == 2:
                order.append(path)
    total_cum = sum(cum.values())
    score = 1.0 if total_cum == 0 else sum(low.values()) / total_cum
    ineff = sorted(((p, cum[p], seen[p]) for p in order), key=lambda x: x[1])
    return DiveFigures(score, sum(sizes), sum(sizes[1:]), sum(c for _, c, _ in ineff), ineff,
                       sizes)  # fmt: skip
