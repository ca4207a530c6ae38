"""Snapshots of merged, upper and work trees, normalised as the kernel spec (section 10) says.

A snapshot keeps what must match between the kernel and a simulator and drops what may not:
inode and device numbers become relations (which paths share an inode; how many distinct
``st_dev`` the merged view shows), ctime/atime and directory mtimes are dropped, whiteouts
are "whiteout" whatever their link count, overlay xattrs are compared by value except the
file handles and uuids (presence only), and ``#<hex>`` temp names in the work dir are
renamed. Everything goes through an os-like module, so the same code reads a real mount and
a HostFS.
"""

from __future__ import annotations

import errno
import hashlib
import posixpath
import re
import stat
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from overlaysim.testing.ops import file_type

BY_VALUE = ("opaque", "redirect", "metacopy", "impure", "nlink", "protattr", "whiteout")
PRESENCE_ONLY = ("origin", "uuid", "upper")
_TEMP_NAME = re.compile(r"#[0-9a-f]+")


@dataclass(frozen=True)
class Entry:
    """One object of a tree. ``None`` fields do not apply to its type."""

    type: str  # file dir symlink chr blk fifo sock whiteout; "unreachable" (errno in target)
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    nlink: int | None = None
    digest: str | None = None
    target: str | None = None
    rdev: tuple[int, int] | None = None
    xattrs: tuple[tuple[str, bytes | None], ...] = ()
    links: tuple[str, ...] = ()  # other paths of this snapshot with the same inode
    listing: tuple[str, ...] | None = None  # directory entries, in readdir order if requested
    mtime_ns: int | None = None


@dataclass
class Snapshot:
    entries: dict[str, Entry] = field(default_factory=dict)
    distinct_devs: int = 0
    inodes: dict[str, tuple[int, int]] = field(default_factory=dict)  # not compared

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (self.entries, self.distinct_devs) == (other.entries, other.distinct_devs)

    __hash__ = None  # type: ignore[assignment]


def _digest(o: Any, path: str) -> str:
    h = hashlib.sha256()
    fd = o.open(path, o.O_RDONLY)
    try:
        while chunk := o.read(fd, 1 << 16):
            h.update(chunk)
    finally:
        o.close(fd)
    return h.hexdigest()[:16]


def _digest_or_errno(o: Any, path: str) -> str:
    """The digest, or ``<ERRNO>`` for a file that stats but cannot be read (the data of a
    metacopy file in a data-only layer is looked up on open, and may be missing)."""
    try:
        return _digest(o, path)
    except OSError as err:
        return f"<{errno.errorcode.get(err.errno or 0, str(err.errno))}>"


def _xattrs(o: Any, path: str, prefix: str | None) -> tuple[tuple[str, bytes | None], ...]:
    """All xattrs by value; with ``prefix`` (upper/work view), file handles by presence."""
    out: list[tuple[str, bytes | None]] = []
    try:
        names = o.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    for name in sorted(names):
        short = name[len(prefix) :] if prefix and name.startswith(prefix) else None
        if short in PRESENCE_ONLY:
            out.append((name, None))
            continue
        try:
            out.append((name, bytes(o.getxattr(path, name, follow_symlinks=False))))
        except OSError:
            out.append((name, None))
    return tuple(out)


def _entry(o: Any, path: str, st: Any, *, prefix: str | None, whiteouts: bool, times: bool) -> Entry:
    kind = file_type(st.st_mode)
    rdev = (o.major(st.st_rdev), o.minor(st.st_rdev)) if kind in ("chr", "blk") else None
    if whiteouts and kind == "chr" and rdev == (0, 0):
        return Entry("whiteout")
    e = Entry(
        kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
        size=None if kind == "dir" else st.st_size,
        nlink=None if kind == "dir" else st.st_nlink,
        digest=_digest_or_errno(o, path) if kind == "file" else None,
        target=o.fsdecode(o.readlink(path)) if kind == "symlink" else None,
        rdev=rdev, xattrs=_xattrs(o, path, prefix),
        mtime_ns=st.st_mtime_ns if times and kind != "dir" else None,
    )  # fmt: skip
    return e


def snapshot(
    o: Any,
    root: str,
    *,
    upper_prefix: str | None = None,
    order: bool = False,
    times: bool = False,
) -> Snapshot:
    """Walk ``root`` through ``o``.

    ``upper_prefix`` (e.g. "trusted.overlay.") reads the tree as a layer: char 0/0 devices are
    whiteouts and the private xattrs under that prefix are normalised. Without it, the tree is
    read as a merged view. ``order`` keeps readdir order; ``times`` keeps non-dir mtimes.
    """
    snap = Snapshot()
    layer = upper_prefix is not None
    devs: set[int] = set()
    by_inode: dict[tuple[int, int], list[str]] = defaultdict(list)
    pending = [""]
    while pending:
        rel = pending.pop()
        path = posixpath.join(root, rel) if rel else root
        st = o.lstat(path)
        devs.add(st.st_dev)
        e = _entry(o, path, st, prefix=upper_prefix, whiteouts=layer, times=times)
        if e.type not in ("dir", "whiteout"):
            by_inode[(st.st_dev, st.st_ino)].append(rel)
        snap.inodes[rel] = (st.st_dev, st.st_ino)
        if e.type == "dir":
            try:
                names = [o.fsdecode(n) for n in o.listdir(path)]
            except OSError as err:  # e.g. getdents failing on entries whose lookup fails
                names = []
                e = replace(e, listing=(f"<{errno.errorcode[err.errno or 0]}>",))
            else:
                e = replace(e, listing=tuple(names if order else sorted(names)))
            for name in names:
                child = posixpath.join(rel, name) if rel else name
                try:
                    o.lstat(posixpath.join(root, child))
                except OSError as err:  # listed but not stat-able (stray whiteouts, nofollow)
                    snap.entries[child] = Entry("unreachable", target=errno.errorcode[err.errno or 0])
                    continue
                pending.append(child)
        snap.entries[rel] = e
    for paths in by_inode.values():
        for p in paths:
            others = tuple(sorted(q for q in paths if q != p))
            if others:
                snap.entries[p] = replace(snap.entries[p], links=others)
    snap.distinct_devs = 0 if layer else len(devs)
    snap.entries = dict(sorted(snap.entries.items()))
    return snap


def snapshot_work(o: Any, root: str, prefix: str = "trusted.overlay.", *,
                  upper: str | None = None) -> Snapshot:  # fmt: skip
    """The work dir with every ``#<hex>`` temp name replaced by ``#`` (``#~1``... if several).

    ``index/<hex>`` entries (index=on) are named by file handles, which hold inode numbers and
    fs uuids: each is renamed after what it is, ``index/=<paths>`` where ``<paths>`` are the
    paths of ``upper`` (the upper dir, read through ``o``) linked to it (``-`` for none), and
    ``=`` becomes ``!`` when the name is not the hex of the entry's own ``origin`` (``?`` when
    it has none: a whiteout or a directory)."""
    snap = snapshot(o, root, upper_prefix=prefix)
    index_names = _index_names(o, root, prefix, snap, upper)
    out: dict[str, Entry] = {}

    def norm(part: str, parent: str) -> str:
        if _TEMP_NAME.fullmatch(part):
            return "#"
        return index_names.get(f"{parent}/{part}", part) if parent == "index" else part

    alike: dict[str, list[Entry]] = defaultdict(list)
    for rel, e in snap.entries.items():
        parts = rel.split("/")
        key = "/".join(norm(part, "/".join(parts[:i])) for i, part in enumerate(parts))
        if e.listing is not None:
            e = replace(e, listing=tuple(sorted(norm(x, rel) for x in e.listing)))
        alike[key].append(replace(e, links=()))
    for key, entries in alike.items():
        # Entries normalised to one name are numbered by what they are, not by their real
        # names: those are file handles, random per kernel mount.
        for n, e in enumerate(sorted(entries, key=repr) if len(entries) > 1 else entries):
            out[f"{key}~{n}" if n else key] = e
    snap.entries = dict(sorted(out.items()))
    return snap


def _index_names(o: Any, root: str, prefix: str, snap: Snapshot, upper: str | None) -> dict[str, str]:
    """index/<hex> -> the name it is compared by (see :func:`snapshot_work`)."""
    by_inode: dict[tuple[int, int], list[str]] = defaultdict(list)
    if upper is not None and any(rel.startswith("index/") for rel in snap.entries):
        for rel, (dev, ino) in snapshot(o, upper, upper_prefix=prefix).inodes.items():
            if rel:
                by_inode[(dev, ino)].append(rel)
    out: dict[str, str] = {}
    dir_origins = _upper_dir_origins(o, upper, prefix) if any(
        rel.startswith("index/") and snap.entries[rel].type == "dir" for rel in snap.entries) else {}
    for rel in snap.entries:
        parts = rel.split("/")
        if len(parts) != 2 or parts[0] != "index" or _TEMP_NAME.fullmatch(parts[1]):
            continue
        try:
            origin = bytes(o.getxattr(posixpath.join(root, rel), prefix + "origin",
                                      follow_symlinks=False))  # fmt: skip
            mark = "=" if origin.hex() == parts[1] else "!"
        except OSError:
            mark = "?"
        linked = sorted(by_inode.get(snap.inodes[rel], []))
        if not linked and parts[1] in dir_origins:  # nfs_export: the upper dir it names
            mark, linked = "^", dir_origins[parts[1]]
        out[rel] = mark + (",".join(linked) if linked else "-")
    return out


def _upper_dir_origins(o: Any, upper: str | None, prefix: str) -> dict[str, list[str]]:
    """Upper dirs by the hex of their ``origin``: a directory index entry (nfs_export) is
    named by it, whatever the layout of the real fs's handles (tmpfs, ext4...)."""
    out: dict[str, list[str]] = defaultdict(list)
    if upper is None:
        return out
    pending = [""]
    while pending:
        rel = pending.pop()
        path = posixpath.join(upper, rel) if rel else upper
        for name in o.listdir(path):
            child = posixpath.join(rel, name) if rel else name
            cpath = posixpath.join(upper, child)
            if o.lstat(cpath).st_mode & 0o170000 != 0o040000:
                continue
            pending.append(child)
            try:
                origin = bytes(o.getxattr(cpath, prefix + "origin", follow_symlinks=False))
            except OSError:
                continue
            out[origin.hex()].append(child)
    return out


def handle_shape(handle: bytes | None) -> list[object] | None:
    """A ``struct file_handle`` compared by structure, not value (inode numbers and uuids
    differ between the kernel and the simulator): its length and type and, for an overlay
    handle (type 0xf8), the ``ovl_fb`` header (version, magic, length, flags, real type)."""
    if handle is None:
        return None
    nbytes = int.from_bytes(handle[0:4], "little")
    htype = int.from_bytes(handle[4:8], "little", signed=True)
    data = handle[8:]
    out: list[object] = [nbytes, htype]
    if htype == 0xF8 and len(data) >= 8:
        out.append(list(data[3:8]))
    return out


def check_work(snap: Snapshot, *, index: bool = False, volatile: bool = False) -> list[str]:
    """Problems with a work dir after umount (kernel spec section 10, item 3)."""
    problems = []
    allowed_top = {"work"} | ({"index"} if index else set())
    for rel, e in snap.entries.items():
        parts = rel.split("/") if rel else []
        if not parts:
            continue
        if len(parts) == 1 and parts[0] not in allowed_top:
            problems.append(f"unexpected {rel!r} in the work dir")
        elif parts == ["work"] and (e.type != "dir" or e.mode != 0):
            problems.append("work/ is not a mode-0000 directory")
        elif parts[0] == "work" and len(parts) >= 2:
            if parts[1].startswith("#"):
                if e.type != "whiteout" or len(parts) > 2:
                    problems.append(f"temp {rel!r} is not a whiteout master")
            elif not (volatile and parts[1] == "incompat"):
                problems.append(f"unexpected {rel!r} in work/")
    masters = [r for r in snap.entries if r.startswith("work/#")]
    if len(masters) > 1:
        problems.append(f"{len(masters)} whiteout masters left in work/")
    return problems


def without(snap: Snapshot, fields: Sequence[str]) -> Snapshot:
    """A copy of ``snap`` with the named :class:`Entry` fields blanked (not compared)."""
    names = [f for f in fields if f in Entry.__dataclass_fields__]
    if not names:
        return snap
    blank: dict[str, Any] = {f: Entry.__dataclass_fields__[f].default for f in names}
    return Snapshot({p: replace(e, **blank) for p, e in snap.entries.items()},
                    snap.distinct_devs, snap.inodes)  # fmt: skip


def diff(a: Snapshot, b: Snapshot, labels: tuple[str, str] = ("kernel", "simulator")) -> list[str]:
    """Readable differences between two snapshots (empty when equal)."""
    out = []
    if a.distinct_devs != b.distinct_devs:
        out.append(f"distinct st_dev: {labels[0]}={a.distinct_devs} {labels[1]}={b.distinct_devs}")
    for rel in sorted(set(a.entries) | set(b.entries)):
        x, y = a.entries.get(rel), b.entries.get(rel)
        if x != y:
            name = rel or "/"
            if x is None or y is None:
                out.append(f"{name}: only in {labels[0] if y is None else labels[1]}")
                continue
            fields = [f for f in vars(x) if getattr(x, f) != getattr(y, f)]
            out += [f"{name}: {f}: {labels[0]}={getattr(x, f)!r} {labels[1]}={getattr(y, f)!r}"
                    for f in fields]  # fmt: skip
    return out
