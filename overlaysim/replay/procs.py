"""What the kernel keeps per traced process, as the replay needs it: fd table, cwd, program.

The simulated :class:`~overlaysim.vfs.hostfs.Process` holds the real state (open file
descriptions, cwd node, umask); this module keeps what the simulator cannot know by itself:
which recorded fds point outside the traced mount, which are close-on-exec, the lexical path
each was opened by (to tell inside from outside without the host's filesystem), and which
recorded pids are threads of one process.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from overlaysim.vfs.hostfs import Process

AT_FDCWD = -100
#: /proc/self/fd/N: tar and others act on O_PATH fds through these magic links.
_PROC_FD = re.compile(r"^/proc/(?:self|thread-self|\d+)/fd/(\d+)(/.*)?$")


class Ignored(Exception):
    """The call is not replayed; ``reason`` is counted in the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FdInfo:
    __slots__ = ("broken", "cloexec", "dir_left", "inside", "path")

    def __init__(self, path: str | None, inside: bool, cloexec: bool = False) -> None:
        self.path = path  # lexical absolute path as the traced program saw it, if known
        self.inside = inside
        self.cloexec = cloexec
        self.broken = False  # the recorded open succeeded, the simulated one did not
        self.dir_left: int | None = None  # getdents: entries not yet returned

    def copy(self) -> FdInfo:
        new = FdInfo(self.path, self.inside, self.cloexec)
        new.broken = self.broken
        return new


class Proc:
    """One traced process (all its threads share it)."""

    __slots__ = ("cwd", "cwd_inside", "fds", "pids", "program", "sim")

    def __init__(self, sim: Process, fds: dict[int, FdInfo], cwd: str, cwd_inside: bool,
                 program: str) -> None:  # fmt: skip
        self.sim = sim
        self.fds = fds
        self.cwd = cwd
        self.cwd_inside = cwd_inside
        self.program = program
        self.pids = 0  # how many recorded pids (threads) map here

    def fd(self, fd: int) -> FdInfo:
        """The fd's info, or :class:`Ignored` when the replay cannot act on it."""
        info = self.fds.get(fd)
        if info is None:
            raise Ignored("fd inherited or never opened in the trace")
        if not info.inside:
            raise Ignored("outside the mount")
        if info.broken:
            raise Ignored("fd whose open failed in the simulation")
        return info


@dataclass(frozen=True)
class Scope:
    """Which traced paths belong to the overlay: under ``mount_point``, not under ``exclude``."""

    mount_point: str = "/"
    exclude: tuple[str, ...] = ("/proc", "/sys", "/dev")

    def contains(self, path: str) -> bool:
        m = self.mount_point
        if m != "/" and path != m and not path.startswith(m + "/"):
            return False
        return all(not (path == x or path.startswith(x + "/")) for x in self.exclude)

    def relative(self, path: str) -> str:
        """``path`` (inside) relative to the mount point, "" for the root."""
        m = self.mount_point
        rel = path[len(m):] if m != "/" else path
        return rel.lstrip("/")


def normalize(path: str) -> str:
    """Lexical absolute path (``..`` taken lexically, as the kernel does at the mount root)."""
    if path.startswith("/") and "/." not in path and "//" not in path and (
            len(path) == 1 or path[-1] != "/"):  # fmt: skip
        return path  # already normal: the common case, kept cheap
    norm = posixpath.normpath(path)
    return "/" + norm.lstrip("/") if norm.startswith("//") else norm


class Located:
    """Where a (dirfd, path) pair lands: inside or not, and how to name it to the simulator."""

    __slots__ = ("abspath", "dir_fd", "path")

    def __init__(self, path: str, dir_fd: int | None, abspath: str | None) -> None:
        self.path = path
        self.dir_fd = dir_fd
        self.abspath = abspath


def locate(scope: Scope, proc: Proc, dirfd: int | None, path: str) -> Located:
    """Resolve lexically enough to decide inside/outside; :class:`Ignored` when outside.

    Paths are handed to the simulator as recorded (so its own walk follows symlinks and
    ``..`` as the kernel did); only when the base (cwd or dirfd) lies outside but the name
    leads back in is the lexical absolute path used instead.
    """
    if dirfd == AT_FDCWD:
        dirfd = None
    if path.startswith("/proc/"):
        m = _PROC_FD.match(path)
        if m is not None:
            info = proc.fds.get(int(m.group(1)))
            if info is None:
                raise Ignored("fd inherited or never opened in the trace")
            if not info.inside or info.path is None:
                raise Ignored("outside the mount")
            path = info.path + (m.group(2) or "")
    if path.startswith("/"):
        full = normalize(path)
        if not scope.contains(full):
            raise Ignored("outside the mount")
        return Located(full if _leaves(scope, path) else path, None, full)
    if dirfd is None:
        base, base_inside = proc.cwd, proc.cwd_inside
    else:
        info = proc.fds.get(dirfd)
        if info is None:
            raise Ignored("fd inherited or never opened in the trace")
        if info.broken:
            raise Ignored("fd whose open failed in the simulation")
        base, base_inside = info.path or "", info.inside
        if not base:  # an fd inside whose path we never learned: trust the simulator
            if not base_inside:
                raise Ignored("outside the mount")
            return Located(path, dirfd, None)
    full = normalize(base + "/" + path) if path else base
    if not scope.contains(full):
        raise Ignored("outside the mount")
    if base_inside and not _leaves(scope, base + "/" + path):
        return Located(path, dirfd, full)
    return Located(full, None, full)


def _leaves(scope: Scope, path: str) -> bool:
    """Does the lexical walk of ``path`` pass through a directory outside the mount (say
    ``/proc/../etc``)? Then only the lexical result can be handed to the simulator."""
    if "/.." not in path:
        return False
    parts: list[str] = []
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if parts:
                parts.pop()
            continue
        parts.append(name)
        if not scope.contains("/" + "/".join(parts)):
            return True
    return False
