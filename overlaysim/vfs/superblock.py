"""A mounted filesystem instance: its device number, inode numbering and clock."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

_anon_minor = itertools.count(30)


def next_anon_dev() -> int:
    """Anonymous block device numbers (major 0), as tmpfs and overlay get from the kernel."""
    return os.makedev(0, next(_anon_minor))


class SuperBlock:
    __slots__ = ("clock", "dev", "fstype", "magic", "next_ino", "rdonly")

    def __init__(self, fstype: str, clock: Callable[[], int], dev: int | None = None) -> None:
        self.fstype = fstype
        self.clock = clock
        self.dev = next_anon_dev() if dev is None else dev
        self.next_ino = 1
        self.magic = 0x01021994  # TMPFS_MAGIC
        self.rdonly = False

    def new_ino(self) -> int:
        ino = self.next_ino
        self.next_ino = ino + 1
        return ino


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
