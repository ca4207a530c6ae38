"""``overlaysim umount``: unmount a simulated overlay and wait for its write-back.

The unmount itself is the kernel's (``umount2`` as root, ``fusermount3 -u`` otherwise), so a
busy mount is refused with EBUSY exactly as a kernel overlay would be; ``--lazy`` detaches it
at once and the daemon writes back when the last open file is closed. A daemon that died
(killed) leaves a dead mount (ENOTCONN for every caller): it is unmounted all the same and
reported, the upper dir untouched.

``umount(8)`` and ``fusermount3 -u`` return as soon as the kernel has let the mount go, before
the daemon has written back; ``overlaysim umount --wait`` (or a plain ``overlaysim umount``
after them) waits for that write-back through the mount's run record, and says how it ended.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import subprocess
import time

from overlaysim.fuse import runstate, writeback
from overlaysim.fuse.errors import UnmountError

_MNT_DETACH = 2
FSTYPE = "fuse.overlaysim"


def fstype_at(mountpoint: str) -> str | None:
    """The type of the filesystem mounted exactly at ``mountpoint`` (topmost), if any."""
    found = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                if target == mountpoint:
                    found = fields[sep + 1]
    except OSError:
        return None
    return found


def detach(mountpoint: str, lazy: bool) -> None:
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.umount2(os.fsencode(mountpoint), _MNT_DETACH if lazy else 0) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EBUSY:
            raise UnmountError(f"{mountpoint}: target is busy (a process has a file open or "
                               "its cwd there); stop it, or --lazy detaches the mount now and "
                               "writes back when the last file is closed")  # fmt: skip
        raise UnmountError(f"{mountpoint}: {os.strerror(code)}")
    cmd = ["fusermount3", "-u", *(["-z"] if lazy else []), mountpoint]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise UnmountError(f"fusermount3: {e.strerror}") from None
    if res.returncode:
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        raise UnmountError(lines[-1] if lines else f"fusermount3 failed on {mountpoint}")


def unmount(mountpoint: str, *, lazy: bool = False, timeout: float = 600.0,
            wait: bool = False) -> str:  # fmt: skip
    """Unmount and wait for the write-back; returns a note for the user ("" when all done).
    With ``wait``, leave the unmount to someone else (umount, fusermount3 -u) and only wait
    until the mount is gone and written back; nothing to wait for is not an error."""
    mp = os.path.realpath(mountpoint)
    rec = runstate.load(mp)
    kind = fstype_at(mp)
    if kind is None and rec is None:
        if wait:
            return ""
        raise UnmountError(f"{mp}: not mounted")
    if kind is not None and kind != FSTYPE:
        raise UnmountError(f"{mp}: not an overlaysim mount ({kind})")
    if kind is not None and not wait:
        detach(mp, lazy)
    if rec is None:
        return ""
    start = time.monotonic()
    while True:
        cur = runstate.load(mp)
        if cur is None:
            return ""
        if cur.status == runstate.FAILED:
            runstate.remove(mp)
            raise UnmountError(cur.error)
        if not cur.alive():
            runstate.remove(mp)
            done: list[str] = []
            if cur.upperdir and cur.workdir:
                done = writeback.recover(cur.upperdir, cur.workdir)
            if fstype_at(mp) == FSTYPE:
                detach(mp, lazy=True)  # a dead mount (ENOTCONN): --wait would wait forever
            if any(x.startswith("completed") for x in done):
                return (f"the daemon serving {mp} (pid {cur.pid}) died in its journalled "
                        "write-back; completed it")  # fmt: skip
            raise UnmountError(f"the daemon serving {mp} (pid {cur.pid}) died before "
                               f"writing back{cur.left_as_it_was()}")  # fmt: skip
        waited = time.monotonic() - start
        if lazy and cur.status == runstate.SERVING and waited > 2:
            return (f"{mp} detached; the daemon (pid {cur.pid}) writes back when the last "
                    "open file there is closed")  # fmt: skip
        if waited > timeout:
            raise UnmountError(f"the daemon serving {mp} (pid {cur.pid}) is still "
                               f"{cur.status} after {timeout:g}s")  # fmt: skip
        time.sleep(0.02)
