"""procfs, the files people read to see what is mounted (fs/proc/, fs/proc_namespace.c).

Only the mount-related corner: ``/proc/mounts`` (a symlink to ``self/mounts``),
``/proc/self/mounts``, ``/proc/self/mountinfo`` and ``/proc/filesystems``. Their text is made
when the file is opened, for the process that opens it, as the kernel's seq files are: a
chrooted process (a container) sees only the mounts below its root, with paths relative to it.
The line formats follow Linux 6.18 as measured on a real overlay mount (see
``tests/vfs/test_procfs.py``): the mount's own flags (``relatime``, ``nosuid``...) in
mountinfo's sixth field, the superblock's (``rw``, ``sync``..., then the filesystem's own
options) after the ``-``; spaces, tabs, newlines and backslashes in paths as ``\\ooo``.
``/proc/self`` is a directory here, not a link to the reader's pid (processes have no pids).
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable
from typing import TYPE_CHECKING

from overlaysim.vfs import fstypes
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import DT_DIR, DT_LNK, DT_REG, FileData, Node, fserr
from overlaysim.vfs.superblock import SuperBlock

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import HostFS, Process
    from overlaysim.vfs.task import Task

#: proc's device: an early anonymous number (0:21 on the machine we measure), below the
#: minors overlaysim hands out (from 30), so it never collides and survives a save and load
PROC_DEV = os.makedev(0, 21)
PROC_SUPER_MAGIC = 0x9FA0
#: the flags a distribution's fstab and runc's spec mount proc with
PROC_FLAGS = "nosuid,nodev,noexec"

# show_mnt_opts / show_sb_opts (fs/proc_namespace.c): which words are per-mount flags and
# which belong to the superblock; everything after them is the filesystem's own options
MNT_FLAGS = ("nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "nosymfollow")
SB_FLAGS = ("sync", "dirsync", "mand", "lazytime")
#: filesystems that need a block device (no "nodev" in /proc/filesystems)
BLOCK_TYPES = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "squashfs", "erofs",
                         "fuseblk", "iso9660"})  # fmt: skip

Render = Callable[["Task", "HostFS"], str]


def mangle(text: str) -> str:
    """seq_escape with " \\t\\n\\\\": what the kernel does to paths and sources in these files."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


def split_options(options: str) -> tuple[str, list[str], list[str], list[str]]:
    """(rw or ro, mount flags, superblock flags, filesystem options) of a ``/proc/mounts``
    options field (how overlaysim keeps a mount's options)."""
    words = [w for w in options.split(",") if w]
    rw = words[0] if words and words[0] in ("rw", "ro") else "rw"
    rest = words[1:] if words and words[0] in ("rw", "ro") else words
    mnt = [w for w in MNT_FLAGS if w in rest]
    sb = [w for w in SB_FLAGS if w in rest]
    fs = [w for w in rest if w not in MNT_FLAGS and w not in SB_FLAGS]
    return rw, mnt, sb, fs


def visible(task: Task, fs: HostFS) -> list[tuple[Mount, str]]:
    """The mounts ``task`` can reach from its root and their paths, in mount order (a mount
    outside a chroot is skipped, as seq_path_root does)."""
    out = []
    for m in fs.mount_table.order:
        path = _reach(task, m)
        if path is not None:
            out.append((m, path))
    return out


def _reach(task: Task, m: Mount) -> str | None:
    rmnt, rnode = task.root
    parts: list[str] = []
    mnt: Mount = m
    node: Node = m.root
    while not (node is rnode and mnt is rmnt):
        if node is mnt.root:
            up, mp = mnt.parent, mnt.mountpoint
            if up is None or mp is None:
                return None
            mnt, node = up, mp
            continue
        parts.append(_name_in(node.parent, node))
        node = node.parent
    return "/" + "/".join(reversed(parts))


def _name_in(parent: Node, node: Node) -> str:
    """d_path's name of ``node`` in ``parent`` (sys_dir has one too; this module sits below
    the syscalls, which import it to open /proc files)."""
    for name in parent.iter_names():
        if parent.lookup(name) is node:
            return name
    raise fserr(errno.ENOENT)


def mounts_text(task: Task, fs: HostFS) -> str:
    """/proc/self/mounts: device, mountpoint, type, rw/ro + sb flags + mount flags + options."""
    lines = []
    for m, path in visible(task, fs):
        rw, mnt, sb, opts = split_options(m.options)
        fields = ",".join([rw, *sb, *mnt, *opts])
        lines.append(f"{mangle(m.source or 'none')} {mangle(path)} {mangle(m.fstype)} {fields} 0 0\n")
    return "".join(lines)


def mountinfo_text(task: Task, fs: HostFS) -> str:
    """/proc/self/mountinfo: ids, device, root, mountpoint, mount options, no optional fields
    (every mount is private here), then type, source and superblock options.

    The mount's own flags say ``rw``: overlaysim's mount(2) takes no MS_RDONLY, and a
    read-only filesystem (``ro`` among the options, an overlay without upper dir) is read-only
    in its superblock only, as the kernel shows for mount(2) with ``ro`` in the data string."""
    lines = []
    for m, path in visible(task, fs):
        rw, mnt, sb, opts = split_options(m.options)
        parent = m.parent.id if m.parent is not None else m.id
        dev = m.root.sb.dev
        sb_rw = "ro" if rw == "ro" or m.root.sb.rdonly else "rw"
        lines.append(
            f"{m.id} {parent} {os.major(dev)}:{os.minor(dev)} / {mangle(path)} "
            f"{','.join(['rw', *mnt])} - {mangle(m.fstype)} {mangle(m.source or 'none')} "
            f"{','.join([sb_rw, *sb, *opts])}\n"
        )
    return "".join(lines)


def filesystems_text(task: Task, fs: HostFS) -> str:
    """/proc/filesystems: every registered type, "nodev" unless it needs a block device."""
    return "".join(f"{'' if t in BLOCK_TYPES else 'nodev'}\t{t}\n" for t in fstypes.filesystems())


class ProcNode(Node):
    """A /proc entry: a fixed directory, a symlink, or a file whose text is made per open."""

    __slots__ = ("entries", "ftype", "gid", "ino", "machine", "mode", "mounted", "parent",
                 "render", "sb", "target", "time", "uid", "wr_errno")  # fmt: skip

    def __init__(self, machine: HostFS, sb: SuperBlock, mode: int,
                 parent: ProcNode | None = None) -> None:  # fmt: skip
        self.machine = machine  # whose mount table the files describe
        self.sb = sb
        self.mode = mode
        self.ftype = mode & 0o170000
        self.uid = self.gid = 0
        self.ino = sb.new_ino()
        self.mounted = 0
        self.parent = parent or self
        self.entries: dict[str, ProcNode] = {}
        self.target = ""
        self.render: Render | None = None
        self.wr_errno = errno.EINVAL
        self.time = sb.clock()

    def add(self, name: str, mode: int) -> ProcNode:
        child = ProcNode(self.machine, self.sb, mode, self)
        self.entries[name] = child
        return child

    def lookup(self, name: str) -> Node | None:
        if self.ftype != st.S_IFDIR:
            raise fserr(errno.ENOTDIR)
        if name == "..":
            return self.parent
        return self.entries.get(name)

    def readdir(self) -> list[tuple[str, int, int]]:
        if self.ftype != st.S_IFDIR:
            raise fserr(errno.ENOTDIR)
        kinds = {st.S_IFDIR: DT_DIR, st.S_IFLNK: DT_LNK}
        return [(n, kinds.get(c.ftype, DT_REG), c.ino) for n, c in self.entries.items()]

    def stat(self) -> os.stat_result:
        nlink = 2 + sum(c.ftype == st.S_IFDIR for c in self.entries.values()) \
            if self.ftype == st.S_IFDIR else 1  # fmt: skip
        size = len(self.target) if self.ftype == st.S_IFLNK else 0
        t = self.time
        return os.stat_result((self.mode, self.ino, self.sb.dev, nlink, self.uid, self.gid, size,
                               t // 10**9, t // 10**9, t // 10**9, t / 1e9, t / 1e9, t / 1e9,
                               t, t, t, 1024, 0, 0))  # fmt: skip

    def readlink(self) -> str:
        if self.ftype != st.S_IFLNK:
            raise fserr(errno.EINVAL)
        return self.target

    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None, atime: int | None = None,
                mtime: int | None = None) -> None:  # fmt: skip
        """proc_setattr: mode and owner change in memory (root may chmod /proc files); a size
        change is accepted and ignored (``> /proc/mounts`` opens, then the write fails)."""
        if mode is not None:
            self.mode = self.ftype | (mode & 0o7777)
        if uid is not None:
            self.uid = uid
        if gid is not None:
            self.gid = gid
        self.time = self.sb.clock()

    def create(self, name: str, mode: int, uid: int, gid: int, rdev: int) -> Node:
        raise fserr(errno.ENOENT)

    def mkdir(self, name: str, mode: int, uid: int, gid: int) -> Node:
        raise fserr(errno.ENOENT)

    def symlink(self, name: str, target: str, uid: int, gid: int) -> Node:
        raise fserr(errno.ENOENT)

    def link(self, name: str, node: Node) -> Node:
        raise fserr(errno.EPERM)

    def unlink(self, name: str, node: Node) -> None:
        raise fserr(errno.EPERM)

    def rmdir(self, name: str, node: Node) -> None:
        raise fserr(errno.EPERM)

    def rename(self, name: str, node: Node, newdir: Node, newname: str, flags: int) -> None:
        raise fserr(errno.EPERM)

    def open_data(self, flags: int) -> FileData:
        """Without a reader (an internal open): the text as the first process sees it."""
        return self.open_for(None, flags)

    def open_for(self, task: Task | None, flags: int) -> FileData:
        """The VFS's open for files whose content depends on who opens them."""
        if self.render is None:
            raise fserr(errno.ENXIO)
        reader = task if task is not None else self.machine.task
        text = self.render(reader, self.machine)
        return Snapshot(self, text.encode("utf-8", "surrogateescape"))


class Snapshot(FileData):
    """An open /proc file: the text made at open (reads see one consistent table)."""

    __slots__ = ("data", "owner")

    def __init__(self, owner: ProcNode, data: bytes) -> None:
        self.owner = owner
        self.data = data

    def read(self, pos: int, n: int) -> bytes:
        return self.data[pos : pos + n]

    def write(self, pos: int, data: bytes) -> int:
        raise fserr(self.owner.wr_errno)

    def size(self) -> int:
        return 0  # as stat shows: seq files have no size

    def truncate(self, length: int) -> None:
        """O_TRUNC on a /proc file is accepted and changes nothing."""

    def node(self) -> Node:
        return self.owner


def new_proc_root(fs: HostFS) -> ProcNode:
    """The tree: mounts -> self/mounts, self/{mounts,mountinfo}, filesystems."""
    sb = SuperBlock("proc", fs.clock, dev=PROC_DEV)
    sb.magic = PROC_SUPER_MAGIC
    root = ProcNode(fs, sb, st.S_IFDIR | 0o555)
    self_dir = root.add("self", st.S_IFDIR | 0o555)
    for name, render in (("mounts", mounts_text), ("mountinfo", mountinfo_text)):
        self_dir.add(name, st.S_IFREG | 0o444).render = render
    link = root.add("mounts", st.S_IFLNK | 0o777)
    link.target = "self/mounts"
    files = root.add("filesystems", st.S_IFREG | 0o444)
    files.render, files.wr_errno = filesystems_text, errno.EIO
    return root


def mount_proc(proc: Process, source: str, data: str, target: str) -> Mount:
    """``mount -t proc proc /proc -o nosuid,nodev,noexec`` (registered by hostfs): ro/rw and the mount flags given,
    ``relatime`` unless ``noatime``; other options (hidepid, subset...) are not modelled and
    refused with EINVAL rather than ignored."""
    words = [w for w in data.split(",") if w]
    if any(w not in ("rw", "ro", *MNT_FLAGS) for w in words):
        raise fserr(errno.EINVAL)
    ro = "ro" in words
    flags = [w for w in MNT_FLAGS if w in words or (w == "relatime" and "noatime" not in words)]
    options = ",".join(["ro" if ro else "rw", *flags])
    mnt = Mount(new_proc_root(proc.fs), source or "proc", "proc", options, None, None)
    mnt.rdonly = ro
    return mnt

