"""Mounting an overlay on HostFS (fs/overlayfs/super.c): layers, workdir, uuid, root inode.

Options are parsed and validated by ``params`` exactly as the kernel does; this module resolves
the layer paths in HostFS, prepares ``work/work`` (emptied and recreated with mode 0000 at every
mount, which is why old whiteouts lose one link), writes the upper root's ``uuid`` on a new
overlay, sets up W/index for index=on (see ``index``), and refuses features the simulator does
not reproduce yet (verity), rather than silently behaving differently. Data-only layers are
not in the root's stack. ``export`` says which file handles the mount gives (see export.py).
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING

from overlaysim.events import Event
from overlaysim.overlay import fh, index
from overlaysim.overlay.index import OvlIndex
from overlaysim.overlay.inode import OvlInode
from overlaysim.overlay.layers import LayerPlan, LayerRef, validate_mount
from overlaysim.overlay.xino import Xino, ino_dev
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import Node
from overlaysim.vfs.passthrough import PassNode
from overlaysim.vfs.superblock import SuperBlock

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import Process

OVERLAYFS_SUPER_MAGIC = 0x794C7630
NOT_SIMULATED: dict[str, str] = {}


class HostResolver:
    """params.LayerResolver over HostFS: layer identity is the inode object itself."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.nodes: dict[int, tuple[Mount, Node]] = {}

    def resolve(self, path: str) -> LayerRef:
        mnt, node = self.proc.os._resolve(path)
        self.nodes[id(node)] = (mnt, node)
        ancestors: list[Hashable] = []
        cur = node
        while cur.parent is not cur:
            cur = cur.parent
            ancestors.append(cur)
        work = self._volatile_dirty(node)
        return LayerRef(
            inode=node, is_dir=node.mode & 0o170000 == st.S_IFDIR, fs=id(node.sb),
            mount=mnt.id, read_only_mount=mnt.rdonly, ancestors=tuple(ancestors),
            stack_depth=1 if node.sb.fstype == "overlay" else 0, incompat_volatile=work,
            fs_uuid=node.sb.uuid if isinstance(node, (MemInode, PassNode)) else None,
        )  # fmt: skip

    @staticmethod
    def _volatile_dirty(node: Node) -> bool:
        cur: Node | None = node
        for c in ("work", "incompat", "volatile"):
            if cur is None or cur.mode & 0o170000 != st.S_IFDIR:
                return False
            cur = cur.lookup(c)
        return cur is not None

    def in_use(self, inode: Hashable) -> bool:
        for m in self.proc.fs.mount_table.order:
            ofs = m.private
            if isinstance(ofs, OvlFS) and inode in (ofs.upper_root, ofs.workdir):
                return True
        return False


class OvlFS:
    """One mounted overlay (struct ovl_fs)."""

    def __init__(self, proc: Process, plan: LayerPlan, mount_path: str, lowers: list[Node],
                 upper: Node | None, workdir: Node | None) -> None:  # fmt: skip
        self.proc = proc
        self.params = plan.params
        self.same_fs = plan.same_fs
        self.prefix = plan.params.xattr_prefix
        self.mount_path = mount_path
        self.lower_roots = lowers  # every lower layer, data-only ones last
        n_data = sum(layer.is_data_only for layer in plan.params.lowers)
        layers = list(enumerate(lowers))
        # the root merges only the regular lower layers; data-only ones are reached only
        # through the absolute redirect of a metacopy file (ovl_lookup_data_layers)
        self.merged_roots = layers[: len(layers) - n_data]
        self.data_roots = layers[len(layers) - n_data :]
        self.xwhiteout_layers: set[int] = set()  # layers where lookup met an opaque="x" dir
        self.upper_root = upper
        self.workdir = workdir
        # index=on: W/index (also the work dir then); found again when a saved world reloads
        self.index: OvlIndex | None = None
        if plan.params.index and upper is not None and workdir is not None:
            found = workdir.lookup("index")
            if found is not None and found.mode & 0o170000 == st.S_IFDIR:
                self.index = OvlIndex(self, found)
        self.handles = fh.Decoder()  # origin handles -> lower inodes
        self.origin_uuid = plan.params.uuid != "off"  # uuid=off: null uuids in handles
        self.work: Node | None = None
        self.sb = SuperBlock("overlay", proc.fs.clock)
        self.sb.magic = OVERLAYFS_SUPER_MAGIC
        self._master: Node | None = None
        self._pseudo_devs: dict[int, int] = {}
        self._tmp_counter = 0x40
        # s_export_op: "nfs" (nfs_export: handles that decode), "fid" (encode only, for
        # AT_HANDLE_FID), "" (a layer fs without handles: none at all)
        self.export = ""
        # st_ino/st_dev across layer filesystems: fsids, xino bits (see overlay/xino.py)
        self.xino = Xino(lowers, upper, plan.params.xino,
                         [layer.is_data_only for layer in plan.params.lowers])  # fmt: skip

    def emit(self, event: Event) -> None:
        self.proc.fs.events.emit(event)

    def temp_name(self) -> str:
        self._tmp_counter += 1
        return f"#{self._tmp_counter:x}"

    def whiteout_master(self) -> Node:
        """The mount's shared whiteout inode, created in work/work on first use."""
        if self._master is None:
            assert self.work is not None
            self._master = self.work.create(self.temp_name(), st.S_IFCHR, 0, 0, 0)
        return self._master

    def st_dev(self, ino: OvlInode) -> int:
        """The st_dev stat shows for ``ino`` (see overlay/xino.py)."""
        return self.sb.dev if self.xino.mode == 0 else ino_dev(ino)[1]

    def on_umount(self) -> None:
        self.emit(Event("umount", self.mount_path, self.mount_path))


def mount_overlay(proc: Process, source: str, data: str, target: str = "") -> Mount:
    resolver = HostResolver(proc)
    plan = validate_mount(data, resolver)
    p = plan.params
    for key, what in NOT_SIMULATED.items():
        if getattr(p, key):
            raise OSError(errno.EOPNOTSUPP, f"overlaysim does not simulate {what} yet")
    if p.verity != "off":
        # fs-verity digests (of metacopy files and their data) are not simulated
        raise OSError(errno.EOPNOTSUPP, "overlaysim does not simulate verity yet")
    lowers = [_node(ref) for ref in plan.lowers]
    upper = _node(plan.upper) if plan.upper is not None else None
    workdir = _node(plan.work) if plan.work is not None else None
    for layer in (upper, workdir):
        if layer is not None and not isinstance(layer, (MemInode, PassNode)):  # real dirs: hostdir
            # As Linux: an overlay (or any fs without tmpfile/xattr support) cannot be the upper.
            raise OSError(errno.EINVAL, "filesystem on upperdir/workdir not supported")
    if (p.index and upper is not None) or p.nfs_export:
        plan = _handles_or_no_index(plan, lowers)
        p = plan.params
    mount_path = proc.os.path.abspath(target) if target else "?"
    ofs = OvlFS(proc, plan, mount_path, lowers, upper, workdir)
    has_uuid = impure = False
    if upper is not None and workdir is not None:
        # as Linux 6.18, also for a "ro" mount: work dir, uuid and index are prepared
        _prepare_work(ofs, workdir)
        has_uuid = _has(upper, ofs.prefix + "uuid")
        impure = _has(upper, ofs.prefix + "impure")
        settled = p.settle(same_fs=plan.same_fs, numfs=plan.numfs, upper_has_uuid=has_uuid,
                           upper_impure=impure)  # fmt: skip
        if settled.uuid == "on" and not has_uuid:
            upper.setxattr(ofs.prefix + "uuid", os.urandom(16), 0)
        ofs.origin_uuid = settled.uuid != "off"
        ofs.index = None
        if settled.index:
            ofs.index = index.setup(ofs, upper, workdir, _pd2(p.upper or ""))
            ofs.work = ofs.index.dir  # "index dir will act also as workdir"
    if p.read_only:
        ofs.sb.rdonly = True
    layers_fh = all(fh.can_encode(n) for n in [*lowers, *([upper] if upper is not None else [])])
    if p.nfs_export and (upper is None or ofs.index is not None):
        ofs.export = "nfs"
    elif layers_fh:
        ofs.export = "fid"
    root = OvlInode(ofs, None, "", upper, list(ofs.merged_roots))
    if ofs.xino.mode:
        ino_dev(root)  # the root's non-persistent number, if it needs one, is the first (2)
    sb_opts = plan.mount_options(upper_has_uuid=has_uuid, upper_impure=impure)
    rw, _, rest = sb_opts.partition(",")
    options = f"{rw},relatime,{rest}" if rest else f"{rw},relatime"  # as /proc/self/mounts shows
    mnt = Mount(root, source, "overlay", options, None, None, private=ofs)
    mnt.rdonly = ofs.sb.rdonly
    ofs.emit(Event("mount", mount_path, mount_path, "", {"options": options}))
    return mnt


def _handles_or_no_index(plan: LayerPlan, lowers: list[Node]) -> LayerPlan:
    """ovl_lower_dir(): a lower fs without file handles (an overlay without nfs_export)
    turns the index off, with the kernel's note."""
    p = plan.params
    for layer, node in zip(p.lowers, lowers, strict=True):
        if not fh.can_encode(node):
            note = (f"overlayfs: fs on '{layer.path}' does not support file handles, falling "
                    "back to index=off,nfs_export=off.")  # fmt: skip
            q = replace(p, index=False, nfs_export=False, notes=(*p.notes, note))
            return replace(plan, params=q, notes=(*plan.notes, note))
    return plan


def _pd2(path: str) -> str:
    """The kernel's %pd2 of a layer dir: its parent's name and its own."""
    parts = [x for x in path.split("/") if x]
    return "/".join(parts[-2:]) or "/"


def _node(ref: LayerRef) -> Node:
    node = ref.inode
    assert isinstance(node, Node)
    return node


def _has(node: Node, name: str) -> bool:
    try:
        node.getxattr(name)
    except OSError:
        return False
    return True


def _prepare_work(ofs: OvlFS, workdir: Node) -> None:
    """Empty and recreate W/work (mode 0000); leave the volatile marker when asked."""
    old = workdir.lookup("work")
    if old is not None:
        index.remove_tree(workdir, "work", old)
    work = workdir.mkdir("work", 0, 0, 0)
    ofs.work = work
    if ofs.params.volatile:
        inc = work.mkdir("incompat", 0, 0, 0)  # ovl_lookup_or_create: no permission bits
        vol = inc.mkdir("volatile", 0, 0, 0)
        vol.create("dirty", st.S_IFREG, 0, 0, 0)
