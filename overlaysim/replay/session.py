"""The machine a trace is replayed on: lowers, upper, work and the overlay mount in a HostFS.

Three sources of lowers, one shape of result: real directories in the kernel's on-disk form
(imported with their whiteouts and xattrs), the layers of an image archive, or a container
of a saved world (whose own upper dir then receives the replay). The traced programs see the
overlay at ``mount_point``: for ``/`` they are chrooted into it, as inside a container.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import UsageError
from overlaysim.vfs.hostfs import HostFS, Process
from overlaysim.vfs.superblock import StepClock

WORK_ROOT = "/.overlaysim-replay"
#: 2024-01-01T00:00:00Z, one microsecond per clock reading: replays are deterministic.
EPOCH_NS = 1_704_067_200 * 10**9


@dataclass
class Session:
    """A mounted overlay ready for replay; ``root`` is the process every traced pid forks from."""

    fs: HostFS
    merged: str  # where the overlay is mounted in the HostFS
    upper: str
    work: str
    lowers: list[str]
    options: str
    mount_point: str  # where the traced programs saw the overlay's root
    root: Process
    userxattr: bool = False
    notes: list[str] = field(default_factory=list)


def _data(lowers: Sequence[str], upper: str, work: str, options: str) -> str:
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    return opts + ("," + options if options else "")


def _check_options(options: str) -> None:
    for opt in filter(None, options.split(",")):
        key = opt.partition("=")[0]
        if key in ("lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+"):
            raise UsageError(f"--options: {key} is given by --lowerdir/--image, not in options")


def mount_layers(fs: HostFS, lowers: list[str], options: str, mount_point: str = "/",
                 cwd: str | None = None, uid: int = 0, gid: int = 0,
                 upperdir: str | None = None) -> Session:  # fmt: skip
    """Mount ``lowers`` (dirs of ``fs``, uppermost first) with a fresh upper under ``options``:
    the session every way of filling the lowers ends in (``compare`` builds its own lowers)."""
    _check_options(options)
    o = fs.os
    upper, work = f"{WORK_ROOT}/upper", f"{WORK_ROOT}/work"
    if upperdir is not None:
        _import(fs, upperdir, upper, "--upperdir")
    o.makedirs(upper, 0o755, exist_ok=True)
    o.makedirs(work, 0o755, exist_ok=True)
    merged = f"{WORK_ROOT}/merged" if mount_point == "/" else mount_point
    o.makedirs(merged, 0o755, exist_ok=True)
    try:
        fs.mount("overlay", merged, "overlay", _data(lowers, upper, work, options))
    except OSError as e:
        why = e.strerror or os.strerror(e.errno or 0)
        raise UsageError(f"the overlay cannot be mounted with these options "
                         f"({options or 'none'}): {why}") from None  # fmt: skip
    except (NotImplementedError, ValueError) as e:
        raise UsageError(f"the overlay cannot be mounted: {e}") from None
    root = fs.fork()
    if mount_point == "/":
        root.os.chroot(merged)
    start = cwd or mount_point
    try:
        root.os.chdir(start)
    except OSError:
        root.os.chdir(mount_point)
    root.os.umask(0o022)
    root.set_cred(uid, gid)
    userx = "userxattr" in options.split(",")
    return Session(fs, merged, upper, work, lowers, options, mount_point, root, userx)


def _import(fs: HostFS, real: str, sim: str, what: str) -> None:
    if not os.path.isdir(real):
        raise UsageError(f"{what}: {real}: not a directory")
    try:
        fs.import_tree(real, sim)
    except OSError as e:
        raise UsageError(f"{what}: {real}: cannot be read: {e.strerror}") from None


def from_dirs(lowerdirs: Sequence[str], options: str = "", mount_point: str = "/",
              cwd: str | None = None, uid: int = 0, gid: int = 0,
              upperdir: str | None = None) -> Session:  # fmt: skip
    """Import real lower dirs (uppermost first, as ``lowerdir=``) and mount them; ``upperdir``
    (optional) is the upper dir as it was when the trace began."""
    if not lowerdirs:
        raise UsageError("--lowerdir: at least one lower directory is needed")
    _check_options(options)
    fs = HostFS(StepClock(EPOCH_NS, 1_000))
    sims = []
    for i, real in enumerate(lowerdirs):
        sim = f"{WORK_ROOT}/lower{i}"
        _import(fs, real, sim, "--lowerdir")
        sims.append(sim)
    return mount_layers(fs, sims, options, mount_point, cwd, uid, gid, upperdir)


def from_image(archive: str, ref: str | None = None, options: str = "", mount_point: str = "/",
               cwd: str | None = None, uid: int = 0, gid: int = 0,
               upperdir: str | None = None) -> Session:  # fmt: skip
    """The layers of an image archive (any format ``image inspect`` reads) as the lowers."""
    from overlaysim.image.formats import open_archive, select
    from overlaysim.image.importer import import_image
    from overlaysim.image.limits import Limits

    _check_options(options)
    fs = HostFS(StepClock(EPOCH_NS, 1_000))
    fs.os.makedirs(WORK_ROOT, 0o755)
    arch, src = open_archive(archive, Limits(), strict=True)
    try:
        image = select(arch, ref, None)
        res = import_image(fs.os, src, image, f"{WORK_ROOT}/image", how="native")
    finally:
        src.close()
    lowers = list(reversed(res.layer_dirs))  # uppermost first
    if not lowers:
        raise UsageError(f"{archive}: the image has no layers")
    return mount_layers(fs, lowers, options, mount_point, cwd, uid, gid, upperdir)


def from_container(world: Any, name: str, cwd: str | None = None, uid: int = 0,
                   gid: int = 0) -> tuple[Session, Any]:  # fmt: skip
    """A container of a saved world: the replay lands in its own upper dir (``diff/``).

    A stopped container's rootfs is mounted for the replay and unmounted after it (call the
    returned ``release``), as ``docker cp`` into a stopped container does."""
    from overlaysim.docker.daemon import Daemon

    daemon = Daemon(world.fs, world.meta, world.seed)
    c = daemon.container(name)
    fs: HostFS = world.fs
    merged = daemon.layers.mount(c.id)
    home = daemon.driver.dir(daemon.layers.get_mount_id(c.id))
    root = fs.fork()
    root.os.chroot(merged)
    root.os.chdir(cwd or str(c.doc.get("Config", {}).get("WorkingDir") or "/"))
    root.set_cred(uid, gid)
    line = next((m for m in fs.mounts() if m.target == merged), None)
    options = ",".join(x for x in (line.options if line else "").split(",")
                       if not x.startswith(("lowerdir=", "upperdir=", "workdir=")))  # fmt: skip
    session = Session(fs, merged, posixpath.join(home, "diff"), posixpath.join(home, "work"),
                      [], options, "/", root)  # fmt: skip
    session.notes.append(f"container {c.name} ({c.id[:12]})")

    def release() -> None:
        root.exit()
        daemon.layers.unmount(c.id)

    return session, release
