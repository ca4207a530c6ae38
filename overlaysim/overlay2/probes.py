"""The feature probes dockerd runs against the kernel at start, run against our overlay engine.

moby decides "Native Overlay Diff" and "Using metacopy" (``docker info``) by mounting small
overlays in temporary directories of the driver home and looking at what the kernel wrote
(``check.go``): an opaque directory must not stay opaque when copied up (kernel < 4.8 bug),
and a directory rename must fail with EXDEV or leave no ``redirect`` xattr; a chmod of a lower
file must not produce a ``metacopy`` xattr. Running the same steps against overlaysim's engine
lets the status lines follow what the simulated kernel actually does.
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from overlaysim.overlay2.driver import Overlay2Driver


def _tempdir(drv: Overlay2Driver, prefix: str) -> str:
    n = drv.fs.clock() % 10**9
    while True:
        path = posixpath.join(drv.home, f"{prefix}{n}")
        try:
            drv.o.mkdir(path, 0o700)
            return path
        except FileExistsError:
            n += 1


def _getxattr(drv: Overlay2Driver, path: str, name: str) -> bytes:
    try:
        return bytes(drv.o.getxattr(path, name, follow_symlinks=False))
    except OSError as e:
        if e.errno == errno.ENODATA:
            return b""
        raise


def native_diff_problem(drv: Overlay2Driver) -> str | None:
    """moby ``doesSupportNativeDiff``: None when native diffs are safe, else the reason."""
    o = drv.o
    td = _tempdir(drv, "opaque-bug-check")
    try:
        for d in ("l1/d", "l1/d1", "l2/d", "l3", "work", "merged"):
            o.makedirs(posixpath.join(td, d), 0o755)
        o.setxattr(posixpath.join(td, "l2", "d"), "trusted.overlay.opaque", b"y",
                   follow_symlinks=False)  # fmt: skip
        merged = posixpath.join(td, "merged")
        opts = f"lowerdir={td}/l2:{td}/l1,upperdir={td}/l3,workdir={td}/work"
        try:
            drv.proc.mount("overlay", merged, "overlay", opts)
        except OSError as e:
            return f"failed to mount overlay: {e.strerror}"
        try:
            fd = o.open(
                posixpath.join(merged, "d", "f"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
            )
            o.close(fd)
            if _getxattr(drv, posixpath.join(td, "l3", "d"), "trusted.overlay.opaque") == b"y":
                return "opaque flag erroneously copied up, consider update to kernel 4.8 or later to fix"
            try:
                o.rename(posixpath.join(merged, "d1"), posixpath.join(merged, "d2"))
            except OSError as e:
                if e.errno == errno.EXDEV:
                    return None
                return f"failed to rename dir in merged directory: {e.strerror}"
            redirect = _getxattr(drv, posixpath.join(td, "l3", "d2"), "trusted.overlay.redirect")
            if redirect == b"d1":
                return "kernel has CONFIG_OVERLAY_FS_REDIRECT_DIR enabled"
            return None
        finally:
            drv.detach(merged)
    finally:
        drv.rmtree(td)


def uses_metacopy(drv: Overlay2Driver) -> bool:
    """moby ``usingMetacopy``: does a chmod through a default mount copy up metadata only?"""
    o = drv.o
    td = _tempdir(drv, "metacopy-check")
    try:
        for d in ("l1", "l2", "work", "merged"):
            o.mkdir(posixpath.join(td, d), 0o755)
        fd = o.open(posixpath.join(td, "l1", "f"), os.O_WRONLY | os.O_CREAT, 0o700)
        o.close(fd)
        merged = posixpath.join(td, "merged")
        opts = f"lowerdir={td}/l1,upperdir={td}/l2,workdir={td}/work"
        drv.proc.mount("overlay", merged, "overlay", opts)
        try:
            o.chmod(posixpath.join(merged, "f"), 0o600)
            return _getxattr(drv, posixpath.join(td, "l2", "f"), "trusted.overlay.metacopy") != b""
        finally:
            drv.detach(merged)
    finally:
        drv.rmtree(td)
