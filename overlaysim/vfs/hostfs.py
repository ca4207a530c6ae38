"""HostFS: the simulated machine's filesystem tree, with a mount table and processes."""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable
from typing import Any

from overlaysim.events import EventLog
from overlaysim.vfs import devices
from overlaysim.vfs.cred import ROOT, Cred
from overlaysim.vfs.fstypes import get_fs_type, register_filesystem
from overlaysim.vfs.memfs import new_tmpfs
from overlaysim.vfs.mount import Mount, MountEntry, MountTable
from overlaysim.vfs.node import fserr
from overlaysim.vfs.osmodule import OsModule
from overlaysim.vfs.procfs import mount_proc
from overlaysim.vfs.pyio import open_file
from overlaysim.vfs.superblock import SuperBlock, wall_clock
from overlaysim.vfs.sys_dir import path_of
from overlaysim.vfs.sysbase import named
from overlaysim.vfs.task import Task


class Process:
    """One simulated process on a HostFS: credentials, cwd, fds; ``.os`` acts as it."""

    def __init__(self, fs: HostFS, task: Task) -> None:
        self.fs = fs
        self.task = task
        self.os = OsModule(task)

    @property
    def cred(self) -> Cred:
        return self.task.cred

    def open(self, path: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
             errors: str | None = None, newline: str | None = None) -> Any:  # fmt: skip
        """Like builtins.open, on the simulated filesystem."""
        return open_file(self.os, path, mode, buffering, encoding, errors, newline)

    def mount(self, source: str, target: Any, fstype: str, data: str = "") -> None:
        """mount(2): ``fstype`` is a registered type ("tmpfs", "overlay"); ``data`` the
        option string. An unknown type is ``ENODEV``."""
        if self.task.cred.uid != 0:
            raise named(fserr(errno.EPERM), target)
        try:
            mnt, node = self.os._resolve(target)
            if node.mode & 0o170000 != st.S_IFDIR:
                raise fserr(errno.ENOTDIR)
            new = get_fs_type(fstype)(self, source, data or "", os.fsdecode(target))
            new.data = data or ""
        except OSError as e:
            raise named(e, target) from None
        self.fs.mount_table.attach(new, mnt, node)

    def umount(self, target: Any) -> None:
        if self.task.cred.uid != 0:
            raise named(fserr(errno.EPERM), target)
        try:
            mnt, node = self.os._resolve(target)
            if node is not mnt.root or mnt.parent is None:
                raise fserr(errno.EINVAL)
            if self.fs._busy(mnt):
                raise fserr(errno.EBUSY)
            self.fs.mount_table.detach(mnt)
        except OSError as e:
            raise named(e, target) from None
        hook = getattr(mnt.private, "on_umount", None)
        if hook is not None:
            hook()

    def fork(self, *, share_files: bool = False) -> Process:
        """clone(2) of this process: same credentials, root, cwd and umask; the fd table is
        shared (``CLONE_FILES``) or copied, its open file descriptions shared either way, so
        offsets move together as in Linux."""
        task = self.task.fork(self.task.cred)
        task.fds = self.task.fds if share_files else dict(self.task.fds)
        self.fs.processes.append(task)
        return Process(self.fs, task)

    def set_cred(self, uid: int, gid: int, groups: Any = ()) -> None:
        """setresuid/setresgid/setgroups in one step (the caller decides what is allowed)."""
        self.task.cred = Cred(uid, gid, frozenset(groups))

    def exit(self) -> None:
        """_exit(2): the process leaves the machine; its fds close unless another process
        still shares the table."""
        fs = self.fs
        if self.task in fs.processes:
            fs.processes.remove(self.task)
        if not any(t.fds is self.task.fds for t in fs.processes):
            for fd in list(self.task.fds):
                self.os.close(fd)

    def mounts(self) -> list[MountEntry]:
        return [
            MountEntry(m.source, path_of(self.task.root, m, m.root), m.fstype, m.options)
            for m in self.fs.mount_table.order
        ]


class HostFS(Process):
    """An in-memory Linux filesystem: root is a tmpfs-like fs (mode 0755), caller is root."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.clock = clock or wall_clock
        sb = SuperBlock("rootfs", self.clock)
        root = new_tmpfs(sb, 0o755)
        self.root_mount = Mount(root, "rootfs", "rootfs", "rw", None, None)
        self.mount_table = MountTable(self.root_mount)
        self.events = EventLog()
        self.pipes: dict[int, devices.Pipe] = {}
        self.processes: list[Task] = []
        task = Task(self, ROOT, (self.root_mount, root))
        self.processes.append(task)
        super().__init__(self, task)

    def as_user(self, uid: int = 0, gid: int = 0, groups: Any = ()) -> Process:
        """A new process with these credentials (its own cwd and fds) on the same filesystem."""
        task = self.task.fork(Cred(uid, gid, frozenset(groups)))
        self.processes.append(task)
        return Process(self, task)

    def _busy(self, mnt: Mount) -> bool:
        for task in self.processes:
            if task.cwd[0] is mnt or any(f.mnt is mnt for f in task.fds.values()):
                return True
        return False

    # --- host disk ------------------------------------------------------------------------
    def import_tree(self, real_dir: str | os.PathLike[str], dest: str, **kw: Any) -> None:
        """Copy a real directory tree into ``dest`` (types, modes, owners, times, xattrs...)."""
        from overlaysim.vfs.hosttree import import_tree

        import_tree(self, os.fspath(real_dir), dest, **kw)

    def export_tree(self, src: str, real_dir: str | os.PathLike[str], **kw: Any) -> Any:
        """Write ``src`` to a new real directory, hardened as security.md section 7 says."""
        from overlaysim.vfs.hosttree import export_tree

        return export_tree(self, src, os.fspath(real_dir), **kw)


def mount_tmpfs(proc: Process, source: str, data: str, target: str) -> Mount:
    """A new tmpfs (mm/shmem.c): ``mode``, ``uid``, ``gid``, ``ro``; size limits are accepted
    and not enforced; any other option is ``EINVAL``."""
    mode, uid, gid, ro = 0o1777, 0, 0, False
    inode64 = False  # CONFIG_TMPFS_INODE64 is not set on the 6.18 we measure: inode32 default
    for opt in filter(None, data.split(",")):
        key, _, val = opt.partition("=")
        try:
            if key == "mode":
                mode = int(val, 8) & 0o7777
            elif key == "uid":
                uid = int(val)
            elif key == "gid":
                gid = int(val)
            elif key in ("ro", "rw"):
                ro = key == "ro"
            elif key in ("inode64", "inode32"):
                inode64 = key == "inode64"
            elif key not in ("size", "nr_inodes", "nr_blocks", "huge", "noswap", "relatime",
                             "nosuid", "nodev", "noexec"):  # fmt: skip
                raise fserr(errno.EINVAL)
        except ValueError:
            raise fserr(errno.EINVAL) from None
    sb = SuperBlock("tmpfs", proc.fs.clock)
    root = new_tmpfs(sb, mode, uid, gid)
    opts = f"{'ro' if ro else 'rw'},relatime" + ("" if mode == 0o1777 else f",mode={mode:o}")
    # shmem_show_options: "inode64" only when asked for (inode32, the default here, is hidden);
    # inode numbers stay far below 2^32 either way, so overlay xino bits never overflow on it
    opts += ",inode64" if inode64 else ""
    mnt = Mount(root, source, "tmpfs", opts, None, None)
    mnt.rdonly = ro
    return mnt


register_filesystem("tmpfs", mount_tmpfs)
register_filesystem("proc", mount_proc)  # built in, as in Linux (after tmpfs, as there)

from overlaysim.vfs import passthrough_mount as _hostdir  # noqa: E402,F401 (registers "hostdir")
