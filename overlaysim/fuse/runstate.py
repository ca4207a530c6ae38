"""A small record per running mount, so that ``overlaysim umount`` finds the daemon that
serves a mount point, waits for its write-back and reports how it ended.

Records live in ``$OVERLAYSIM_RUNTIME_DIR``, else ``/run/overlaysim`` (root) or
``$XDG_RUNTIME_DIR/overlaysim``, else ``/tmp/overlaysim-UID``; one JSON file per mount point,
replaced atomically. A daemon removes its record after a clean write-back and keeps it, with
the error, after a failed one; a daemon that died leaves ``serving`` behind, which the pid
(checked with its start time, so a reused pid does not count) tells apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass

STARTING, SERVING, WRITING, FAILED = "starting", "serving", "writing", "failed"


def state_dir() -> str:
    explicit = os.environ.get("OVERLAYSIM_RUNTIME_DIR")
    if explicit:
        return explicit
    if os.geteuid() == 0 and os.access("/run", os.W_OK):
        return "/run/overlaysim"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "overlaysim") if xdg else f"/tmp/overlaysim-{os.geteuid()}"


def ensure_dir() -> str:
    """Create the records dir (0700); an OSError says why it cannot be."""
    d = state_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _path(mountpoint: str, suffix: str = ".json") -> str:
    """``mountpoint`` must already be a real path: the daemon never resolves a path through
    its own mount (a lookup there from the serving thread would wait for itself)."""
    key = hashlib.sha256(mountpoint.encode()).hexdigest()[:24]
    return os.path.join(state_dir(), key + suffix)


def log_path(mountpoint: str) -> str:
    """Where a daemon's stderr goes (libfuse's messages, unexpected errors)."""
    return _path(mountpoint, ".log")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass
class Record:
    pid: int
    mountpoint: str
    upperdir: str | None
    workdir: str | None
    status: str = STARTING
    error: str = ""
    started: int = 0  # start_time(pid) when recorded
    world: str = ""  # a container's mount: the world file saved at unmount

    def left_as_it_was(self) -> str:
        """What a write-back that never happened left untouched (for the user's message)."""
        if self.world:
            return f"; the world file {self.world} was left as it was"
        return f"; {self.upperdir} was left as it was" if self.upperdir else ""

    def alive(self) -> bool:
        return start_time(self.pid) == self.started

    def save(self) -> None:
        ensure_dir()
        path = _path(self.mountpoint)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, path)


def new(mountpoint: str, upperdir: str | None, workdir: str | None, world: str = "") -> Record:
    pid = os.getpid()
    return Record(pid, mountpoint, upperdir, workdir, started=start_time(pid) or 0, world=world)


def load(mountpoint: str) -> Record | None:
    try:
        with open(_path(mountpoint), encoding="utf-8") as f:
            return Record(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def remove(mountpoint: str) -> None:
    for path in (_path(mountpoint), log_path(mountpoint)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
