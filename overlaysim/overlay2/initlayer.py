"""The ``<mount-id>-init`` layer: the mount points Docker puts below every container layer.

moby's ``daemon/initlayer`` runs on the merged view of a fresh read-write layer whose parent
is the image's top layer. For each path it first ``unlink``s every prefix (a file or symlink
in the image at ``/etc/mtab`` or ``/etc/resolv.conf`` is replaced; directories survive because
unlink fails on them), then creates what is missing: directories and empty files with mode
0755 (dockerd's umask 022 leaves 0755), and ``/etc/mtab -> /proc/mounts``. Written through
the overlay, the parents (``etc/``, ``dev/``) are copied up into the init layer's ``diff``.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overlaysim.overlay2.driver import Overlay2Driver

#: (path, "dir" | "file" | symlink target), in a fixed order (Go ranges over a map)
INIT_PATHS: tuple[tuple[str, str], ...] = (
    ("/dev/pts", "dir"),
    ("/dev/shm", "dir"),
    ("/proc", "dir"),
    ("/sys", "dir"),
    ("/.dockerenv", "file"),
    ("/etc/resolv.conf", "file"),
    ("/etc/hosts", "file"),
    ("/etc/hostname", "file"),
    ("/dev/console", "file"),
    ("/etc/mtab", "/proc/mounts"),
)


def _mkdir_all_new(o: Any, path: str, mode: int, uid: int, gid: int) -> None:
    """MkdirAllAndChownNew: create missing directories (mode minus umask), chown only those."""
    try:
        o.stat(path)
        return
    except FileNotFoundError:
        pass
    parent = posixpath.dirname(path)
    if parent != path:
        _mkdir_all_new(o, parent, mode, uid, gid)
    o.mkdir(path, mode)
    o.chown(path, uid, gid)


def setup(o: Any, root: str, uid: int = 0, gid: int = 0) -> None:
    """Populate ``root`` (a mounted init layer) as ``initlayer.Setup`` does."""
    for pth, typ in INIT_PATHS:
        prev = ""
        for part in pth.split("/")[1:]:
            prev += "/" + part
            try:
                o.unlink(root + prev)
            except OSError:
                pass
        full = root + pth
        try:
            o.stat(full)
            continue
        except FileNotFoundError:
            pass
        _mkdir_all_new(o, posixpath.dirname(full), 0o755, uid, gid)
        if typ == "dir":
            _mkdir_all_new(o, full, 0o755, uid, gid)
        elif typ == "file":
            fd = o.open(full, os.O_RDONLY | os.O_CREAT, 0o755)
            try:
                o.fchown(fd, uid, gid)
            finally:
                o.close(fd)
        else:
            o.symlink(typ, full)


def create_init(drv: Overlay2Driver, mount_id: str, parent: str) -> str:
    """``layerStore.initMount``: create, mount read-write, populate, unmount ``<id>-init``."""
    init_id = f"{mount_id}-init"
    drv.create_read_write(init_id, parent)
    root = drv.get(init_id)
    try:
        setup(drv.o, root)
    finally:
        drv.put(init_id)
    return init_id
