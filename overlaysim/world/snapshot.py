"""A HostFS as plain rows: what a world file stores, captured from the live objects.

Why rows and not pickle: a world file comes from the user's disk and may be hostile; rows of
integers, strings and bytes cannot run code when read back. The rows follow the in-memory
layout one to one (superblocks, inodes, directory entries in insertion order, xattrs in
insertion order, copy-on-write data blobs stored once however many inodes share them, mounts
in mount order), so that a loaded machine is indistinguishable from the saved one: same
inode numbers, devices, times, link counts, listing order and mount table.

Overlay mounts are saved as their options plus the identity of their layer directories and
the few counters of the mount itself; the rest of an overlay's state lives in the layers
(xattrs, whiteouts) and is derived again on lookup, exactly as the kernel derives it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import WorldError
from overlaysim.overlay.inode import OvlInode
from overlaysim.overlay.super import OvlFS
from overlaysim.vfs.hostfs import HostFS
from overlaysim.vfs.memfs import Blob, MemInode
from overlaysim.vfs.mount import Mount, peek_mount_id
from overlaysim.vfs.node import Node
from overlaysim.vfs.procfs import ProcNode
from overlaysim.vfs.superblock import StepClock, SuperBlock, peek_anon_minor, wall_clock
from overlaysim.world.clock import TodayClock

_S_IFMT = 0o170000
_S_IFDIR = 0o040000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000

# Row shapes (the column order of the tables in ``store``).
SbRow = tuple[int, str, int, int, int, int]  # id, fstype, dev, next_ino, magic, rdonly
BlobRow = tuple[int, Any, str | None]  # id, data (bytes-like), pages (JSON list) or None
# id, sb, ino, mode, uid, gid, rdev, atime, mtime, ctime, nlink, target, blob, parent
InodeRow = tuple[int, int, int, int, int, int, int, int, int, int, int, bytes | None,
                 int | None, int | None]  # fmt: skip
DentryRow = tuple[int, int, bytes, int]  # dir, pos, name, inode
XattrRow = tuple[int, int, bytes, bytes]  # inode, pos, name, value
# pos, id, source, fstype, options, data, rdonly, root, parent_pos, mp_inode, mp_path, overlay
MountRow = tuple[int, int, bytes, str, bytes, bytes, int, int | None, int | None, int | None,
                 str | None, str | None]  # fmt: skip


def enc(text: str) -> bytes:
    """Names are bytes on Linux: keep undecodable bytes (surrogateescape) exactly."""
    return text.encode("utf-8", "surrogateescape")


def dec(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@dataclass
class Snapshot:
    """Everything a world file holds, table by table."""

    superblocks: list[SbRow] = field(default_factory=list)
    blobs: list[BlobRow] = field(default_factory=list)
    inodes: list[InodeRow] = field(default_factory=list)
    dentries: list[DentryRow] = field(default_factory=list)
    xattrs: list[XattrRow] = field(default_factory=list)
    mounts: list[MountRow] = field(default_factory=list)
    #: the world's event log (:mod:`overlaysim.world.eventlog`), oldest first
    events: list[Any] = field(default_factory=list)
    #: clock, id counters, seed, the world's JSON meta: key -> JSON text
    state: dict[str, str] = field(default_factory=dict)


def clock_state(fs: HostFS) -> dict[str, Any]:
    clock = fs.clock
    if isinstance(clock, StepClock):
        state: dict[str, Any] = {"kind": "step", "now": clock.now, "step": clock.step}
        if isinstance(clock, TodayClock):
            state["today"] = True  # catches up with the host's time when loaded
        return state
    if clock is wall_clock:
        return {"kind": "wall"}
    raise WorldError(
        f"cannot save a machine whose clock is {clock!r}: only StepClock and the wall clock "
        "can be saved"
    )


class _Capture:
    def __init__(self, fs: HostFS) -> None:
        self.fs = fs
        self.snap = Snapshot()
        self.ids: dict[int, int] = {}  # id(MemInode) -> row id
        self.todo: list[MemInode] = []
        self.sb_ids: dict[int, int] = {}  # id(SuperBlock) -> row id
        self.blob_ids: dict[int, int] = {}  # id(Blob) -> row id
        self.mount_pos: dict[int, int] = {}  # id(Mount) -> position in mount order
        self.ofs_pos: dict[int, int] = {}  # id(OvlFS) -> position of its mount

    # --- inodes ----------------------------------------------------------------------------
    def inode(self, node: Node) -> int:
        if not isinstance(node, MemInode):
            raise WorldError(f"cannot save an inode of type {type(node).__name__}")
        key = id(node)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.ids) + 1
            self.todo.append(node)
        return found

    def sb(self, sb: SuperBlock) -> int:
        key = id(sb)
        found = self.sb_ids.get(key)
        if found is None:
            found = self.sb_ids[key] = len(self.sb_ids) + 1
            self.snap.superblocks.append(
                (found, sb.fstype, sb.dev, sb.next_ino, sb.magic, int(sb.rdonly))
            )
        return found

    def blob(self, blob: Blob) -> int:
        key = id(blob)
        found = self.blob_ids.get(key)
        if found is None:
            found = self.blob_ids[key] = len(self.blob_ids) + 1
            pages = None if blob.pages is None else json.dumps(sorted(blob.pages))
            self.snap.blobs.append((found, blob.buf, pages))
        return found

    def drain(self) -> None:
        """Write every queued inode and queue what it reaches (entries, a directory's parent)."""
        snap = self.snap
        inodes, dentries, xattrs = snap.inodes, snap.dentries, snap.xattrs
        ids, todo = self.ids, self.todo
        while todo:
            node = todo.pop()
            nid = ids[id(node)]
            ftype = node.mode & _S_IFMT
            blob_id = parent_id = None
            target = None
            if ftype == _S_IFDIR:
                for pos, (name, child) in enumerate(node.entries.items()):
                    cid = ids.get(id(child))
                    if cid is None:
                        cid = self.inode(child)
                    dentries.append((nid, pos, enc(name), cid))
                parent_id = self.inode(node.parent)
            elif ftype == _S_IFREG:
                blob_id = self.blob(node.blob)
            elif ftype == _S_IFLNK:
                target = enc(node.target)
            if node.xattrs:
                for pos, (name, value) in enumerate(node.xattrs.items()):
                    xattrs.append((nid, pos, enc(name), value))
            inodes.append((
                nid, self.sb(node.sb), node.ino, node.mode, node.uid, node.gid, node.rdev,
                node.atime, node.mtime, node.ctime, node.nlink, target, blob_id, parent_id,
            ))  # fmt: skip

    # --- mounts ----------------------------------------------------------------------------
    def layer_ref(self, node: Node) -> dict[str, Any]:
        """A layer or mountpoint directory: an inode row, or a path inside an overlay mount."""
        if isinstance(node, OvlInode):
            pos = self.ofs_pos.get(id(node.ofs))
            if pos is None:
                raise WorldError(
                    f"cannot save: a layer or mountpoint lies in an overlay that is no longer "
                    f"mounted ({node.ofs.mount_path})"
                )
            return {"mount": pos, "path": _ovl_path(node)}
        return {"inode": self.inode(node)}

    def mount(self, pos: int, m: Mount) -> None:
        self.mount_pos[id(m)] = pos
        root_id = overlay = None
        if isinstance(m.private, OvlFS):
            overlay = json.dumps(self.overlay_state(m.private))
            self.ofs_pos[id(m.private)] = pos
        elif isinstance(m.root, MemInode):
            root_id = self.inode(m.root)
        elif isinstance(m.root, ProcNode):
            pass  # procfs keeps nothing: its files are made from the mount table when read
        else:
            raise WorldError(f"cannot save a {m.fstype} mount of type {type(m.root).__name__}")
        parent_pos = mp_inode = mp_path = None
        if m.parent is not None and m.mountpoint is not None:
            parent_pos = self.mount_pos.get(id(m.parent))
            if parent_pos is None:
                raise WorldError(f"cannot save: the mount table is inconsistent at {m.source}")
            ref = self.layer_ref(m.mountpoint)
            mp_inode = ref.get("inode")
            mp_path = json.dumps(ref["path"]) if "path" in ref else None
        self.snap.mounts.append((
            pos, m.id, enc(m.source), m.fstype, enc(m.options), enc(m.data), int(m.rdonly),
            root_id, parent_pos, mp_inode, mp_path, overlay,
        ))  # fmt: skip

    def overlay_state(self, ofs: OvlFS) -> dict[str, Any]:
        lowers = [self.layer_ref(n) for n in ofs.lower_roots]
        upper = None if ofs.upper_root is None else self.layer_ref(ofs.upper_root)
        # pseudo st_dev per layer filesystem (layers on several filesystems), keyed like the
        # layer roots: a superblock row, or the position of an overlay mount used as a layer
        keys: dict[int, list[Any]] = {}
        for layer in [*ofs.lower_roots, ofs.upper_root]:
            if isinstance(layer, MemInode):
                keys[id(layer.sb)] = ["sb", self.sb(layer.sb)]
            elif isinstance(layer, OvlInode):
                keys[id(layer.ofs.sb)] = ["mount", self.ofs_pos[id(layer.ofs)]]
        pseudo = [[*keys[k], dev] for k, dev in ofs._pseudo_devs.items() if k in keys]
        return {
            "mount_path": ofs.mount_path,
            "same_fs": ofs.same_fs,
            "lowers": lowers,
            "upper": upper,
            "workdir": None if ofs.workdir is None else self.layer_ref(ofs.workdir),
            "work": None if ofs.work is None else self.inode(ofs.work),
            "master": None if ofs._master is None else self.inode(ofs._master),
            "tmp_counter": ofs._tmp_counter,
            "dev": ofs.sb.dev,
            "next_ino": ofs.sb.next_ino,
            "rdonly": ofs.sb.rdonly,
            "pseudo_devs": pseudo,
        }


def _ovl_path(node: OvlInode) -> list[str]:
    parts: list[str] = []
    cur: OvlInode = node
    while cur.parent is not cur:
        parts.append(cur.name)
        parent = cur.parent
        assert isinstance(parent, OvlInode)
        cur = parent
    return parts[::-1]


def capture(fs: HostFS) -> Snapshot:
    """Rows for every inode reachable from a mount, a layer or a mountpoint of ``fs``."""
    cap = _Capture(fs)
    for pos, m in enumerate(fs.mount_table.order):
        cap.mount(pos, m)
    cap.drain()
    cap.snap.state["clock"] = json.dumps(clock_state(fs))
    cap.snap.state["counters"] = json.dumps(
        {"anon_minor": peek_anon_minor(), "mount_id": peek_mount_id()}
    )
    return cap.snap


def sizes(snap: Snapshot) -> dict[str, int]:
    """Counts for ``world info``: inodes, bytes of file data (shared blobs counted once)."""
    return {
        "inodes": len(snap.inodes),
        "data_bytes": sum(len(b[1]) for b in snap.blobs),
        "mounts": len(snap.mounts),
    }
