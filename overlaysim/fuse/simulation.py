"""The simulated machine behind a FUSE mount: real layer dirs mapped into a HostFS, the
overlay mounted on them there, and the process that serves FUSE requests, chrooted into it.

With ``--live`` every layer is the real dir, mapped through the passthrough type ``hostdir``
(:mod:`overlaysim.vfs.passthrough`): lowers read-only, read lazily as the kernel reads them;
upper and work read-write through one mapping of their common parent (the kernel wants them
on one mount), written as the engine goes, so nothing is written back.

Without ``--live`` the upper and work dirs live in the simulation; with ``--upperdir`` they
start as copies of the real ones and are written back at unmount; with ``--scratch-upper``
they start empty and are dropped; with neither the overlay has lowers only and is read-only,
as the kernel mounts ``lowerdir=`` alone
(:mod:`overlaysim.fuse.writeback`). The lowers are then imported, not mapped, but lazily
(:mod:`overlaysim.vfs.lazytree`: a dir's entries when first needed, a file's bytes when first
read; never written, atimes kept): an in-memory upper is another
filesystem than real lowers, and the engine would number inodes as for layers on two
filesystems (st_ino of copied-up files and hard links, d_ino), where the kernel, whose layers
share one filesystem, does not.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from overlaysim.fuse.errors import MountError
from overlaysim.fuse.options import MountSpec
from overlaysim.vfs.hostfs import HostFS, Process
from overlaysim.vfs.lazytree import LazyTree, RealInodes, import_lazy

ROOT = "/.overlaysim-fuse"


@dataclass
class SimMount:
    """A mounted simulated overlay; ``proc`` sees the merged root as ``/``."""

    fs: HostFS
    merged: str
    upper: str
    work: str
    proc: Process
    spec: MountSpec
    lazy: list[LazyTree] = field(default_factory=list)  # the lowers read on demand

    def real_names(self, text: str) -> str:
        """``text`` (e.g. the overlay's option string) with layer paths shown as the real ones."""
        spec = self.spec
        pairs = [(f"{ROOT}/lower{i}", p) for i, p in enumerate(spec.lowers)]
        pairs += [(f"{ROOT}/data{i}", p) for i, p in enumerate(spec.datadirs)]
        if self.upper:
            pairs += [(self.upper, spec.upperdir or "(memory)"),
                      (self.work, spec.workdir or "(memory)")]  # fmt: skip
        for sim, real in sorted(pairs, key=lambda x: -len(x[0])):
            text = text.replace(sim, real)
        return text

    def real_path(self, sim_path: str) -> str:
        """Where a HostFS path of the merged view appears on the real mount point."""
        if sim_path == self.merged or sim_path.startswith(self.merged + "/"):
            rest = sim_path[len(self.merged) :]
            return self.spec.mountpoint.rstrip("/") + rest if rest else self.spec.mountpoint
        return sim_path


def build(spec: MountSpec) -> SimMount:
    """Import the layers and mount the overlay; a refusal is a one-line MountError."""
    fs = HostFS()
    o = fs.os
    o.makedirs(ROOT, 0o755)
    trees: list[LazyTree] = []
    inodes = RealInodes()  # shared: one inode per real one, numbers stable across mounts

    def get(real: str, sim: str, what: str) -> str:
        return _map(fs, real, sim, what) if spec.live else _import_lazy(fs, real, sim, what, trees, inodes)

    lowers = [get(real, f"{ROOT}/lower{i}", "lowerdir") for i, real in enumerate(spec.lowers)]
    datas = [get(real, f"{ROOT}/data{i}", "datadir") for i, real in enumerate(spec.datadirs)]
    upper, work, merged = f"{ROOT}/upper", f"{ROOT}/work", f"{ROOT}/merged"
    if spec.live and spec.upperdir is not None and spec.workdir is not None:
        upper, work = _map_upper(fs, spec.upperdir, spec.workdir)
    elif spec.upperdir is not None and spec.workdir is not None:
        _import(fs, spec.upperdir, upper, "upperdir")
        _import(fs, spec.workdir, work, "workdir")
        _relink_work(fs, spec.upperdir, upper, spec.workdir, work)
    elif spec.scratch:
        o.mkdir(upper, 0o755)
        o.mkdir(work, 0o755)
    else:
        upper = work = ""  # lowers only: read-only, as the kernel mounts it
    o.mkdir(merged, 0o755)
    data = "lowerdir=" + ":".join(lowers) + "".join("::" + d for d in datas)
    data += f",upperdir={upper},workdir={work}" if upper else ""
    data += "".join("," + opt for opt in spec.overlay_options)
    try:
        fs.mount(spec.source, merged, "overlay", data)
    except OSError as e:
        why = e.strerror or os.strerror(e.errno or 0)
        raise MountError(f"the overlay cannot be mounted with these options: {why}") from None
    proc = fs.fork()
    proc.os.chroot(merged)
    proc.os.chdir("/")
    return SimMount(fs, merged, upper, work, proc, spec, trees)


def _map(fs: HostFS, real: str, sim: str, what: str, ro: bool = True) -> str:
    """Mount the real dir ``real`` on ``sim`` (a new dir) through the passthrough type."""
    fs.os.makedirs(sim, 0o755)
    try:
        fs.mount(real, sim, "hostdir", "ro" if ro else "rw")
    except OSError as e:
        raise MountError(f"{what} {real}: cannot be mapped: {e.strerror or e}") from None
    return sim


def _map_upper(fs: HostFS, upperdir: str, workdir: str) -> tuple[str, str]:
    """(upper, work) in the simulation: the real dirs, under one read-write mapping of their
    nearest common real dir (options.validate made sure they share a real filesystem)."""
    up, wk = os.path.realpath(upperdir), os.path.realpath(workdir)
    common = os.path.commonpath([up, wk])
    top = _map(fs, common, f"{ROOT}/live", "upperdir", ro=False)
    return (top + "/" + os.path.relpath(up, common), top + "/" + os.path.relpath(wk, common))


def _import(fs: HostFS, real: str, sim: str, what: str) -> str:
    try:
        fs.import_tree(real, sim)
    except OSError as e:
        raise MountError(f"{what} {real}: cannot be read: {e.strerror or e}") from None
    return sim


def _import_lazy(fs: HostFS, real: str, sim: str, what: str, trees: list[LazyTree],
                 inodes: RealInodes) -> str:  # fmt: skip
    try:
        trees.append(import_lazy(fs, real, sim, inodes=inodes))
    except OSError as e:
        raise MountError(f"{what} {real}: cannot be read: {e.strerror or e}") from None
    return sim


def _real_links(top: str) -> dict[tuple[int, int], list[str]]:
    """(st_dev, st_ino) -> names under real ``top`` of each non-directory with links > 1."""
    found: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirs, files in os.walk(top):
        for name in sorted(dirs + files):
            path = os.path.join(dirpath, name)
            s = os.lstat(path)
            if not stat.S_ISDIR(s.st_mode) and s.st_nlink > 1:
                found.setdefault((s.st_dev, s.st_ino), []).append(os.path.relpath(path, top))
    return found


def _relink_work(fs: HostFS, real_upper: str, upper: str, real_work: str, work: str) -> None:
    """Two imports cannot see the hard links between the upper and work dirs (an index entry
    is a link of its upper file): make those work entries links of the upper files again,
    keeping their parent dirs' times."""
    o = fs.os
    try:
        in_upper = _real_links(real_upper)
        in_work = _real_links(real_work)
    except OSError as e:
        raise MountError(f"upperdir {real_upper}: cannot be read: {e.strerror or e}") from None
    for key, names in in_work.items():
        if key not in in_upper:
            continue
        src = f"{upper}/{in_upper[key][0]}"
        for rel in names:
            dst = f"{work}/{rel}"
            parent = dst.rsplit("/", 1)[0]
            ps = o.lstat(parent)
            o.unlink(dst)
            o.link(src, dst, follow_symlinks=False)
            o.utime(parent, ns=(ps.st_atime_ns, ps.st_mtime_ns))
