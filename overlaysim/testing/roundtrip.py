"""Round trips between the kernel and the simulator through the layers they leave behind.

A user who replays a container offline takes a real upper dir into the simulator, and one
who predicts an upper dir takes the simulator's back to a real kernel. Both must work: the
layers one side wrote (whiteouts, opaque and redirect xattrs, origin file handles, work dir
leftovers) are mounted by the other side, whose merged view must be the writer's own.

The writer's layers are moved whole (lowers, upper and work, with trusted.* xattrs, device
numbers and hard links), under a new base directory, and mounted with the same options
(``extra`` overrides them: index=on layers are compared with index=off, see differential).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from overlaysim.testing.layers import StackPaths

if TYPE_CHECKING:
    from overlaysim.testing.kernel import KernelOverlay
    from overlaysim.testing.simulator import SimOverlay


def _paths(base: str, like: StackPaths, join: Any) -> StackPaths:
    lowers = tuple(join(base, f"l{i}") for i in range(len(like.lowers)))
    data = tuple(join(base, f"d{i}") for i in range(len(like.data)))
    if like.upper is None:
        return StackPaths(lowers, None, None, data)
    return StackPaths(lowers, join(base, "u"), join(base, "w"), data)


class ImportedOverlay:
    """The kernel's layers, copied into a fresh HostFS and mounted by the simulator."""

    def __init__(self, kernel: KernelOverlay, extra: str | None = None) -> None:
        from overlaysim.vfs import HostFS

        self.fs = HostFS()
        self.os: Any = self.fs.os
        self.base = "/ovl"
        if kernel.stack.separate_fs:  # lower layers on filesystems of their own here too
            from overlaysim.testing.simulator import import_separate

            import_separate(self.fs, kernel.base, self.base, len(kernel.paths.lowers))
        else:
            self.fs.import_tree(kernel.base, self.base)
        self.fs.os.rmdir(f"{self.base}/m")  # the kernel's (unmounted) mount point, recreated
        self.fs.os.mkdir(f"{self.base}/m")
        self.mount_path = f"{self.base}/m"
        self.paths = _paths(self.base, kernel.paths, self.fs.os.path.join)
        opts = self.paths.options(kernel.extra if extra is None else extra)
        self.fs.mount("overlay", self.mount_path, "overlay", opts)

    def close(self) -> None:
        self.fs.umount(self.mount_path)


class ExportedOverlay:
    """The simulator's layers, exported to a real temp dir and mounted by the kernel."""

    def __init__(self, sim: SimOverlay, extra: str | None = None) -> None:
        from overlaysim.testing import kernel as K

        self.os: Any = os
        self.tmp = tempfile.mkdtemp(prefix="ovl-roundtrip-")
        self.base = os.path.join(self.tmp, "b")
        self.mounted = False
        self.fs_mounts: list[str] = []
        try:
            sim.fs.export_tree(sim.base, self.base, exact=True)
            if sim.stack.separate_fs:  # lower layers on filesystems of their own here too
                self.fs_mounts = K.move_lowers_to_tmpfs(self.base, len(sim.paths.lowers))
            self.mount_path = os.path.join(self.base, "m")
            self.paths = _paths(self.base, sim.paths, os.path.join)
            opts = self.paths.options(sim.extra if extra is None else extra)
            K.mount("overlay", self.mount_path, "overlay", opts)
            self.mounted = True
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        from overlaysim.testing import kernel as K

        if self.mounted:
            K.umount(self.mount_path, K.MNT_DETACH)
            self.mounted = False
        for path in self.fs_mounts:
            K.umount(path, K.MNT_DETACH)
        shutil.rmtree(self.tmp, ignore_errors=True)
