"""A container of the saved world mounted for real: ``overlaysim docker mount NAME DIR`` and
``overlaysim mount --world [FILE] --container NAME DIR``.

The merged view served is the container's own overlay in the world (its rootfs, mounted by
the simulated dockerd as ``docker cp`` does for a stopped container, or the one a running
container already has), so writes land in its ``diff/`` dir exactly as the engine decides.
The world is saved once, at unmount, by the world store's own atomic commit; a failed save
(or a killed daemon) leaves the world file as it was.

While mounted the daemon holds the world: SQLite's write lock (taken before the world is
read, so no command that started earlier can be overwritten) and a holder note
(:mod:`overlaysim.world.holder`) that makes every other command on that world refuse at once
with one line naming the mount, instead of waiting or losing the mount's writes. Commands
that only read the file (``overlaysim world info``) still work and see the world as saved.

Everything runs in the daemon after the fork (an SQLite lock is not inherited by a child):
the command returns when the mount answers, or with the daemon's one-line reason.
"""

from __future__ import annotations

import os
import posixpath
from typing import TextIO

from overlaysim.docker.daemon import Daemon
from overlaysim.errors import WorldError
from overlaysim.fuse import daemon, explain, runstate, simulation
from overlaysim.fuse.errors import MountError, WriteBackError
from overlaysim.fuse.options import IGNORED, IGNORED_PREFIXES, VFS_FLAGS, MountSpec, validate
from overlaysim.world import World, holder, store


class _Replaced(Exception):
    """The world file is no longer the one the mount read: saving into it would be lost."""


def parse(world_path: str, container: str, mountpoint: str, options: str = "",
          explain_to: str | None = None) -> MountSpec:  # fmt: skip
    """The request as a MountSpec without layers: the container's overlay has its own."""
    flags: list[str] = []
    for opt in (o for o in options.split(",") if o):
        if opt in VFS_FLAGS:
            flags.append(opt)
        elif opt not in IGNORED and not opt.startswith(IGNORED_PREFIXES):
            raise MountError(f"{opt}: a container's overlay keeps the options dockerd mounted "
                             "it with; only mount flags (ro, nosuid, nodev, noexec, noatime...) "
                             "are accepted here")  # fmt: skip
    spec = MountSpec(mountpoint=os.path.realpath(mountpoint), lowers=[], vfs_flags=flags,
                     explain=explain_to)  # fmt: skip
    validate(spec)
    world = os.path.realpath(world_path)
    if store.is_absent(world):
        raise MountError(f"{world_path}: no world file there (overlaysim docker run/create "
                         "make containers in it)")  # fmt: skip
    if (world + "/").startswith(spec.mountpoint.rstrip("/") + "/"):
        raise MountError(f"the world file {world} is inside the mount point: saving it at "
                         "unmount would go through the mount")  # fmt: skip
    if not container:
        raise MountError("which container? give its name or id")
    return spec


def mount(world_path: str, container: str, spec: MountSpec, *, foreground: bool) -> None:
    """Mount ``container`` of the world at ``world_path`` on ``spec.mountpoint``."""
    daemon.claim(spec)
    what = holder.holder(world_path)
    if what is not None:
        raise MountError(f"{world_path}: {what}")
    out = explain.open_output(spec.explain)
    world = os.path.realpath(world_path)
    daemon.run(spec.mountpoint, lambda notify: _serve(world, container, spec, out, notify),
               foreground=foreground)  # fmt: skip


def _serve(world_path: str, name: str, spec: MountSpec, out: TextIO | None,
           notify: int | None) -> None:  # fmt: skip
    with store.session(world_path) as session:  # the write lock, for the mount's life
        inode = os.stat(world_path).st_ino
        world = World.from_snapshot(session.read(), world_path)
        docker = Daemon(world.fs, world.meta, world.seed)
        c = docker.container(name)
        merged = docker.layers.mount(c.id)
        home = docker.driver.dir(docker.layers.get_mount_id(c.id))
        proc = world.fs.fork()
        proc.os.chroot(merged)
        proc.os.chdir("/")
        sim = simulation.SimMount(world.fs, merged, posixpath.join(home, "diff"),
                                  posixpath.join(home, "work"), proc, spec)  # fmt: skip
        holder.hold(world_path, f"container {c.name} is mounted at {spec.mountpoint} by "
                    f"overlaysim (pid {os.getpid()}); overlaysim umount {spec.mountpoint} "
                    "first (the world is saved then)")  # fmt: skip
        world.fs.events.clear()  # the rootfs mount above is dockerd's, not the user's

        def save(_sim: simulation.SimMount, rec: runstate.Record) -> None:
            """The unmount: release the rootfs as dockerd would, then commit the world."""
            rec.status = runstate.WRITING
            rec.save()
            try:
                proc.exit()
                docker.layers.unmount(c.id)
                if os.stat(world_path).st_ino != inode:
                    raise _Replaced(f"{world_path} was replaced while mounted (world reset "
                                    "--force?): the mount's writes were dropped")
                session.commit(world.snapshot())
            except (WorldError, _Replaced, OSError, KeyboardInterrupt) as e:
                why = daemon.one_line(e)
                kept = "" if isinstance(e, _Replaced) else f"; {world_path} was left as it was"
                msg = f"saving the world at unmount: {why}{kept}"
                rec.status, rec.error = runstate.FAILED, msg
                rec.save()
                raise WriteBackError(msg) from None
            runstate.remove(spec.mountpoint)

        try:
            daemon.serve(sim, out, notify, finish=save, world=world_path)
        finally:
            holder.release(world_path)
