"""The world's event log: what the engine did to each container's overlay, by which command, when.

The engine's own log (``fs.events``) lives only as long as one command; the world keeps the
overlay decisions (copy-up with bytes, whiteout, opaque, redirect, metacopy, index...) of each
command that changed a container's overlay, so ``report`` can draw a saved container's
copy-up timeline and ``explain`` can say which command copied a file up. The rows are taken
from the same per-command collector that ``--explain`` prints (:class:`explain.live.Watcher`),
handed to :func:`sink`; whatever a command's events no watcher labelled are recorded when the
world is saved, under the command's name (``docker run``, ``docker start``).

Bounded: the newest :data:`MAX_PER_CONTAINER` events per container are kept; older ones are
dropped and counted (:attr:`WorldLog.dropped`). A container's events go with ``docker rm``
(its id no longer names a container when the world is saved). Events of an overlay of a
container already removed (``docker run --rm``) are not kept.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from overlaysim.events import Event

#: newest events kept per container (and for the host's own overlays, under container "")
MAX_PER_CONTAINER = 10_000
#: bookkeeping, not a decision about a path (as ``explain.narrate.QUIET``)
QUIET = frozenset({"mount", "umount"})

DOCKER_ROOT = "/var/lib/docker"
_LAYERDB_MOUNTS = f"{DOCKER_ROOT}/image/overlay2/layerdb/mounts"
_OVERLAY2 = f"{DOCKER_ROOT}/overlay2"
_CONTAINERS = f"{DOCKER_ROOT}/containers"

# seq, time_ns, container, mount, source, command, kind, path, reason, detail (JSON)
Row = tuple[int, int, str, str, str, str, str, str, str, str]


@dataclass(frozen=True)
class Entry:
    """One logged engine event; ``path`` is relative to the overlay's root (the container's view)."""

    seq: int
    time_ns: int
    container: str  # the container's full id, "" for an overlay the host mounted itself
    mount: str
    source: str  # "docker exec", "docker run", "sh"...
    command: str  # the command line that caused it
    kind: str
    path: str
    reason: str
    detail: dict[str, Any]

    def event(self) -> Event:
        return Event(self.kind, self.path, "", self.reason, dict(self.detail))

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.time_ns / 1e9))

    def by(self) -> str:
        """``\\`sh -c '...'\\` (docker exec)``: the command and how it was run."""
        if self.command and self.command != self.source:
            return f"`{self.command}` ({self.source})"
        return f"`{self.source}`"

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time_ns": self.time_ns, "time": self.when(),
                "container": self.container, "mount": self.mount, "source": self.source,
                "command": self.command, "kind": self.kind, "path": self.path,
                "reason": self.reason, "detail": dict(self.detail)}  # fmt: skip

    def row(self) -> Row:
        return (self.seq, self.time_ns, self.container, self.mount, self.source, self.command,
                self.kind, self.path, self.reason, json.dumps(self.detail, sort_keys=True,
                                                              default=str))  # fmt: skip


def _relative(path: str, mount: str) -> str:
    top = mount.rstrip("/")
    if top and (path == top or path.startswith(top + "/")):
        return path[len(top) :] or "/"
    return path


def _read(o: Any, path: str) -> bytes | None:
    try:
        fd = o.open(path, 0)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := o.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        o.close(fd)


def containers_by_mount(o: Any) -> dict[str, tuple[str, str]]:
    """Each container's merged dir -> (container id, its main command), from Docker's files."""
    out: dict[str, tuple[str, str]] = {}
    try:
        ids = o.listdir(_LAYERDB_MOUNTS)
    except OSError:
        return out
    for cid in ids:
        raw = _read(o, posixpath.join(_LAYERDB_MOUNTS, cid, "mount-id"))
        if raw is None:
            continue
        argv = ""
        conf = _read(o, posixpath.join(_CONTAINERS, cid, "config.v2.json"))
        if conf is not None:
            try:
                doc = json.loads(conf)
                argv = shlex.join([str(doc.get("Path", "")), *map(str, doc.get("Args") or [])])
            except (ValueError, TypeError, AttributeError):
                argv = ""
        out[posixpath.join(_OVERLAY2, raw.decode().strip(), "merged")] = (cid, argv)
    return out


class WorldLog:
    """The saved log: entries in order, the count dropped per container, and how far into the
    engine's ``fs.events`` it has read."""

    def __init__(self, rows: Iterable[Row] = (), dropped: dict[str, int] | None = None) -> None:
        self.entries: list[Entry] = []
        for r in rows:
            try:
                detail = json.loads(r[9])
            except ValueError:
                detail = {}
            self.entries.append(Entry(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]),
                                      str(r[5]), str(r[6]), str(r[7]), str(r[8]),
                                      detail if isinstance(detail, dict) else {}))  # fmt: skip
        self.dropped: dict[str, int] = dict(dropped or {})
        self.mark = 0  # events of fs.events already logged (or seen by a watcher)
        self.limit = MAX_PER_CONTAINER

    def rows(self) -> list[Row]:
        return [e.row() for e in self.entries]

    def of(self, container: str) -> list[Entry]:
        return [e for e in self.entries if e.container == container]

    def record(self, fs: Any, source: str, command: str, events: Iterable[Event]) -> int:
        """Log ``events`` (one command's) against the containers whose overlays they hit."""
        mounts = containers_by_mount(fs.os)
        clock = fs.clock
        now = int(clock.now) if hasattr(clock, "now") else int(clock())  # a step clock: no tick
        seq = self.entries[-1].seq + 1 if self.entries else 1
        touched: set[str] = set()
        added = 0
        for e in events:
            if e.kind in QUIET or not e.mount:
                continue
            top = e.mount.rstrip("/") or "/"
            owner = mounts.get(top)
            if owner is None and top.startswith(_OVERLAY2 + "/"):
                continue  # a removed container's overlay (docker run --rm): nothing to keep
            cid, argv = owner if owner is not None else ("", "")
            said = command or (argv if source in ("docker run", "docker start") else "")
            self.entries.append(Entry(seq, now, cid, top, source, said or source, e.kind,
                                      _relative(e.path, top), e.reason, dict(e.detail)))  # fmt: skip
            seq += 1
            added += 1
            touched.add(cid)
        for cid in touched:
            self._bound(cid)
        self.mark = len(fs.events)
        return added

    def _bound(self, cid: str) -> None:
        mine = [i for i, e in enumerate(self.entries) if e.container == cid]
        extra = len(mine) - self.limit
        if extra > 0:
            gone = set(mine[:extra])
            self.entries = [e for i, e in enumerate(self.entries) if i not in gone]
            self.dropped[cid] = self.dropped.get(cid, 0) + extra

    def record_rest(self, fs: Any, source: str) -> int:
        """At save: the events no watcher labelled, under the command's name."""
        events = fs.events
        if self.mark > len(events):  # someone cleared the engine's log (a replay drains it)
            self.mark = 0
        return self.record(fs, source, "", events.since(self.mark))

    def forget_removed(self, fs: Any) -> None:
        """Drop the log of containers that no longer exist (``docker rm``)."""
        try:
            live = set(fs.os.listdir(_CONTAINERS))
        except OSError:
            live = set()
        self.entries = [e for e in self.entries if not e.container or e.container in live]
        self.dropped = {k: v for k, v in self.dropped.items() if not k or k in live}


_LOGS: weakref.WeakKeyDictionary[Any, WorldLog] = weakref.WeakKeyDictionary()


def attach(fs: Any, log: WorldLog) -> None:
    """Make ``log`` the log of the world whose HostFS is ``fs`` (what :func:`sink` finds)."""
    log.mark = len(fs.events)
    _LOGS[fs] = log


def sink(fs: Any, source: str) -> Callable[[str, list[Event]], None] | None:
    """For a watcher of ``fs``: log each command's events under ``source``; None for an fs
    that belongs to no world (a test's bare HostFS)."""
    log = _LOGS.get(fs)
    if log is None:
        return None
    world_log = log

    def take(command: str, events: list[Event]) -> None:
        world_log.record(fs, source, command, events)

    return take


def _names(o: Any) -> dict[str, str]:
    """Container id -> name, from Docker's config files (no daemon needed to read a log)."""
    out: dict[str, str] = {}
    try:
        ids = o.listdir(_CONTAINERS)
    except OSError:
        return out
    for cid in ids:
        raw = _read(o, posixpath.join(_CONTAINERS, cid, "config.v2.json"))
        try:
            out[cid] = str(json.loads(raw or b"{}").get("Name", "")).lstrip("/")
        except (ValueError, AttributeError):
            out[cid] = ""
    return out


def for_cli(world: Any, container: str | None) -> tuple[list[dict[str, Any]], int]:
    """``world log [CONTAINER]``: the entries as JSON rows (with a sentence each) and the count
    dropped; CONTAINER is a name, a full id or an id prefix, as docker takes it."""
    from overlaysim.errors import WorldError
    from overlaysim.explain import narrate

    log: WorldLog = world.log
    names = _names(world.fs.os)
    entries = log.entries
    dropped = sum(log.dropped.values())
    if container is not None:
        hits = [c for c, n in names.items() if n == container.lstrip("/") or c == container]
        hits = hits or [c for c in names if c.startswith(container)]
        if len(hits) != 1:
            why = "no such container" if not hits else "ambiguous container id prefix"
            raise WorldError(f"{container}: {why} in the world")
        entries = log.of(hits[0])
        dropped = log.dropped.get(hits[0], 0)
    rows = [{**e.as_json(), "container_name": names.get(e.container, ""),
             "text": narrate.sentence(e.event())} for e in entries]  # fmt: skip
    return rows, dropped
