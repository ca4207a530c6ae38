"""The simulated machine that persists between commands: one HostFS plus a JSON ``meta``.

Other components (Docker's daemon, runc, the shell) keep their state as files inside the
HostFS, where the real tools keep it, and live mounts in its mount table; whatever does not
belong in a file (seeds, counters) goes in ``meta``. ``open_world`` is the unit of one
command: load (or create), run the body, and save in one transaction only if the body
returned normally, so a failed or killed command leaves the previous world untouched.

Not saved: processes (cwd, open fds, chroot, umask) and pipes' buffered bytes; a command's
processes end with it, as they would on a machine between two shell commands. The engine's
decisions on containers' overlays are saved as the world's event log (``world.eventlog``).
"""

from __future__ import annotations

import json
import os
import stat as st
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from overlaysim.errors import WorldError
from overlaysim.vfs import procfs
from overlaysim.vfs.hostfs import HostFS
from overlaysim.vfs.superblock import StepClock, wall_clock
from overlaysim.world import clock, eventlog, store
from overlaysim.world.restore import rebuild
from overlaysim.world.snapshot import Snapshot, capture

#: 2024-01-01T00:00:00Z: where a seeded world's clock starts (see :mod:`overlaysim.world.clock`).
EPOCH_NS = clock.SEEDED_EPOCH_NS

# (path, mode) of a fresh machine's top directories, in creation order.
_TOP_DIRS = [
    ("/bin", 0o755), ("/boot", 0o755), ("/dev", 0o755), ("/etc", 0o755), ("/home", 0o755),
    ("/lib", 0o755), ("/media", 0o755), ("/mnt", 0o755), ("/opt", 0o755), ("/proc", 0o555),
    ("/root", 0o700), ("/run", 0o755), ("/sbin", 0o755), ("/srv", 0o755), ("/sys", 0o555),
    ("/tmp", 0o1777), ("/usr", 0o755), ("/usr/bin", 0o755), ("/usr/lib", 0o755),
    ("/usr/local", 0o755), ("/usr/sbin", 0o755), ("/var", 0o755), ("/var/cache", 0o755),
    ("/var/lib", 0o755), ("/var/log", 0o755), ("/var/tmp", 0o1777),
]  # fmt: skip
_DEVICES = [("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)]
_FILES = [
    ("/etc/hostname", "overlaysim\n"),
    ("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    ("/etc/group", "root:x:0:\n"),
]


class World:
    """A saved machine: ``fs`` (the HostFS), ``meta`` (JSON-able dict) and ``seed``."""

    def __init__(self, fs: HostFS, meta: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.fs = fs
        self.meta: dict[str, Any] = {} if meta is None else meta
        self.seed = seed
        self.log = eventlog.WorldLog()
        eventlog.attach(fs, self.log)

    @classmethod
    def new(cls, seed: int | None = None, wall: bool = False, start_ns: int | None = None
            ) -> World:  # fmt: skip
        """A fresh machine: the usual top directories, /dev's character devices, proc on
        /proc, a tmpfs on /run, and a deterministic clock (one microsecond per reading) from ``start_ns``,
        by default today (following the host between commands) or ``$SOURCE_DATE_EPOCH``,
        2024-01-01 when a ``seed`` is given (:mod:`overlaysim.world.clock`). With ``wall``, the host's clock: a
        differential run against a real daemon needs "Up 2 seconds" to read the same on
        both sides. Nothing Docker-specific."""
        if wall:
            fs = HostFS(wall_clock)
        elif start_ns is None:
            fs = HostFS(clock.new_clock(seeded=seed is not None))
        else:
            fs = HostFS(StepClock(start_ns, 1_000))
        o = fs.os
        o.umask(0)
        for path, mode in _TOP_DIRS:
            o.mkdir(path, mode)
        for name, minor in _DEVICES:
            o.mknod(f"/dev/{name}", st.S_IFCHR | 0o666, os.makedev(1, minor))
        for path, text in _FILES:
            with fs.open(path, "w") as f:
                f.write(text)
            o.chmod(path, 0o644)
        o.umask(0o022)
        fs.mount("proc", "/proc", "proc", procfs.PROC_FLAGS)
        fs.mount("tmpfs", "/run", "tmpfs", "mode=755")
        return cls(fs, {}, seed or 0)

    def snapshot(self) -> Snapshot:
        snap = capture(self.fs)
        try:
            snap.state["meta"] = json.dumps(self.meta, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise WorldError(f"world.meta cannot be saved as JSON ({e})") from None
        if type(self.seed) is not int:
            raise WorldError("world.seed must be an integer")
        snap.state["seed"] = str(self.seed)
        snap.events = self.log.rows()
        if self.log.dropped:
            snap.state["eventlog_dropped"] = json.dumps(self.log.dropped, sort_keys=True)
        return snap

    def save_log(self, source: str) -> None:
        """Before a save: log the events no watcher labelled, forget removed containers."""
        self.log.record_rest(self.fs, source)
        self.log.forget_removed(self.fs)

    @classmethod
    def from_snapshot(cls, snap: Snapshot, where: str) -> World:
        fs = rebuild(snap, where)
        try:
            meta = json.loads(snap.state.get("meta", "{}"))
            seed = int(snap.state.get("seed", "0"))
        except ValueError:
            raise WorldError(f"{where}: corrupt world file (bad meta or seed)") from None
        if not isinstance(meta, dict):
            raise WorldError(f"{where}: corrupt world file (meta is not an object)")
        world = cls(fs, meta, seed)
        try:
            dropped = json.loads(snap.state.get("eventlog_dropped", "{}"))
            world.log = eventlog.WorldLog(snap.events, dropped if isinstance(dropped, dict) else {})
        except (ValueError, TypeError, IndexError):
            raise WorldError(f"{where}: corrupt world file (bad event log)") from None
        eventlog.attach(fs, world.log)
        return world


def load_world(path: str | os.PathLike[str]) -> World:
    """The world saved at ``path``; ``WorldError`` if missing, corrupt, foreign or newer."""
    p = os.fspath(path)
    if store.is_absent(p) and not os.path.isdir(p):
        raise WorldError(f"{p}: no world file there (it is created by the first command)")
    return World.from_snapshot(store.read_snapshot(p), p)


def save_world(world: World, path: str | os.PathLike[str]) -> None:
    """Write ``world`` to ``path`` in one transaction (a new file appears complete or not at all).

    An existing file is rewritten in place only if it is an overlaysim world; anything else is
    refused with ``WorldError`` and left as it was.
    """
    p = os.fspath(path)
    snap = world.snapshot()
    if store.is_absent(p) and not os.path.isdir(p):
        store.write_new(p, snap)
        return
    with store.session(p) as s:
        s.commit(snap)


@contextmanager
def open_world(
    path: str | os.PathLike[str], *, create: bool = True, write: bool = True
) -> Iterator[World]:
    """Load the world at ``path`` (or a new one if ``create``), yield it, and save it when the
    body returns normally and ``write`` is set; on an exception nothing is saved.

    While a writing body runs, the file stays locked: a second command on the same world
    waits for this one instead of overwriting its changes.
    """
    p = os.fspath(path)
    if store.is_absent(p) and not os.path.isdir(p):
        if not create:
            raise WorldError(f"{p}: no world file there")
        world = World.new()
        yield world
        if write:
            world.save_log(_command_name())
            store.write_new(p, world.snapshot())
        return
    if not write:
        yield load_world(p)
        return
    with store.session(p) as s:
        world = World.from_snapshot(s.read(), p)
        yield world
        world.save_log(_command_name())
        s.commit(world.snapshot())


def _command_name() -> str:
    """The running CLI command (``docker start``), the label of events no watcher labelled."""
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except ImportError:
        ctx = None
    if ctx is None:
        return "overlaysim"
    return " ".join(ctx.command_path.split()[1:]) or "overlaysim"
