"""The simulator side of a differential run: the same stack and options, mounted in HostFS.

Mirrors :class:`overlaysim.testing.kernel.KernelOverlay` attribute for attribute (``os``,
``upper_os``, ``work_os``, ``mount_path``, ``upper_root``, ``work_root``, ``mount``, ``umount``,
``remount``, ``close``), so a runner drives both without knowing which is which.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from overlaysim.testing.layers import LayerStack, StackPaths, build_stack
from overlaysim.vfs import HostFS

BASE = "/ovl"


class SimOverlay:
    def __init__(self, stack: LayerStack, options: str = "", *, fs: HostFS | None = None) -> None:
        self.fs = fs or HostFS()
        self.os: Any = self.fs.os
        self.stack, self.extra = stack, options
        self.base = BASE
        self.fs.os.makedirs(self.base)
        if stack.separate_fs:  # each lower layer on a tmpfs of its own, as the kernel side
            for i in range(len(stack.lowers)):
                self.fs.os.mkdir(f"{self.base}/l{i}", 0o700)
                self.fs.mount("tmpfs", f"{self.base}/l{i}", "tmpfs", "mode=700")
        self.mount_path = f"{self.base}/m"
        self.paths: StackPaths = build_stack(stack, self.fs.os, self.base, options=options)
        self.fs.os.mkdir(self.mount_path)
        self.options = self.paths.options(options)
        self.upper_os = self.work_os = self.fs.os
        self.upper_root, self.work_root = self.paths.upper, self.paths.work
        self.mounted = False

    def mount(self) -> None:
        self.fs.mount("overlay", self.mount_path, "overlay", self.options)
        self.mounted = True

    def umount(self) -> None:
        if self.mounted:
            self.fs.umount(self.mount_path)
            self.mounted = False

    def remount(self) -> None:
        self.umount()
        self.mount()

    def close(self) -> None:
        if self.mounted:
            for task in self.fs.processes:
                task.fds.clear()  # a simulated process exiting closes its files
            self.umount()

    def __enter__(self) -> SimOverlay:
        self.mount()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def import_separate(fs: HostFS, real_base: str, base: str, count: int) -> None:
    """import_tree of a real stack dir whose ``l0..`` each go to a tmpfs of their own."""
    fs.os.makedirs(base)
    for name in sorted(os.listdir(real_base)):
        if name in {f"l{i}" for i in range(count)}:
            fs.os.mkdir(f"{base}/{name}", 0o700)
            fs.mount("tmpfs", f"{base}/{name}", "tmpfs", "mode=700")
        fs.import_tree(os.path.join(real_base, name), f"{base}/{name}")


def simulator_factory(stack: LayerStack, options: str) -> SimOverlay:
    """A mounted :class:`SimOverlay` (the simulator side of a differential run)."""
    return SimOverlay(stack, options).__enter__()
