"""The mount table: which filesystem sits on which directory (fs/namespace.c).

Mounts stack: a new mount on a busy mountpoint goes on top of the mount already there, and the
walk follows the stack to its top, as Linux does.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from overlaysim.vfs.node import NS_GEN, Node, fserr

_ids = [20]  # the next mount id; a list so that a loaded world can move it forward


def peek_mount_id() -> int:
    """Serialisation hook: the id the next mount will get (a saved world keeps it)."""
    return _ids[0]


def skip_mount_ids(next_id: int) -> None:
    """Serialisation hook: never hand out a mount id below ``next_id`` again (forward only)."""
    _ids[0] = max(_ids[0], next_id)


class Mount:
    __slots__ = ("data", "fstype", "id", "mountpoint", "options", "parent", "private", "rdonly",
                 "root", "source")  # fmt: skip

    def __init__(
        self,
        root: Node,
        source: str,
        fstype: str,
        options: str,
        parent: Mount | None,
        mountpoint: Node | None,
        private: Any = None,
    ) -> None:
        self.id = _ids[0]
        _ids[0] += 1
        self.root = root
        self.source = source
        self.fstype = fstype
        self.options = options
        self.parent = parent
        self.mountpoint = mountpoint
        self.private = private  # the filesystem's own state (e.g. the overlay's layers)
        self.rdonly = False
        self.data = ""  # the mount(2) data string as given (to mount it again, e.g. on load)


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mounts."""

    source: str
    target: str
    fstype: str
    options: str

    def line(self) -> str:
        return f"{self.source} {self.target} {self.fstype} {self.options} 0 0"


class MountTable:
    def __init__(self, root: Mount) -> None:
        self.root = root
        self._on: dict[tuple[int, int], Mount] = {}
        self.order: list[Mount] = [root]

    def follow(self, mnt: Mount, node: Node) -> tuple[Mount, Node]:
        """Cross every mount stacked on ``node`` (seen from ``mnt``) to the topmost root."""
        while node.mounted:
            child = self._on.get((id(mnt), id(node)))
            if child is None:
                break
            mnt, node = child, child.root
        return mnt, node

    def attach(self, mnt: Mount, parent: Mount, mountpoint: Node) -> None:
        parent, mountpoint = self.follow(parent, mountpoint)
        mnt.parent = parent
        mnt.mountpoint = mountpoint
        mountpoint.mounted += 1  # type: ignore[misc]
        NS_GEN[0] += 1
        self._on[(id(parent), id(mountpoint))] = mnt
        self.order.append(mnt)

    def detach(self, mnt: Mount) -> None:
        if mnt.parent is None or mnt.mountpoint is None:
            raise fserr(errno.EINVAL)
        if any(m.parent is mnt for m in self.order):
            raise fserr(errno.EBUSY)
        del self._on[(id(mnt.parent), id(mnt.mountpoint))]
        mnt.mountpoint.mounted -= 1  # type: ignore[misc]
        NS_GEN[0] += 1
        self.order.remove(mnt)

    def is_mount_root(self, mnt: Mount, node: Node) -> bool:
        return node is mnt.root
