"""Layers stacked as overlayfs stacks them, and what each layer did to the tree below it.

The rules are the kernel's lookup (fs/overlayfs/namei.c, ``ovl_lookup``): the topmost layer
holding a name wins; a whiteout hides the name; a non-directory hides everything below it;
a directory merges with the directories below unless it is opaque.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from overlaysim.dive.model import Entry, Layer, path_key

# What a layer's entry did to the merged view of the layers below it (dive's marks, plus
# the overlay's own: an opaque directory hides what is below even though its name stays).
ADDED, MODIFIED, REMOVED, OPAQUE, UNMODIFIED = "added", "modified", "removed", "opaque", "unmodified"
MARKS = (ADDED, MODIFIED, REMOVED, OPAQUE, UNMODIFIED)


@dataclass
class Node:
    """A name of the merged view: the entry that wins and the layer it comes from."""

    entry: Entry
    layer: int
    children: dict[str, Node] = field(default_factory=dict)


class Merged:
    """The merged view of a layer prefix, built bottom up."""

    def __init__(self) -> None:
        self.root = Node(Entry("/", "dir", 0, 0o755, 0, 0, 0), -1)

    def get(self, path: str) -> Node | None:
        node = self.root
        for name in path_key(path):
            child = node.children.get(name)
            if child is None:
                return None
            node = child
        return node

    def _parent(self, path: str) -> Node | None:
        parts = path_key(path)
        return self.get("/" + "/".join(parts[:-1])) if parts else None

    def apply(self, layer: Layer) -> None:
        """Stack ``layer`` on top (parents are applied before their children)."""
        for e in layer.sorted_entries():
            parent = self._parent(e.path)
            if parent is None or parent.entry.kind != "dir":
                continue  # below a name this layer itself hid or replaced: not reachable
            name = e.name
            old = parent.children.get(name)
            if e.kind == "whiteout":
                parent.children.pop(name, None)
            elif e.kind == "dir" and old is not None and old.entry.kind == "dir" and not e.opaque:
                old.entry, old.layer = e, layer.index  # merge: the upper dir's inode wins
            else:
                parent.children[name] = Node(e, layer.index)

    def walk(self) -> list[tuple[str, Node]]:
        """Every (path, node) in name order, parents first."""
        out: list[tuple[str, Node]] = []

        def visit(node: Node, path: str) -> None:
            for name in sorted(node.children):
                child = node.children[name]
                p = path.rstrip("/") + "/" + name
                out.append((p, child))
                visit(child, p)

        visit(self.root, "/")
        return out


def merged(layers: list[Layer], upto: int | None = None) -> Merged:
    """The merged view of ``layers[0..upto]`` (all of them by default)."""
    m = Merged()
    top = len(layers) - 1 if upto is None else upto
    for layer in layers[: top + 1]:
        m.apply(layer)
    return m


def mark(entry: Entry, below: Node | None) -> str:
    """What ``entry`` does to the name ``below`` it had in the merged view of lower layers."""
    if entry.kind == "whiteout":
        return REMOVED
    if entry.kind == "dir" and entry.opaque:
        return OPAQUE
    if below is None:
        return ADDED
    old = below.entry
    if entry.kind == "dir" and old.kind == "dir":
        return UNMODIFIED if entry.same_metadata(old) else MODIFIED
    return MODIFIED


def layer_marks(layers: list[Layer]) -> list[dict[str, str]]:
    """For each layer, path -> mark against the merged view of the layers below it."""
    out: list[dict[str, str]] = []
    m = Merged()
    for layer in layers:
        out.append({e.path: mark(e, m.get(e.path)) for e in layer.entries.values()})
        m.apply(layer)
    return out
