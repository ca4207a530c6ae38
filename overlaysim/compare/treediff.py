"""Two layer snapshots -> rows a reader can scan: path, what differs, the value on each side.

``observe.diff`` is written for a test failure (every field, Python reprs); a learner wants
"etc2: trusted.overlay.redirect: absent | etc" and one row for "these 9 entries exist only
in A", not nine. The comparison itself is the same: snapshot entries field by field, file
handles by presence (their bytes hold inode numbers, never equal between two mounts).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from overlaysim.testing.observe import Entry, Snapshot

#: one row per one-sided entry up to this many siblings; more are folded into one row
_FOLD = 3
ABSENT = "absent"


@dataclass(frozen=True)
class Row:
    path: str
    what: str
    a: str
    b: str

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "what": self.what, "A": self.a, "B": self.b}

    def line(self) -> str:
        return f"{self.path}: {self.what}: A={self.a} B={self.b}"


def _value(v: bytes | None) -> str:
    if v is None:
        return "set (a file handle)"
    if not v:
        return "set, empty"
    try:
        text = v.decode("ascii")
    except UnicodeDecodeError:
        return "0x" + v.hex()
    return repr(text) if text.isprintable() else "0x" + v.hex()


def describe(e: Entry) -> str:
    """An entry in a few words: its type and what matters about it."""
    if e.type == "file":
        return f"file, {e.size} bytes"
    if e.type == "symlink":
        return f"symlink -> {e.target}"
    if e.type == "dir" and e.listing is not None:
        n = len(e.listing)
        return f"dir, {n} {'entry' if n == 1 else 'entries'}"
    return e.type


def _fields(path: str, x: Entry, y: Entry) -> list[Row]:
    if x.type != y.type:
        return [Row(path, "type", describe(x), describe(y))]
    rows: list[Row] = []
    xa, ya = dict(x.xattrs), dict(y.xattrs)
    for name in sorted(set(xa) | set(ya)):
        if name not in xa or name not in ya or xa[name] != ya[name]:
            rows.append(Row(path, name, _value(xa[name]) if name in xa else ABSENT,
                            _value(ya[name]) if name in ya else ABSENT))  # fmt: skip
    simple: list[tuple[str, Any, Any]] = [
        ("size", x.size, y.size), ("mode", x.mode, y.mode), ("owner", (x.uid, x.gid), (y.uid, y.gid)),
        ("nlink", x.nlink, y.nlink), ("data (sha256)", x.digest, y.digest), ("target", x.target, y.target),
        ("device", x.rdev, y.rdev), ("hard links", x.links, y.links),
    ]  # fmt: skip
    for what, u, v in simple:
        if u != v:
            show = (lambda m: f"{m:04o}") if what == "mode" else str
            rows.append(Row(path, what, show(u), show(v)))
    return rows


def _below(rel: str, ones: set[str]) -> int:
    return sum(1 for p in ones if p.startswith(rel + "/"))


def differences(a: Snapshot, b: Snapshot) -> list[Row]:
    """What differs between two layer trees (upper or work dirs), in path order.

    A directory's listing is not a row of its own: the entries that differ are. An entry only
    on one side stands for everything below it; many such siblings make one row."""
    rows: list[tuple[str, Row]] = []
    only: dict[str, set[str]] = {"A": set(), "B": set()}
    for rel in sorted(set(a.entries) | set(b.entries)):
        x, y = a.entries.get(rel), b.entries.get(rel)
        if x is not None and y is not None:
            rows += [(rel, r) for r in _fields(rel or "/", x, y)]
        elif x is not None or y is not None:
            only["A" if y is None else "B"].add(rel)
    for side, ones in only.items():
        snap = a if side == "A" else b
        tops = [p for p in sorted(ones) if not p or posixpath.dirname(p) not in ones]
        for group in _siblings(tops).values():
            rows += _one_sided(group, side, snap, ones)
    return [r for _, r in sorted(rows, key=lambda t: t[0])]


def _siblings(paths: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in paths:
        out.setdefault(posixpath.dirname(p), []).append(p)
    return out


def _one_sided(paths: list[str], side: str, snap: Snapshot, ones: set[str]) -> list[tuple[str, Row]]:
    """Rows for sibling entries only on ``side``: one row when they are many; a directory
    with few entries below shows them too (an index entry is what matters, not its dir)."""

    def row(where: str, text: str) -> tuple[str, Row]:
        return where, Row(where, "only in " + side, *((text, ABSENT) if side == "A" else (ABSENT, text)))

    if len(paths) > _FOLD:
        parent = posixpath.dirname(paths[0])
        names = [posixpath.basename(p) + ("/" if snap.entries[p].type == "dir" else "") for p in paths]
        below = sum(_below(p, ones) for p in paths)
        text = f"{len(paths)} entries: " + ", ".join(names) + (f" (and {below} below)" if below else "")
        return [row(f"{parent}/*" if parent else "*", text)]
    out: list[tuple[str, Row]] = []
    for p in paths:
        n = _below(p, ones)
        if n > _FOLD:
            out.append(row(p, describe(snap.entries[p]) + f" (and {n} below)"))
            continue
        out.append(row(p, describe(snap.entries[p])))
        children = sorted(q for q in ones if posixpath.dirname(q) == p and q)
        if children:
            out += _one_sided(children, side, snap, ones)
    return out
