"""``Shell(root=...)``: run commands chrooted into a directory of a HostFS (``docker exec``).

The shell gets a new simulated process forked from the caller's and chroot(2)ed, so absolute
paths, ``..`` and absolute symlinks resolve inside the root exactly as in a container, and
overlay ``mount -o lowerdir=...`` paths resolve there too. The mount list shows only mounts
at or under the root, with their targets relative to it (as /proc/self/mounts does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import UsageError
from overlaysim.vfs.hostfs import Process


@dataclass(frozen=True)
class Visible:
    """A mount entry as seen from inside the root."""

    source: str
    target: str
    fstype: str
    options: str


@dataclass
class Chrooted:
    o: Any
    mounts: Callable[[], Iterable[Any]] | None
    mount: Callable[[str, str, str, str], None] | None
    umount: Callable[[str], None] | None


def chroot(
    o: Any,
    root: str,
    mounts: Callable[[], Iterable[Any]] | None,
    mount: Callable[[str, str, str, str], None] | None,
    umount: Callable[[str], None] | None,
) -> Chrooted:
    """A chrooted view of the HostFS process behind ``o`` (its ``fs.os``)."""
    task = getattr(o, "_t", None)  # the simulated process the os-like module acts as
    if task is None or not hasattr(o, "chroot"):
        raise UsageError("root= needs the os module of a HostFS (fs.os), not the real os")
    host_root = o.path.realpath(root)
    proc = Process(task.fs, task.fork(task.cred))
    proc.os.chroot(host_root)
    proc.os.chdir("/")

    def visible() -> list[Visible]:
        out = []
        for m in mounts() if mounts is not None else ():
            if m.target == host_root:
                out.append(Visible(m.source, "/", m.fstype, m.options))
            elif m.target.startswith(host_root.rstrip("/") + "/"):
                inner = m.target[len(host_root.rstrip("/")) :]
                out.append(Visible(m.source, inner, m.fstype, m.options))
        return out

    return Chrooted(
        o=proc.os,
        mounts=visible if mounts is not None else None,
        mount=proc.mount if mount is not None else None,
        umount=proc.umount if umount is not None else None,
    )
