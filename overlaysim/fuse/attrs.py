"""Inode and attribute mapping between the simulation's ``os.stat_result`` and FUSE replies.

st_ino and d_ino are the overlay's own (the engine's xino/origin rules), passed through with
``use_ino``. What FUSE cannot carry: st_dev (the kernel gives every file the FUSE mount's
device, so layers on several filesystems or ``xino=off`` pseudo devices do not show);
everything else is the engine's value.
"""

from __future__ import annotations

import os
import stat as st
from typing import Any

from overlaysim.fuse.binding import UTIME_NOW, UTIME_OMIT, Times


def attrs(s: os.stat_result) -> dict[str, int]:
    """A getattr reply (times in ns, as mfusepy's ``use_ns`` wants)."""
    return {
        "st_mode": s.st_mode, "st_ino": s.st_ino, "st_nlink": s.st_nlink, "st_uid": s.st_uid,
        "st_gid": s.st_gid, "st_size": s.st_size, "st_rdev": s.st_rdev,
        "st_blocks": s.st_blocks, "st_blksize": s.st_blksize,
        "st_atime": s.st_atime_ns, "st_mtime": s.st_mtime_ns, "st_ctime": s.st_ctime_ns,
    }  # fmt: skip


def statfs(v: os.statvfs_result) -> dict[str, int]:
    return {
        "f_bsize": v.f_bsize, "f_frsize": v.f_frsize, "f_blocks": v.f_blocks,
        "f_bfree": v.f_bfree, "f_bavail": v.f_bavail, "f_files": v.f_files,
        "f_ffree": v.f_ffree, "f_favail": v.f_favail, "f_namemax": v.f_namemax,
    }  # fmt: skip


def dirent_mode(entry: Any) -> int:
    """The file type bits of a readdir entry (d_type), without a stat where d_type says it."""
    if entry.is_symlink():
        return st.S_IFLNK
    if entry.is_dir(follow_symlinks=False):
        return st.S_IFDIR
    if entry.is_file(follow_symlinks=False):
        return st.S_IFREG
    try:  # char/block devices (whiteouts), fifos, sockets: rare enough to stat
        return st.S_IFMT(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return 0


def resolve_times(times: Times | None, current: os.stat_result | None, now_ns: int
                  ) -> tuple[int, int] | None:  # fmt: skip
    """``utimensat`` times -> explicit (atime, mtime) ns, or None for "both now".

    UTIME_OMIT keeps the current value (``current`` must then be given), UTIME_NOW is the
    simulation's clock.
    """
    if times is None:
        return None
    (asec, ansec), (msec, mnsec) = times
    if ansec == UTIME_NOW and mnsec == UTIME_NOW:
        return None
    out = []
    for sec, nsec, cur in ((asec, ansec, "a"), (msec, mnsec, "m")):
        if nsec == UTIME_NOW:
            out.append(now_ns)
        elif nsec == UTIME_OMIT:
            assert current is not None
            out.append(current.st_atime_ns if cur == "a" else current.st_mtime_ns)
        else:
            out.append(sec * 1_000_000_000 + nsec)
    return out[0], out[1]


def needs_current(times: Times | None) -> bool:
    return times is not None and UTIME_OMIT in (times[0][1], times[1][1])
