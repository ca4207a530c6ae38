"""A mounted filesystem instance: its device number, inode numbering and clock."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

_anon_minor = [30]  # the next minor to hand out; a list so that it can be read and moved


def next_anon_dev() -> int:
    """Anonymous block device numbers (major 0), as tmpfs and overlay get from the kernel."""
    minor = _anon_minor[0]
    _anon_minor[0] = minor + 1
    return os.makedev(0, minor)


def peek_anon_minor() -> int:
    """Serialisation hook: the minor the next anonymous device will get (a saved world keeps it)."""
    return _anon_minor[0]


def skip_anon_minors(next_minor: int) -> None:
    """Serialisation hook: never hand out a minor below ``next_minor`` again.

    A loaded world calls it so that its new mounts continue its own numbering and never reuse
    a device number it already holds (the counter only moves forward).
    """
    _anon_minor[0] = max(_anon_minor[0], next_minor)


def fs_uuid(fstype: str, dev: int) -> bytes:
    """The ``s_uuid`` of a filesystem: version-4 shaped, like the random one a tmpfs gets,
    but derived from the type and device number, which a saved world keeps (a disk keeps its
    uuid too), so origin handles and index names stay valid across a save and a load.
    Device numbers are never reused on one machine, so no two filesystems share a uuid."""
    b = bytearray(hashlib.blake2b(f"{fstype}:{dev}".encode(), digest_size=16,
                                  person=b"overlaysim-fs").digest())  # fmt: skip
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return bytes(b)


class SuperBlock:
    """``uuid``: the filesystem's ``s_uuid`` (overlay file handles carry it; see
    :func:`fs_uuid`). Inode generations are derived from it, not stored in inodes."""

    __slots__ = ("clock", "dev", "fstype", "magic", "next_ino", "rdonly", "uuid")

    def __init__(self, fstype: str, clock: Callable[[], int], dev: int | None = None,
                 uuid: bytes | None = None) -> None:  # fmt: skip
        self.fstype = fstype
        self.clock = clock
        self.dev = next_anon_dev() if dev is None else dev
        self.next_ino = 1
        self.magic = 0x01021994  # TMPFS_MAGIC
        self.rdonly = False
        self.uuid = fs_uuid(fstype, self.dev) if uuid is None else uuid

    def new_ino(self) -> int:
        ino = self.next_ino
        self.next_ino = ino + 1
        return ino

    def generation(self, ino: int) -> int:
        """``i_generation`` of inode ``ino``: tmpfs draws a random u32 per inode; a keyed hash
        of the fs uuid and the number gives the same spread with no field in the inode."""
        h = hashlib.blake2b(ino.to_bytes(8, "little"), digest_size=4, key=self.uuid)
        return int.from_bytes(h.digest(), "little")


def wall_clock() -> int:
    return time.time_ns()


class StepClock:
    """A deterministic clock: starts at ``start`` ns and advances ``step`` ns per reading."""

    def __init__(self, start: int = 1_700_000_000_000_000_000, step: int = 1_000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now
