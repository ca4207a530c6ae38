"""overlay2's Diff, ApplyDiff, DiffSize and Changes, native and naive, as moby chooses them.

Native (the layer's first lower is ``parent`` and the daemon supports native diff): the layer
tar is untarred straight into ``diff/`` in the overlay whiteout format, and ``diff/`` is
tarred back with the overlay converter (:func:`overlaysim.image.export.layer_tar`). Otherwise
the "naive" graphdriver wrapper mounts the layer and its parent and compares the two trees
(go-archive ``ChangesDirs``), exporting changes with old-style whiteouts. ``Changes`` (what
``docker diff`` prints) is always naive.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
from typing import TYPE_CHECKING, Any

from overlaysim.image.apply import Applier
from overlaysim.image.export import Change, Names, _capability, _header, _read, layer_tar
from overlaysim.image.export import changes as changes_of
from overlaysim.image.findings import Findings
from overlaysim.image.layer import LayerPlan, parse_layer
from overlaysim.image.limits import DEFAULT_LIMITS, Limits
from overlaysim.image.tar_writer import Header, TarWriter
from overlaysim.image.tree import KIND_NAMES, Node

if TYPE_CHECKING:
    from overlaysim.overlay2.driver import Overlay2Driver

CAPABILITY = "security.capability"


def native(drv: Overlay2Driver, id: str, parent: str) -> bool:
    """moby: ``!useNaiveDiff(home) && isParent(id, parent)``."""
    return drv.native_diff and drv.is_parent(id, parent)


def dir_size(o: Any, root: str) -> int:
    """moby ``directory.Size``: st_size of every non-directory, each inode counted once."""
    total = 0
    seen: set[int] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        for name in o.listdir(d):
            p = posixpath.join(d, name)
            st = o.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                stack.append(p)
                continue
            if st.st_size == 0 or st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            total += st.st_size
    return total


# --- ApplyDiff ------------------------------------------------------------------------------
def parse(tar: bytes | Any, limits: Limits | None = None, *, strict: bool = True) -> LayerPlan:
    """Parse and validate a layer tar (bytes or a readable stream), keeping its tar-split."""
    raw = io.BytesIO(bytes(tar)) if isinstance(tar, (bytes, bytearray, memoryview)) else tar
    return parse_layer(raw, limits or DEFAULT_LIMITS, strict=strict, capture=True)


def apply_plan(drv: Overlay2Driver, id: str, parent: str, plan: LayerPlan) -> int:
    """Apply a parsed layer to ``id``; returns what ApplyDiff returns (the size)."""
    findings = Findings()
    if native(drv, id, parent):
        target = posixpath.join(drv.dir(id), "diff")
        Applier(drv.o, target, "native", findings).apply(plan)
        return dir_size(drv.o, target)
    root = drv.get(id)
    try:
        Applier(drv.o, root, "flat", findings).apply(plan)
    finally:
        drv.put(id)
    return int(plan.stats.get("bytes", 0))


def apply_diff(
    drv: Overlay2Driver, id: str, parent: str, tar: bytes | Any, *, limits: Limits | None = None
) -> int:
    return apply_plan(drv, id, parent, parse(tar, limits))


# --- Changes --------------------------------------------------------------------------------
def _node(o: Any, path: str, st: os.stat_result) -> Node:
    kind = KIND_NAMES.get(stat.S_IFMT(st.st_mode), "other")
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("char", "block") else (0, 0)
    xattrs: tuple[tuple[str, bytes], ...] = ()
    try:
        xattrs = ((CAPABILITY, bytes(o.getxattr(path, CAPABILITY, follow_symlinks=False))),)
    except OSError:
        pass
    return Node(kind=kind, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                size=st.st_size, rdev=rdev, xattrs=xattrs, mtime_ns=st.st_mtime_ns,
                ino=st.st_ino, nlink=st.st_nlink)  # fmt: skip


def tree(o: Any, root: str | None) -> dict[str, Node]:
    """What ChangesDirs collects of a tree: lstat and the capability xattr of every path."""
    if root is None:
        return {}
    out = {"": _node(o, root, o.lstat(root))}
    stack = [("", root)]
    while stack:
        rel, base = stack.pop()
        for name in o.listdir(base):
            crel = f"{rel}/{name}" if rel else name
            p = posixpath.join(base, name)
            st = o.lstat(p)
            out[crel] = _node(o, p, st)
            if stat.S_ISDIR(st.st_mode):
                stack.append((crel, p))
    return out


class _Mounted:
    """Get ``id`` (and ``parent``) for the duration of a with-block, Put them afterwards."""

    def __init__(self, drv: Overlay2Driver, id: str, parent: str) -> None:
        self.drv, self.id, self.parent = drv, id, parent
        self.got: list[str] = []

    def __enter__(self) -> tuple[str, str | None]:
        try:
            layer = self.drv.get(self.id)
            self.got.append(self.id)
            parent = None
            if self.parent:
                parent = self.drv.get(self.parent)
                self.got.append(self.parent)
        except BaseException:
            self.__exit__()
            raise
        return layer, parent

    def __exit__(self, *exc: object) -> None:
        while self.got:
            self.drv.put(self.got.pop())


def changes(drv: Overlay2Driver, id: str, parent: str) -> list[Change]:
    with _Mounted(drv, id, parent) as (layer, base):
        return changes_of(tree(drv.o, base), tree(drv.o, layer))


# --- Diff and DiffSize ----------------------------------------------------------------------
def diff(drv: Overlay2Driver, id: str, parent: str) -> bytes:
    out = io.BytesIO()
    bits, names = drv.tar_type_bits, drv.tar_names
    if native(drv, id, parent):
        diff_dir = posixpath.join(drv.dir(id), "diff")
        layer_tar(drv.o, diff_dir, out, legacy_mode_bits=bits, names=names)
        return out.getvalue()
    with _Mounted(drv, id, parent) as (layer, base):
        found = changes_of(tree(drv.o, base), tree(drv.o, layer))
        export_changes(
            drv.o, layer, found, out, now_ns=drv.fs.clock(), legacy_mode_bits=bits, names=names
        )
    return out.getvalue()


def export_changes(
    o: Any,
    root: str,
    found: list[Change],
    out: Any,
    *,
    now_ns: int,
    legacy_mode_bits: bool = False,
    names: Names | None = None,
) -> None:
    """go-archive ExportChanges: changed paths as full entries, deletions as bare whiteouts."""
    w = TarWriter(out)
    seen: dict[tuple[int, int], str] = {}
    for ch in sorted(found, key=lambda c: c.path):
        if ch.kind == "D":
            d, base = posixpath.split(ch.path)
            # tar.Header{Name, ModTime: now}: typeflag NUL, mode 0, root, USTAR, whole seconds
            w.add(Header(name=posixpath.join(d, ".wh." + base)[1:], typeflag="\0", mode=0,
                         mtime_ns=now_ns, want_pax=False))  # fmt: skip
            continue
        path = root + ch.path
        st = o.lstat(path)
        fmt = stat.S_IFMT(st.st_mode)
        link = o.readlink(path) if fmt == stat.S_IFLNK else ""
        h = _header(ch.path[1:], st, link, legacy_mode_bits, names)
        if h is None:
            continue
        cap = _capability(o, path)
        if cap is not None:
            h.pax["SCHILY.xattr." + CAPABILITY] = cap
        if fmt != stat.S_IFDIR and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                h.typeflag, h.linkname, h.size = "1", seen[key], 0
            else:
                seen[key] = h.name
        w.add(h, _read(o, path, h.size) if h.typeflag == "0" and h.size else b"")
    w.close()


def diff_size(drv: Overlay2Driver, id: str, parent: str) -> int:
    if native(drv, id, parent):
        return dir_size(drv.o, posixpath.join(drv.dir(id), "diff"))
    with _Mounted(drv, id, parent) as (layer, base):
        found = changes_of(tree(drv.o, base), tree(drv.o, layer))
        total = 0
        seen: set[int] = set()
        for ch in found:
            if ch.kind == "D":
                continue
            try:
                st = drv.o.lstat(layer + ch.path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if st.st_nlink > 1:
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            total += st.st_size
        return total
