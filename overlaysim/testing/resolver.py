"""A :class:`~overlaysim.overlay.layers.LayerResolver` for the real filesystem.

Lets :func:`~overlaysim.overlay.layers.validate_mount` predict what ``mount -t overlay``
answers on this machine, which is how the option checks are tested against the kernel.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Hashable

from overlaysim.overlay.layers import LayerRef
from overlaysim.overlay.params import unescape
from overlaysim.testing.kernel import MountInfo, decode_octal, mount_table

_FS_IOC_GETFSUUID = 0x80111500  # _IOR(0x15, 0, struct fsuuid2 {u8 len; u8 uuid[16]})


def _covering_mount(path: str, table: list[MountInfo]) -> MountInfo:
    """The mount a resolved absolute path lives on (the last of the longest mount points)."""
    best: MountInfo | None = None
    for entry in table:
        mp = entry.mount_point
        inside = path == mp or path.startswith(mp.rstrip("/") + "/")
        if inside and (best is None or len(mp) >= len(best.mount_point)):
            best = entry
    assert best is not None, "every path is below /"
    return best


def fs_uuid(path: str) -> bytes | None:
    """The superblock uuid the kernel sees (``FS_IOC_GETFSUUID``); zeros if it has none."""
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = fcntl.ioctl(fd, _FS_IOC_GETFSUUID, bytes(17))
    except OSError:
        return bytes(16)
    finally:
        os.close(fd)
    return raw[1 : 1 + raw[0]]


def _key(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


class RealResolver:
    """Resolves option paths with ``os`` and ``/proc/self/mountinfo``.

    Relative paths are resolved against the current directory, as ``mount(2)`` does.
    Ancestors are walked within the mount and, for a bind mount of a subdirectory, through
    another mount of the same filesystem's root when there is one.
    """

    def resolve(self, path: str) -> LayerRef:
        st = os.stat(path)
        real = os.path.realpath(path)
        table = mount_table()
        mnt = _covering_mount(real, table)
        ancestors: list[Hashable] = []
        cur = real
        while cur not in (mnt.mount_point, "/"):
            cur = os.path.dirname(cur)
            ancestors.append(_key(os.stat(cur)))
        if mnt.root != "/":
            full = [e for e in table if e.device == mnt.device and e.root == "/"]
            if full:
                top = full[-1].mount_point
                cur = os.path.normpath(os.path.join(top, mnt.root.lstrip("/")))
                while cur != top and cur != "/":
                    cur = os.path.dirname(cur)
                    ancestors.append(_key(os.stat(cur)))
        opts = set(mnt.mount_options.split(",")) | set(mnt.super_options.split(","))
        incompat = os.path.join(path, "work", "incompat", "volatile")
        return LayerRef(
            inode=_key(st), is_dir=stat.S_ISDIR(st.st_mode), fs=st.st_dev, mount=mnt.mount_id,
            read_only_mount="ro" in opts, ancestors=tuple(ancestors),
            stack_depth=1 if mnt.fstype == "overlay" else 0,
            incompat_volatile=os.path.isdir(incompat), fs_uuid=fs_uuid(path),
            name="/".join(real.split("/")[-2:]),
        )  # fmt: skip

    def in_use(self, inode: Hashable) -> bool:
        """Upper and work dirs of live overlays (those mounted with absolute paths)."""
        for entry in mount_table():
            if entry.fstype != "overlay":
                continue
            for opt in entry.super_options.split(","):
                key, _, value = opt.partition("=")
                path = unescape(decode_octal(value))
                if key in ("upperdir", "workdir") and os.path.isabs(path):
                    try:
                        if _key(os.stat(path)) == inode:
                            return True
                    except OSError:
                        pass
        return False
