"""Snapshots of trees, the overlay merge of per-layer trees, and tree comparison.

To report where Docker's per-layer application and a flattening extractor disagree we need
both *results as a user sees them*: the flattened tree as it is, and the per-layer
directories merged the way overlayfs merges lowers (topmost entry wins, a char 0/0 device
hides the name, ``trusted.overlay.opaque=y`` stops a directory from merging with lower ones,
a non-directory stops it too, ``trusted.overlay.*`` is hidden and ``trusted.overlay.overlay.*``
shows unescaped). Kernel tests check this merge against a real ``mount -t overlay``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Any

OPAQUE = "trusted.overlay.opaque"
KIND_NAMES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


@dataclass(frozen=True)
class Node:
    """What a user can observe of one path (besides directory timestamps)."""

    kind: str
    mode: int
    uid: int
    gid: int
    size: int = 0
    digest: str = ""
    link: str = ""
    rdev: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, bytes], ...] = ()
    mtime_ns: int = 0
    ino: int = 0
    nlink: int = 1

    @property
    def is_whiteout(self) -> bool:
        return self.kind == "char" and self.rdev == (0, 0)

    @property
    def opaque(self) -> bool:
        return self.kind == "dir" and (OPAQUE, b"y") in self.xattrs

    def describe(self) -> str:
        extra = {"file": f" {self.size}B", "symlink": f" -> {self.link}"}.get(self.kind, "")
        if self.kind in ("char", "block"):
            extra = f" {self.rdev[0]}:{self.rdev[1]}"
        return f"{self.kind} {self.mode:04o} {self.uid}:{self.gid}{extra}"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "mode": f"{self.mode:04o}",
            "uid": self.uid,
            "gid": self.gid,
        }
        if self.kind == "file":
            d["size"] = self.size
            d["sha256"] = self.digest
        if self.kind == "symlink":
            d["target"] = self.link
        if self.kind in ("char", "block"):
            d["rdev"] = list(self.rdev)
        if self.xattrs:
            d["xattrs"] = sorted(k for k, _ in self.xattrs)
        return d


def _read_all(o: Any, path: str) -> bytes:
    fd = o.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        parts: list[bytes] = []
        while True:
            b = o.read(fd, 1 << 20)
            if not b:
                return b"".join(parts)
            parts.append(b)
    finally:
        o.close(fd)


def _xattrs(o: Any, path: str) -> tuple[tuple[str, bytes], ...]:
    try:
        names = o.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out = []
    for n in sorted(names):
        try:
            out.append((n, bytes(o.getxattr(path, n, follow_symlinks=False))))
        except OSError:
            continue
    return tuple(out)


def node_of(o: Any, path: str, st: os.stat_result | None = None) -> Node:
    st = st or o.lstat(path)
    kind = KIND_NAMES.get(stat.S_IFMT(st.st_mode), "other")
    digest = ""
    link = ""
    if kind == "file":
        digest = hashlib.sha256(_read_all(o, path)).hexdigest()
    elif kind == "symlink":
        link = o.readlink(path)
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("char", "block") else (0, 0)
    return Node(
        kind=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size if kind in ("file", "symlink") else 0,
        digest=digest,
        link=link,
        rdev=rdev,
        xattrs=_xattrs(o, path),
        mtime_ns=st.st_mtime_ns,
        ino=st.st_ino,
        nlink=st.st_nlink,
    )


def snapshot(o: Any, root: str) -> dict[str, Node]:
    """Every path below ``root`` ('' is the root itself), never following symlinks."""
    out: dict[str, Node] = {"": node_of(o, root)}
    stack = [""]
    while stack:
        rel = stack.pop()
        base = posixpath.join(root, rel) if rel else root
        for name in sorted(o.listdir(base)):
            crel = f"{rel}/{name}" if rel else name
            n = node_of(o, posixpath.join(base, name))
            out[crel] = n
            if n.kind == "dir":
                stack.append(crel)
    return out


def _children(tree: dict[str, Node]) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {}
    for rel in tree:
        if rel:
            parent, _, name = rel.rpartition("/")
            kids.setdefault(parent, []).append(name)
    return kids


def _visible_xattrs(n: Node) -> Node:
    """What getxattr on the merged view shows: overlay xattrs hidden, escaped ones unescaped."""
    if not n.xattrs:
        return n
    out = []
    for k, v in n.xattrs:
        for ns in ("trusted.", "user."):
            if k.startswith(ns + "overlay.overlay."):
                out.append((ns + "overlay." + k[len(ns + "overlay.overlay.") :], v))
                break
            if k.startswith(ns + "overlay."):
                break
        else:
            out.append((k, v))
    return Node(**{**n.__dict__, "xattrs": tuple(sorted(out))})


def overlay_merge(layers_top_first: list[dict[str, Node]]) -> dict[str, Node]:
    """The merged view of read-only lowers, uppermost first, as overlayfs presents it."""
    if not layers_top_first:
        return {}
    kids = [_children(t) for t in layers_top_first]
    out: dict[str, Node] = {"": _visible_xattrs(layers_top_first[0][""])}
    work: list[tuple[str, list[int]]] = [("", list(range(len(layers_top_first))))]
    while work:
        rel, stack = work.pop()
        names: list[str] = []
        seen: set[str] = set()
        for li in stack:
            for name in kids[li].get(rel, []):
                if name not in seen:
                    seen.add(name)
                    names.append(name)
        for name in names:
            crel = f"{rel}/{name}" if rel else name
            top: Node | None = None
            sub: list[int] = []
            for li in stack:
                n = layers_top_first[li].get(crel)
                if n is None:
                    continue
                if n.is_whiteout or n.kind != "dir":
                    if top is None and not n.is_whiteout:
                        top = n
                    break
                if top is None:
                    top = n
                sub.append(li)
                if n.opaque:
                    break
            if top is None:
                continue
            out[crel] = _visible_xattrs(top)
            if top.kind == "dir":
                work.append((crel, sub))
    return out


@dataclass
class Divergence:
    path: str
    native: Node | None
    flat: Node | None
    fields: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": "/" + self.path,
            "fields": self.fields,
            "native": self.native.to_json() if self.native else None,
            "flat": self.flat.to_json() if self.flat else None,
        }

    def __str__(self) -> str:
        a = self.native.describe() if self.native else "absent"
        b = self.flat.describe() if self.flat else "absent"
        return f"/{self.path}: overlay2 {a} | flattened {b} ({', '.join(self.fields)})"


def compare(a: dict[str, Node], b: dict[str, Node]) -> list[Divergence]:
    """Paths whose observable state differs (directory times and inode numbers ignored)."""
    out = []
    for p in sorted(set(a) | set(b)):
        x, y = a.get(p), b.get(p)
        if x is None or y is None:
            out.append(Divergence(p, x, y, ["presence"]))
            continue
        fields = []
        for f in ("kind", "mode", "uid", "gid", "size", "digest", "link", "rdev", "xattrs"):
            if getattr(x, f) != getattr(y, f):
                fields.append(f)
        if x.kind != "dir" and y.kind != "dir" and x.mtime_ns // 10**9 != y.mtime_ns // 10**9:
            fields.append("mtime")
        if fields:
            out.append(Divergence(p, x, y, fields))
    return out
