"""The one module that talks to libfuse 3, through mfusepy's high-level (path-based) binding.

Why mfusepy: the simulation's API is path-based (``fs.os``), as is libfuse's high-level API,
so no inode table of our own is needed; it is pure ctypes (pyfuse3 needs a C compiler, the
libfuse3 headers and trio, and its inode-based API would make us rebuild libfuse's path
table in Python). Where mfusepy's wrappers drop what overlay needs, this subclass passes it
on: the ``renameat2`` flags (NOREPLACE/EXCHANGE/WHITEOUT, silently dropped upstream, which
would turn EXCHANGE into a plain rename), the open file of fd-based setattr calls
(``fchmod``/``ftruncate``/``futimens`` on an unlinked file), ``UTIME_NOW``/``UTIME_OMIT``,
``direct_io`` per open file, and the mount's cache settings (see :func:`configure`).
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import threading
from typing import Any

try:
    import mfusepy
except (ImportError, OSError, AttributeError) as _exc:  # no libfuse3 on this machine
    mfusepy = None
    IMPORT_ERROR: str | None = str(_exc) or type(_exc).__name__
else:
    IMPORT_ERROR = None

#: Kernel read-ahead for the mount (KiB). The kernel caps it at 128 KiB when the mount starts,
#: so a sequential 1 MiB read took 8 READ requests, each a round trip through this single
#: thread; at 1 MiB it takes 3 (256 + 256 + 512 KiB, measured; libfuse allows up to 1 MiB).
READ_AHEAD_KB = 1024
# glibc mallopt parameters: allocations below the mmap threshold come from the heap, and the
# heap is not trimmed below the trim threshold. With the defaults, every 128 KiB+ buffer (a
# READ's data, libfuse's reply buffer) was a fresh mmap, its pages faulted in anew each time.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 4 << 20, 32 << 20

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
#: Times of a setattr: None for "now", else per time (sec, nsec) with UTIME_NOW/UTIME_OMIT.
Times = tuple[tuple[int, int], tuple[int, int]]


def available() -> str | None:
    """None when libfuse3 can be used, else why not."""
    return IMPORT_ERROR


def context() -> tuple[int, int, int, int]:
    """(uid, gid, pid, umask) of the process whose request is being served."""
    assert mfusepy is not None
    ctx = mfusepy._libfuse.fuse_get_context().contents
    return ctx.uid, ctx.gid, ctx.pid, ctx.umask


def configure(config: Any, timeout: float) -> None:
    """The high-level library's settings for an overlay served from a simulation.

    ``timeout`` (seconds) is how long the kernel may keep names, negative lookups and
    attributes without asking: the daemon caches (every change reaches the simulation
    through this mount, and :class:`overlaysim.fuse.ops.Operations` invalidates what an
    engine decision or a hard link changes behind the kernel's back); the in-process mount
    passes 0, since the Python API changes the simulation where no request sees it and the
    high-level library cannot invalidate a name (it hides the kernel's node ids). Whether
    an open keeps the file's cached pages is decided per open (``keep_cache``), never
    globally (``kernel_cache``/``auto_cache`` stay off). ``use_ino`` passes the overlay's
    st_ino and d_ino through; ``nullpath_ok`` hands us the open file of fd-based calls
    instead of a path. ``hard_remove`` stays off: libfuse then keeps a hidden name for an
    unlinked open file, which a ``stat`` of that file needs (the kernel sends it with a
    path, not the open file); the operations turn that hiding rename into the real unlink
    (``Operations._hide``).
    """
    config.use_ino = 1
    config.readdir_ino = 0
    config.hard_remove = 0
    config.nullpath_ok = 1
    config.entry_timeout = timeout
    config.negative_timeout = timeout
    config.attr_timeout = timeout
    config.ac_attr_timeout_set = 0
    config.kernel_cache = 0
    config.auto_cache = 0
    config.direct_io = 0
    config.intr = 0
    config.set_mode = config.set_uid = config.set_gid = 0


def tune_malloc() -> None:
    """Keep request-sized buffers in the heap (see _M_MMAP_THRESHOLD); no-op without glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    except (OSError, AttributeError):
        pass


def _mount_dev(mountpoint: str) -> str | None:
    """"MAJOR:MINOR" of the FUSE mount on ``mountpoint`` (topmost), from mountinfo: looking
    the path up instead would hold the mount, and an unmount racing it would fail (EBUSY)."""
    found = None
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 7 or "-" not in fields:
                continue
            target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if target == mountpoint and fields[fields.index("-") + 1].startswith("fuse"):
                found = fields[2]
    return found


def raise_read_ahead(mountpoint: str, kb: int = READ_AHEAD_KB) -> None:
    """Let the kernel read ahead ``kb`` KiB on the mount (its bdi's ``read_ahead_kb``), so a
    sequential read arrives in 1 MiB requests, not 128 KiB ones. Must run after the INIT
    reply, which caps read-ahead at what the kernel offered (128 KiB). Best effort: needs
    root and sysfs, and never lowers the setting."""
    try:
        dev = _mount_dev(mountpoint)
        if dev is None:
            return
        for name in (dev, f"{dev}-fuseblk"):
            knob = f"/sys/class/bdi/{name}/read_ahead_kb"
            if os.path.exists(knob):
                with open(knob, "r+", encoding="ascii") as f:
                    if int(f.read().strip() or 0) < kb:
                        f.seek(0)
                        f.write(str(kb))
                return
    except (OSError, ValueError):
        pass


def _times(buf: Any) -> Times | None:
    if not buf:
        return None
    t = buf.contents
    return (t.actime.tv_sec, t.actime.tv_nsec), (t.modtime.tv_sec, t.modtime.tv_nsec)


if mfusepy is not None:
    _STAT_SIZE = ctypes.sizeof(mfusepy.c_stat)

    class Fuse(mfusepy.FUSE):  # type: ignore[misc]
        """``mfusepy.FUSE`` with the wrappers above; runs the session in ``__init__``."""

        def __init__(self, operations: Any, mountpoint: str, **kwargs: Any) -> None:
            self.read_ahead_at: str | None = None  # set at INIT, done at the next GETATTR
            self.mountpoint_path = os.path.realpath(mountpoint)
            super().__init__(operations, mountpoint, **kwargs)

        def _p(self, path: bytes | None) -> str | None:
            return None if path is None else path.decode(self.encoding, self.errors)

        @staticmethod
        def _fh(fip: Any) -> int | None:
            return int(fip.contents.fh) if fip else None

        def fgetattr(self, path: bytes | None, buf: Any, fip: Any) -> int:
            """mfusepy's, filling ``struct stat`` field by field without its generic loop
            (a third of the Python time of a lookup)."""
            if self.read_ahead_at is not None:  # the INIT reply is in: the kernel took it
                raise_read_ahead(self.read_ahead_at)
                self.read_ahead_at = None
            a = self.operations.getattr(self._p(path), self._fh(fip))
            ctypes.memset(buf, 0, _STAT_SIZE)
            st = buf.contents
            st.st_mode, st.st_ino, st.st_nlink = a["st_mode"], a["st_ino"], a["st_nlink"]
            st.st_uid, st.st_gid, st.st_size = a["st_uid"], a["st_gid"], a["st_size"]
            st.st_rdev, st.st_blocks, st.st_blksize = a["st_rdev"], a["st_blocks"], a["st_blksize"]
            for key in ("st_atime", "st_mtime", "st_ctime"):
                ts = getattr(st, key + "spec")
                ts.tv_sec, ts.tv_nsec = divmod(a[key], 1_000_000_000)
            return 0

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return int(self.operations.rename(self._p(old), self._p(new), flags) or 0)

        def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
            return int(self.operations.chmod(self._p(path), mode, self._fh(fip)) or 0)

        def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
            uid = -1 if uid == 0xFFFFFFFF else uid
            gid = -1 if gid == 0xFFFFFFFF else gid
            return int(self.operations.chown(self._p(path), uid, gid, self._fh(fip)) or 0)

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            return int(self.operations.truncate(self._p(path), length, self._fh(fip)) or 0)

        def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
            return int(self.operations.utimens(self._p(path), _times(buf), self._fh(fip)) or 0)

        def open(self, path: bytes, fip: Any) -> int:
            fi = fip.contents
            fi.fh, direct, keep = self.operations.open(self._p(path), fi.flags)
            fi.direct_io = 1 if direct else 0
            fi.keep_cache = 1 if keep else 0
            return 0

        def create(self, path: bytes, mode: int, fip: Any) -> int:
            fi = fip.contents
            fi.fh, direct, _ = self.operations.create(self._p(path), mode, fi.flags)
            fi.direct_io = 1 if direct else 0
            return 0

        def init_fuse_3(self, conn: Any, config: Any) -> None:
            if config:
                configure(config.contents, self.operations.timeout)
            self.operations.init("/")
            self.read_ahead_at = self.mountpoint_path


def serve(ops: Any, mountpoint: str, options: list[str]) -> None:
    """Mount and serve until unmounted (or SIGINT/SIGTERM/SIGHUP, which unmount first).

    Single-threaded: the simulation is not thread-safe, and one thread keeps the order of
    requests the order of engine decisions. Raises RuntimeError if libfuse refused to mount.
    A daemon (serving from its main thread) also tunes malloc for request buffers.
    """
    assert mfusepy is not None
    if threading.current_thread() is threading.main_thread():
        tune_malloc()
    kwargs: dict[str, Any] = {}
    for opt in options:
        key, eq, value = opt.partition("=")
        kwargs[key] = value if eq else True
    Fuse(ops, mountpoint, foreground=True, nothreads=True, **kwargs)


def session_handle() -> int:
    """The running session's ``struct fuse *``; valid when called from inside a request
    (e.g. the ``init`` callback), usable afterwards from any thread."""
    assert mfusepy is not None
    return int(mfusepy._libfuse.fuse_get_context().contents.fuse or 0)


def invalidate(handle: int, path: str) -> int:
    """Drop the kernel's cached pages and attributes of ``path`` on the mount
    (``fuse_invalidate_path``; names stay, the high-level library cannot invalidate one);
    0, or -errno (-ENOENT: the kernel had nothing cached)."""
    global _invalidate_path
    if _invalidate_path is None:
        assert mfusepy is not None
        fn = mfusepy._libfuse.fuse_invalidate_path
        fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        fn.restype = ctypes.c_int
        _invalidate_path = fn
    return int(_invalidate_path(handle, os.fsencode(path)))


_invalidate_path: Any = None


_Job = tuple[list[str], threading.Event]


class Notifier:
    """Sends cache invalidations (``fuse_invalidate_path``) from a thread of its own.

    An invalidation drops the kernel inode's attributes and cached pages; dropping pages
    waits for their locks, and a page stays locked while a READ or WRITE of it waits in
    the queue this single-threaded daemon is not reading while it serves a request. Sent
    from inside the request, that would deadlock; sent from this thread, the request waits
    for it (so the caller's next call sees fresh attributes) but at most ``wait`` seconds:
    in that rare case the invalidation lands as soon as the queued request is served.
    """

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fuse invalidate")
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            paths, done = item
            for p in paths:
                invalidate(self.handle, p)
            done.set()

    def send(self, paths: list[str], wait: float) -> bool:
        """Invalidate ``paths``; True if done within ``wait`` seconds."""
        done = threading.Event()
        self._queue.put((paths, done))
        return done.wait(wait)

    def stop(self) -> None:
        self._queue.put(None)
