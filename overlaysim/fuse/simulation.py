"""The simulated machine behind a FUSE mount: real layer dirs imported into a HostFS, the
overlay mounted on them there, and the process that serves FUSE requests, chrooted into it.

Lowers are imported up front (their content and metadata in memory, whiteouts and overlay
xattrs kept), so the real lower dirs are read once and never written. The upper and work dirs
live in the simulation; with ``--upperdir`` they start as copies of the real ones and are
written back at unmount (:mod:`overlaysim.fuse.writeback`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from overlaysim.fuse.errors import MountError
from overlaysim.fuse.options import MountSpec
from overlaysim.vfs.hostfs import HostFS, Process

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

    def real_names(self, text: str) -> str:
        """``text`` (e.g. the overlay's option string) with layer paths shown as the real ones."""
        spec = self.spec
        pairs = [(f"{ROOT}/lower{i}", p) for i, p in enumerate(spec.lowers)]
        pairs += [(f"{ROOT}/data{i}", p) for i, p in enumerate(spec.datadirs)]
        pairs += [(self.upper, spec.upperdir or "(memory)"), (self.work, spec.workdir or "(memory)")]
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
    lowers = [_import(fs, real, f"{ROOT}/lower{i}", "lowerdir") for i, real in enumerate(spec.lowers)]
    datas = [_import(fs, real, f"{ROOT}/data{i}", "datadir") for i, real in enumerate(spec.datadirs)]
    upper, work, merged = f"{ROOT}/upper", f"{ROOT}/work", f"{ROOT}/merged"
    if spec.upperdir is not None and spec.workdir is not None:
        _import(fs, spec.upperdir, upper, "upperdir")
        _import(fs, spec.workdir, work, "workdir")
    else:
        o.mkdir(upper, 0o755)
        o.mkdir(work, 0o755)
    o.mkdir(merged, 0o755)
    data = "lowerdir=" + ":".join(lowers) + "".join("::" + d for d in datas)
    data += f",upperdir={upper},workdir={work}"
    data += "".join("," + opt for opt in spec.overlay_options)
    try:
        fs.mount(spec.source, merged, "overlay", data)
    except OSError as e:
        why = e.strerror or os.strerror(e.errno or 0)
        raise MountError(f"the overlay cannot be mounted with these options: {why}") from None
    proc = fs.fork()
    proc.os.chroot(merged)
    proc.os.chdir("/")
    return SimMount(fs, merged, upper, work, proc, spec)


def _import(fs: HostFS, real: str, sim: str, what: str) -> str:
    try:
        fs.import_tree(real, sim)
    except OSError as e:
        raise MountError(f"{what} {real}: cannot be read: {e.strerror or e}") from None
    return sim
