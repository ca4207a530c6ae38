"""The table of filesystem types (fs/filesystems.c): what ``mount -t TYPE`` can find.

The VFS does not know the filesystems stacked on it. Each type registers a mount function
under its name, as a kernel module calls ``register_filesystem`` when it loads, and
``mount(2)`` looks the name up: an unknown type is ``ENODEV``. This keeps ``vfs/`` free of
imports of the rooms above it (the overlay engine registers itself from ``overlay/``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from overlaysim.vfs.node import fserr

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import Process
    from overlaysim.vfs.mount import Mount

# (process calling mount, source, data string, target path) -> the new, unattached mount
MountFn = Callable[["Process", str, str, str], "Mount"]

_TYPES: dict[str, MountFn] = {}


def register_filesystem(name: str, mount: MountFn) -> None:
    """Make ``name`` mountable. Registering a name twice is ``EBUSY``, as in Linux; the
    same function again is accepted (a module imported twice registers once)."""
    known = _TYPES.get(name)
    if known is not None and known is not mount:
        raise fserr(errno.EBUSY)
    _TYPES[name] = mount


def unregister_filesystem(name: str) -> None:
    """Forget ``name`` (``EINVAL`` when it was not registered); live mounts are unaffected."""
    if _TYPES.pop(name, None) is None:
        raise fserr(errno.EINVAL)


def get_fs_type(name: str) -> MountFn:
    """The mount function of ``name``, or ``ENODEV`` ("unknown filesystem type")."""
    try:
        return _TYPES[name]
    except KeyError:
        raise fserr(errno.ENODEV) from None


def filesystems() -> list[str]:
    """Registered type names in registration order, as /proc/filesystems lists them."""
    return list(_TYPES)
