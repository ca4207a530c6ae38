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
from typing import Any

try:
    import mfusepy
except (ImportError, OSError, AttributeError) as _exc:  # no libfuse3 on this machine
    mfusepy = None
    IMPORT_ERROR: str | None = str(_exc) or type(_exc).__name__
else:
    IMPORT_ERROR = None

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


def configure(config: Any) -> None:
    """The high-level library's settings for an overlay served from a simulation.

    Names and attributes are not cached by the kernel beyond a request: entry,
    negative-entry and attribute timeouts are 0, so every lookup and stat asks the
    simulation, and a change made through the Python API while mounted (or an engine
    decision that changes what a name means) is seen by the very next call; file pages are
    dropped at each open (no ``kernel_cache``/``auto_cache``), so the next open reads the
    simulation's data. This costs a lookup per path component per call, the price of never
    serving a stale answer. ``use_ino`` passes the overlay's st_ino and d_ino through;
    ``nullpath_ok`` hands us the open file of fd-based calls instead of a path.
    ``hard_remove`` stays off: libfuse then keeps a hidden name for an unlinked open file,
    which a ``stat`` of that file needs (the kernel sends it with a path, not the open
    file); the operations turn that hiding rename into the real unlink (``Operations._hide``).
    """
    config.use_ino = 1
    config.readdir_ino = 0
    config.hard_remove = 0
    config.nullpath_ok = 1
    config.entry_timeout = 0.0
    config.negative_timeout = 0.0
    config.attr_timeout = 0.0
    config.ac_attr_timeout_set = 0
    config.kernel_cache = 0
    config.auto_cache = 0
    config.direct_io = 0
    config.intr = 0
    config.set_mode = config.set_uid = config.set_gid = 0


def _times(buf: Any) -> Times | None:
    if not buf:
        return None
    t = buf.contents
    return (t.actime.tv_sec, t.actime.tv_nsec), (t.modtime.tv_sec, t.modtime.tv_nsec)


if mfusepy is not None:

    class Fuse(mfusepy.FUSE):  # type: ignore[misc]
        """``mfusepy.FUSE`` with the wrappers above; runs the session in ``__init__``."""

        def _p(self, path: bytes | None) -> str | None:
            return None if path is None else path.decode(self.encoding, self.errors)

        @staticmethod
        def _fh(fip: Any) -> int | None:
            return int(fip.contents.fh) if fip else None

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
            fi.fh, direct = self.operations.open(self._p(path), fi.flags)
            fi.direct_io = 1 if direct else 0
            return 0

        def create(self, path: bytes, mode: int, fip: Any) -> int:
            fi = fip.contents
            fi.fh, direct = self.operations.create(self._p(path), mode, fi.flags)
            fi.direct_io = 1 if direct else 0
            return 0

        def init_fuse_3(self, conn: Any, config: Any) -> None:
            if config:
                configure(config.contents)
            self.operations.init("/")


def serve(ops: Any, mountpoint: str, options: list[str]) -> None:
    """Mount and serve until unmounted (or SIGINT/SIGTERM/SIGHUP, which unmount first).

    Single-threaded: the simulation is not thread-safe, and one thread keeps the order of
    requests the order of engine decisions. Raises RuntimeError if libfuse refused to mount.
    """
    assert mfusepy is not None
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
    """Drop the kernel's cached pages, attributes and name of ``path`` on the mount
    (``fuse_invalidate_path``); 0, or -errno (-ENOENT: the kernel had nothing cached)."""
    assert mfusepy is not None
    fn = mfusepy._libfuse.fuse_invalidate_path
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    fn.restype = ctypes.c_int
    return int(fn(handle, os.fsencode(path)))
