"""Rows back into a live HostFS, trusting nothing: a world file may be corrupt or hostile.

Every value is type-checked and every reference resolved before it is used; a directory may
have one name only, a name must be a valid path component, and every directory's parent
chain must end at a filesystem root, so that a crafted file can neither crash a later walk
nor make one loop forever. Any violation is a ``WorldError``, never a half-built machine.

Overlay mounts come back without being mounted again: a real ``mount`` would empty
``work/work`` (taking a link from every whiteout) and write the upper's ``uuid``, changing
the saved state. The mount is re-attached over the same layer inodes with its saved device,
counters and whiteout master, and its options string as ``/proc/self/mounts`` showed it.
"""

from __future__ import annotations

import json
import stat as st
from typing import Any

from overlaysim.errors import WorldError
from overlaysim.overlay.inode import OvlInode
from overlaysim.overlay.layers import LayerPlan, parse_options
from overlaysim.overlay.super import OvlFS
from overlaysim.vfs.hostfs import HostFS
from overlaysim.vfs.memfs import Blob, MemInode
from overlaysim.vfs.mount import Mount, skip_mount_ids
from overlaysim.vfs.node import Node
from overlaysim.vfs.procfs import new_proc_root
from overlaysim.vfs.superblock import StepClock, SuperBlock, skip_anon_minors, wall_clock
from overlaysim.world.clock import TodayClock
from overlaysim.world.snapshot import MountRow, Snapshot, dec

_S_IFMT = 0o170000
_FTYPES = {st.S_IFDIR, st.S_IFREG, st.S_IFLNK, st.S_IFCHR, st.S_IFBLK, st.S_IFIFO, st.S_IFSOCK}
#: The MemInode slots this module fills in; a test fails if memfs grows a new one.
MEMINODE_SLOTS = frozenset({
    "atime", "blob", "ctime", "entries", "ftype", "gid", "ino", "mode", "mounted", "mtime",
    "nlink", "parent", "rdev", "sb", "stc", "target", "uid", "xattrs",
})  # fmt: skip


class Corrupt(Exception):
    """Internal: what is wrong, turned into a WorldError naming the file by the caller."""


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        raise Corrupt(f"{what} is not an integer")
    return value


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise Corrupt(f"{what} is not a blob")
    return value


def _opt_int(value: object, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _name(raw: object) -> str:
    b = _bytes(raw, "a file name")
    if not b or len(b) > 255 or b"/" in b or b"\0" in b or b in (b".", b".."):
        raise Corrupt(f"invalid file name {b[:64]!r}")
    return dec(b)


def _json(text: object, what: str) -> Any:
    if not isinstance(text, str):
        raise Corrupt(f"{what} is missing")
    try:
        return json.loads(text)
    except ValueError:
        raise Corrupt(f"{what} is not valid JSON") from None


def make_clock(state: Any) -> Any:
    if not isinstance(state, dict):
        raise Corrupt("the clock state is not an object")
    if state.get("kind") == "wall":
        return wall_clock
    if state.get("kind") == "step":
        kind = TodayClock if state.get("today") is True else StepClock
        return kind(_int(state.get("now"), "clock.now"), _int(state.get("step"), "clock.step"))
    raise Corrupt("unknown clock kind")


class _Rebuild:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.clock = make_clock(_json(snap.state.get("clock"), "the clock state"))
        self.clock_now = self.clock.now if isinstance(self.clock, StepClock) else 0
        self.fs = HostFS(self.clock)
        self.sbs: dict[int, SuperBlock] = {}
        self.blobs: dict[int, Blob] = {}
        self.nodes: dict[int, MemInode] = {}
        self.mounts: list[Mount] = []

    def run(self) -> HostFS:
        self.superblocks()
        self.data()
        self.inodes()
        self.tree()
        self.xattrs()
        self.mount_table()
        counters = _json(self.snap.state.get("counters"), "the id counters")
        if not isinstance(counters, dict):
            raise Corrupt("the id counters are not an object")
        skip_anon_minors(_int(counters.get("anon_minor"), "the device counter"))
        skip_mount_ids(_int(counters.get("mount_id"), "the mount id counter"))
        if isinstance(self.clock, StepClock):  # building read the clock: wind it back
            self.clock.now = self.clock_now
        if isinstance(self.clock, TodayClock):
            self.clock.catch_up()
        return self.fs

    # --- inodes ----------------------------------------------------------------------------
    def superblocks(self) -> None:
        for sid, fstype, dev, next_ino, magic, rdonly in self.snap.superblocks:
            if not isinstance(fstype, str):
                raise Corrupt("a superblock type is not text")
            sb = SuperBlock(fstype, self.clock, dev=_int(dev, "a device number"))
            sb.next_ino = _int(next_ino, "an inode counter")
            sb.magic = _int(magic, "a superblock magic")
            sb.rdonly = bool(rdonly)
            self.sbs[_int(sid, "a superblock id")] = sb

    def data(self) -> None:
        for bid, data, pages in self.snap.blobs:
            blob = Blob(bytearray(_bytes(data, "file data")))
            blob.refs = 0
            if pages is not None:
                listed = _json(pages, "a sparse page list")
                if not isinstance(listed, list) or not all(type(p) is int for p in listed):
                    raise Corrupt("a sparse page list is not a list of integers")
                blob.pages = set(listed)
            self.blobs[_int(bid, "a blob id")] = blob

    def inodes(self) -> None:
        sbs, blobs, nodes = self.sbs, self.blobs, self.nodes
        new = MemInode.__new__
        for row in self.snap.inodes:
            nid, sb, ino, mode, uid, gid, rdev, atime, mtime, ctime, nlink, target, blob, _p = row
            for value in row[:11]:
                if type(value) is not int:
                    raise Corrupt(f"inode {nid!r} has a field that is not an integer")
            ftype = mode & _S_IFMT
            if ftype not in _FTYPES or not 0 <= mode <= 0o177777 or nid in nodes:
                raise Corrupt(f"inode {nid} has a bad mode or a duplicate id")
            node = new(MemInode)
            node.sb = sbs[sb]
            node.ino, node.mode, node.ftype, node.uid, node.gid = ino, mode, ftype, uid, gid
            node.rdev, node.atime, node.mtime, node.ctime, node.nlink = (
                rdev,
                atime,
                mtime,
                ctime,
                nlink,
            )
            node.xattrs = None
            node.stc = None  # the stat cache: derived, never saved
            node.mounted = 0
            node.parent = node
            node.target = ""
            if ftype == st.S_IFDIR:
                node.entries = {}
            elif ftype == st.S_IFREG:
                b = blobs[_int(blob, f"the data of inode {nid}")]
                b.refs += 1
                node.blob = b
            elif ftype == st.S_IFLNK:
                node.target = dec(_bytes(target, f"the target of symlink {nid}"))
            nodes[nid] = node

    def tree(self) -> None:
        nodes = self.nodes
        named_dirs: set[int] = set()
        for dir_id, _pos, raw, child_id in sorted(self.snap.dentries, key=lambda r: (r[0], r[1])):
            parent, child = nodes[dir_id], nodes[child_id]
            if parent.ftype != st.S_IFDIR:
                raise Corrupt(f"inode {dir_id} has entries but is not a directory")
            name = _name(raw)
            if name in parent.entries:
                raise Corrupt(f"directory {dir_id} lists {name!r} twice")
            if child.ftype == st.S_IFDIR:
                if child_id in named_dirs or child is parent:
                    raise Corrupt(f"directory {child_id} has more than one name")
                named_dirs.add(child_id)
            parent.entries[name] = child
        for row in self.snap.inodes:
            node = nodes[row[0]]
            if node.ftype != st.S_IFDIR:
                continue
            pid = _opt_int(row[13], "a parent id")
            parent = node if pid is None else nodes[pid]
            if parent.ftype != st.S_IFDIR:
                raise Corrupt(f"the parent of directory {row[0]} is not a directory")
            node.parent = parent
        self._check_parents()

    def _check_parents(self) -> None:
        good: set[int] = set()
        limit = len(self.nodes) + 1
        for node in self.nodes.values():
            if node.ftype != st.S_IFDIR:
                continue
            seen: list[int] = []
            cur: Node = node
            while id(cur) not in good and cur.parent is not cur:
                seen.append(id(cur))
                if len(seen) > limit:
                    raise Corrupt("directories form a cycle")
                cur = cur.parent
            good.update(seen)
            good.add(id(cur))
        for parent in self.nodes.values():
            if parent.ftype == st.S_IFDIR:
                for child in parent.entries.values():
                    if child.ftype == st.S_IFDIR and child.parent is not parent:
                        raise Corrupt("a directory's parent is not the directory that names it")

    def xattrs(self) -> None:
        nodes = self.nodes
        for nid, _pos, raw, value in sorted(self.snap.xattrs, key=lambda r: (r[0], r[1])):
            node = nodes[nid]
            if node.xattrs is None:
                node.xattrs = {}
            node.xattrs[dec(_bytes(raw, "an xattr name"))] = _bytes(value, "an xattr value")

    # --- mounts ----------------------------------------------------------------------------
    def mount_table(self) -> None:
        rows = sorted(self.snap.mounts, key=lambda r: r[0])
        if not rows or [r[0] for r in rows] != list(range(len(rows))):
            raise Corrupt("the mount table is empty or has gaps")
        fs = self.fs
        for row in rows:
            pos, mid, source, fstype, options, data, rdonly, root_id = row[:8]
            if not isinstance(fstype, str):
                raise Corrupt("a mount type is not text")
            if pos == 0:
                if fstype != "rootfs" or root_id is None or row[8] is not None:
                    raise Corrupt("the first mount is not the root filesystem")
                mnt = fs.root_mount
                mnt.root = self._dir(root_id)
                fs.task.root = fs.task.cwd = (mnt, mnt.root)
            elif row[11] is not None:
                mnt = self._overlay(row)
            elif fstype == "tmpfs" and root_id is not None:
                mnt = Mount(self._dir(root_id), "", fstype, "", None, None)
            elif fstype == "proc" and root_id is None:
                mnt = Mount(new_proc_root(fs), "", fstype, "", None, None)
            else:
                raise Corrupt(f"mount {pos} of type {fstype!r} cannot be restored")
            mnt.id = _int(mid, "a mount id")
            mnt.source = dec(_bytes(source, "a mount source"))
            mnt.fstype = fstype
            mnt.options = dec(_bytes(options, "mount options"))
            mnt.data = dec(_bytes(data, "mount data"))
            mnt.rdonly = bool(rdonly)
            if pos:
                parent_pos = _int(row[8], "a parent mount")
                if not 0 <= parent_pos < pos:
                    raise Corrupt(f"mount {pos} sits on a mount that comes after it")
                parent = self.mounts[parent_pos]
                mp = self._where(row[9], row[10], parent)
                fs.mount_table.attach(mnt, parent, mp)
            self.mounts.append(mnt)

    def _dir(self, nid: object) -> MemInode:
        node = self.nodes[_int(nid, "an inode reference")]
        if node.ftype != st.S_IFDIR:
            raise Corrupt(f"inode {nid} should be a directory")
        return node

    def _where(self, inode: object, path: object, parent: Mount) -> Node:
        if inode is not None:
            return self._dir(inode)
        return self._walk(parent, _json(path, "a mountpoint path"))

    def _walk(self, mnt: Mount, parts: Any) -> Node:
        """A directory inside an overlay mount, by its path (overlay inodes are made on lookup)."""
        if not isinstance(parts, list):
            raise Corrupt("a path inside an overlay is not a list")
        node: Node = mnt.root
        for part in parts:
            if not isinstance(part, str):
                raise Corrupt("a path inside an overlay has a bad component")
            found = node.lookup(part) if node.mode & _S_IFMT == st.S_IFDIR else None
            if found is None:
                raise Corrupt(f"a directory inside an overlay is gone: {'/'.join(parts)}")
            node = found
        if node.mode & _S_IFMT != st.S_IFDIR:
            raise Corrupt("a mountpoint or layer inside an overlay is not a directory")
        return node

    def _layer(self, ref: Any) -> Node:
        if not isinstance(ref, dict):
            raise Corrupt("a layer reference is not an object")
        if "inode" in ref:
            return self._dir(ref["inode"])
        pos = _int(ref.get("mount"), "a layer's mount")
        if not 0 <= pos < len(self.mounts) or not isinstance(self.mounts[pos].private, OvlFS):
            raise Corrupt("a layer refers to a mount that is not an earlier overlay")
        return self._walk(self.mounts[pos], ref.get("path"))

    def _overlay(self, row: MountRow) -> Mount:
        state = _json(row[11], "an overlay's state")
        if not isinstance(state, dict):
            raise Corrupt("an overlay's state is not an object")
        data = dec(_bytes(row[5], "mount data"))
        try:
            params = parse_options(data)
        except OSError as e:
            raise Corrupt(f"an overlay's options do not parse ({e.strerror})") from None
        plan = LayerPlan(params=params, lowers=(), upper=None, work=None, numfs=0,
                         same_fs=bool(state.get("same_fs")))  # fmt: skip
        raw_lowers = state.get("lowers")
        if not isinstance(raw_lowers, list) or not raw_lowers:
            raise Corrupt("an overlay has no lower layers")
        lowers = [self._layer(ref) for ref in raw_lowers]
        upper = None if state.get("upper") is None else self._layer(state["upper"])
        workdir = None if state.get("workdir") is None else self._layer(state["workdir"])
        if (upper is None) != (workdir is None):
            raise Corrupt("an overlay has an upper layer without a workdir or the reverse")
        mount_path = state.get("mount_path")
        if not isinstance(mount_path, str):
            raise Corrupt("an overlay has no mount path")
        ofs = OvlFS(self.fs, plan, mount_path, lowers, upper, workdir)
        ofs.sb.dev = _int(state.get("dev"), "an overlay device")
        ofs.sb.next_ino = _int(state.get("next_ino"), "an overlay inode counter")
        ofs.sb.rdonly = bool(state.get("rdonly"))
        work, master = state.get("work"), state.get("master")
        ofs.work = None if work is None else self._dir(work)
        ofs._master = None if master is None else self.nodes[_int(master, "a whiteout master")]
        ofs._tmp_counter = _int(state.get("tmp_counter"), "an overlay temp counter")
        ofs._pseudo_devs = self._pseudo_devs(state.get("pseudo_devs"))
        root = OvlInode(ofs, None, "", upper, list(ofs.merged_roots))  # no data-only layers
        return Mount(root, "", "overlay", "", None, None, private=ofs)

    def _pseudo_devs(self, raw: Any) -> dict[int, int]:
        if not isinstance(raw, list):
            raise Corrupt("an overlay's pseudo devices are not a list")
        out: dict[int, int] = {}
        for item in raw:
            if not isinstance(item, list) or len(item) != 3:
                raise Corrupt("an overlay's pseudo device entry is malformed")
            kind, key, dev = item
            if kind == "sb":
                out[id(self.sbs[_int(key, "a superblock id")])] = _int(dev, "a pseudo device")
            elif kind == "mount":
                ofs = self.mounts[_int(key, "a mount position")].private
                if not isinstance(ofs, OvlFS):
                    raise Corrupt("a pseudo device refers to a mount that is not an overlay")
                out[id(ofs.sb)] = _int(dev, "a pseudo device")
            else:
                raise Corrupt("an overlay's pseudo device entry has an unknown kind")
        return out


def rebuild(snap: Snapshot, where: str) -> HostFS:
    """A live HostFS from rows; ``WorldError`` naming ``where`` for anything inconsistent."""
    try:
        return _Rebuild(snap).run()
    except Corrupt as e:
        raise WorldError(f"{where}: corrupt world file: {e}") from None
    except (KeyError, IndexError) as e:
        raise WorldError(f"{where}: corrupt world file: dangling reference {e}") from None
    except (ValueError, TypeError, OverflowError, UnicodeError, OSError, RecursionError) as e:
        raise WorldError(f"{where}: corrupt world file: {type(e).__name__}: {e}") from None
