"""The FUSE operations, each one ``fs.os`` call on the process that serves the mount.

Every request runs with the caller's credentials (uid, gid, supplementary groups from
``/proc/PID/status``, umask), so the simulation makes the permission decisions the kernel's
overlay would make: the mount does not use ``default_permissions``. Open files and
directories are descriptors of that process (so an unlinked open file keeps working, as on
Linux); a FUSE file handle is our own number for one of them.

The kernel caches names, attributes and pages (:mod:`overlaysim.fuse.cache` says what goes
stale and why); after each request, what it made stale is invalidated before the reply.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from overlaysim.fuse import attrs, binding, cache
from overlaysim.fuse.binding import Times
from overlaysim.vfs.hostfs import Process

F = TypeVar("F", bound=Callable[..., Any])
_HIDDEN = re.compile(r"\.fuse_hidden[0-9a-f]{16}")
Context = Callable[[], tuple[int, int, int, int]]
_FALLOC_FL_KEEP_SIZE = 1
_RENAME_EXCHANGE = 2
#: How long (s) a caller's supplementary groups are trusted before /proc is read again.
GROUPS_TTL = 1.0
# Flags the kernel has already acted on (or that mean nothing to a simulated file): FUSE
# passes the write offset, so O_APPEND must not append a second time.
_OPEN_DROP = os.O_APPEND | os.O_DIRECT | os.O_ASYNC | os.O_NOCTTY | os.O_CREAT | os.O_EXCL


class _Handle:
    __slots__ = ("direct", "entries", "fd", "fresh", "path")

    def __init__(self, fd: int, path: str = "", direct: bool = False) -> None:
        self.fd = fd
        self.path = path  # the name it was opened by (its kernel inode); renames follow
        self.direct = direct
        self.fresh = True  # no read served yet (see cache.Tracker.read_served)
        self.entries: list[tuple[str, dict[str, int], int]] | None = None


def request(fn: F) -> F:
    """Serialise the request, act as its caller, invalidate what it made stale, then tell
    the listener (``--explain``)."""

    @functools.wraps(fn)
    def wrapper(self: Operations, *args: Any) -> Any:
        with self.mutex:
            pid = self.enter()
            log = self.log
            mark = len(log)
            try:
                return fn(self, *args)
            finally:
                if len(log) > mark:
                    self.cache.events(log.since(mark))
                if self.cache.stale:
                    self.invalidate(self.cache.take())
                if self.after is not None:
                    self.after(pid)

    return wrapper  # type: ignore[return-value]


class Operations:
    """What mfusepy calls (it maps each method name to the libfuse operation)."""

    use_ns = True  # times in ns (mfusepy)

    def __init__(self, proc: Process, context: Context, *,
                 after: Callable[[int], None] | None = None,
                 ready: Callable[[], None] | None = None,
                 caching: bool = True, root: str = "") -> None:  # fmt: skip
        """``caching``: let the kernel keep names, attributes and pages (the daemon, where
        every change comes through the mount); off, nothing outlives a request but an open
        file's pages (the in-process mount, whose HostFS the Python API changes too).
        ``root``: the simulation path served ("" : the overlay's mount point)."""
        self.proc = proc
        self.o = proc.os
        self.log = proc.fs.events
        self.timeout = cache.TIMEOUT if caching else 0.0
        self.caching = caching
        self.cache = cache.Tracker(root)
        self.notifier: binding.Notifier | None = None
        self.session = 0  # libfuse's struct fuse *, once mounted
        self.context = context
        self.after = after
        self.ready = ready
        self.mutex = threading.RLock()  # not "lock": mfusepy would take it for POSIX locks
        self.handles: dict[int, _Handle] = {}
        self._numbers = itertools.count(1)
        self.hidden: dict[str, int] = {}  # libfuse's ".fuse_hidden*" name -> a dup'd fd
        self._cred: tuple[int, int, int] | None = None
        self._groups: dict[tuple[int, int, int], tuple[float, frozenset[int]]] = {}
        self._cred_until = 0.0
        self._umask = -1

    # --- the caller -------------------------------------------------------------------------
    def enter(self) -> int:
        uid, gid, pid, umask = self.context()
        if self._cred != (uid, gid, pid) or (uid and time.monotonic() > self._cred_until):
            self._cred = (uid, gid, pid)
            self.proc.set_cred(uid, gid, self._groups_of(pid, uid, gid))
        if umask != self._umask:
            self._umask = umask
            self.o.umask(umask & 0o777)
        return pid

    def _groups_of(self, pid: int, uid: int, gid: int) -> frozenset[int]:
        """Supplementary groups, as libfuse's fuse_getgroups reads them (root needs none).

        Read from ``/proc/PID/status`` at most once per GROUPS_TTL per (pid, uid, gid): a
        process's groups change only by setgroups(2) (CAP_SETGID, normally followed by a
        uid change, a new key), and a recycled pid within that time is far-fetched."""
        if uid == 0 or pid <= 0:
            return frozenset()
        key = (pid, uid, gid)
        now = time.monotonic()
        self._cred_until = now + GROUPS_TTL
        cached = self._groups.get(key)
        found = cached[1] if cached is not None and cached[0] > now else None
        if found is None:
            found = frozenset()
            try:
                with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                    for line in f:
                        if line.startswith("Groups:"):
                            found = frozenset(int(g) for g in line.split()[1:])
                            break
            except (OSError, ValueError):
                pass
            if len(self._groups) > 256:
                self._groups.clear()
            self._groups[key] = (now + GROUPS_TTL, found)
        return found

    # --- handles ----------------------------------------------------------------------------
    def _install(self, fd: int, path: str = "", direct: bool = False) -> int:
        n = next(self._numbers)
        self.handles[n] = _Handle(fd, path, direct)
        return n

    def invalidate(self, paths: list[str], wait: float = cache.WAIT) -> None:
        """Have the kernel drop what it cached of ``paths`` (see binding.Notifier)."""
        if not paths or not self.session:
            return
        if self.notifier is None:  # started on first use: most mounts never need it
            self.notifier = binding.Notifier(self.session)
        self.notifier.send(paths, wait)

    def open_paths(self) -> list[str]:
        return sorted({h.path for h in self.handles.values() if h.path})

    def _moved(self, old: str, new: str, exchange: bool) -> None:
        self.cache.moved(old, new, exchange)
        for h in self.handles.values():
            p = h.path
            if p == old or p.startswith(old + "/"):
                h.path = new + p[len(old) :]
            elif exchange and (p == new or p.startswith(new + "/")):
                h.path = old + p[len(new) :]

    def _changed_fd(self, h: _Handle) -> None:
        """The open file ``h`` changed: its other names are stale."""
        if self.cache.names:
            self.cache.others(cache.ident(self.o.fstat(h.fd)), h.path)

    def _fd(self, fh: int) -> int:
        h = self.handles.get(fh)
        if h is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return h.fd

    def _direct(self, fd: int) -> bool:
        """Hard-linked files bypass the page cache: libfuse gives each name its own kernel
        inode, whose cached pages would not see a write made through the other name."""
        return self.o.fstat(fd).st_nlink > 1

    def _at(self, path: str | None, fh: int | None = None) -> tuple[Any, dict[str, Any]]:
        """What a call acts on: the open file, an unlinked open file by its hidden name, or
        the path (never following a final symlink: the kernel resolved it already)."""
        if fh:
            return self._fd(fh), {}
        if path in self.hidden:
            return self.hidden[path], {}
        return path, {"follow_symlinks": False}

    def _hide(self, path: str, hidden: str) -> bool:
        """libfuse's answer to unlinking an open file is renaming it to ``.fuse_hidden*``
        (so that later stat/fstat calls, which come with a path, still find it); a visible
        rename in the upper dir would be wrong, so the simulation unlinks it for real and we
        keep a descriptor to serve the hidden name until its last handle is released.
        False (nothing done) when no handle holds the file: then it is a program's rename."""
        s = self.o.lstat(path)
        keep = -1
        for h in self.handles.values():
            t = self.o.fstat(h.fd)
            if (t.st_dev, t.st_ino) == (s.st_dev, s.st_ino):
                keep = self.o.dup(h.fd)
                break
        if keep < 0:
            return False
        try:
            self.o.unlink(path)
        except OSError:
            self.o.close(keep)
            raise
        self.hidden[hidden] = keep
        return True

    def _forget_hidden(self) -> None:
        """Drop hidden names whose file no handle holds any more."""
        if not self.hidden:
            return
        held = set()
        for h in self.handles.values():
            t = self.o.fstat(h.fd)
            held.add((t.st_dev, t.st_ino))
        for name, fd in list(self.hidden.items()):
            t = self.o.fstat(fd)
            if (t.st_dev, t.st_ino) not in held:
                self.o.close(fd)
                del self.hidden[name]

    # --- lifecycle --------------------------------------------------------------------------
    def init(self, path: str) -> None:
        self.session = binding.session_handle()
        if self.ready is not None:
            self.ready()

    def destroy(self, path: str) -> None:
        if self.notifier is not None:
            self.notifier.stop()
            self.notifier = None

    # --- attributes -------------------------------------------------------------------------
    @request
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        target, _ = self._at(path, fh)
        if not isinstance(target, int):
            s = self.o.lstat(target)
            if s.st_nlink > 1:
                self.cache.seen(target, s)
            return attrs.attrs(s)
        s = self.o.fstat(target)
        reply = attrs.attrs(s)
        if reply["st_nlink"] and self._is_hidden(s):
            # libfuse takes one link off what a hidden name reports (it counted the hidden
            # name itself); ours was really unlinked, so give that link back. An open lower
            # file keeps the lower inode's count on a kernel overlay.
            reply["st_nlink"] += 1
        return reply

    def _is_hidden(self, s: os.stat_result) -> bool:
        for fd in self.hidden.values():
            t = self.o.fstat(fd)
            if (t.st_dev, t.st_ino) == (s.st_dev, s.st_ino):
                return True
        return False

    @request
    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> None:
        target, _ = self._at(path, fh)
        self.o.chmod(target, mode & 0o7777)
        self._changed(path, fh)

    @request
    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> None:
        target, kw = self._at(path, fh)
        self.o.chown(target, uid, gid, **kw)
        self._changed(path, fh)

    @request
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        target, _ = self._at(path, fh)
        self.o.truncate(target, length)
        self._changed(path, fh)

    @request
    def utimens(self, path: str | None, times: Times | None, fh: int | None = None) -> None:
        target, kw = self._at(path, fh)
        current = None
        if attrs.needs_current(times):
            current = self.o.fstat(target) if isinstance(target, int) else self.o.lstat(target)
        ns = attrs.resolve_times(times, current, self.proc.fs.clock())
        if ns is None:
            self.o.utime(target, None, **kw)
        else:
            self.o.utime(target, ns=ns, **kw)
        self._changed(path, fh)

    def _changed(self, path: str | None, fh: int | None) -> None:
        """An attribute of the file at ``path`` (or open as ``fh``) changed."""
        if not self.cache.names:
            return
        h = self.handles.get(fh) if fh else None
        if h is not None:
            self._changed_fd(h)
        elif path is not None:
            self.cache.changed(path)

    @request
    def access(self, path: str, amode: int) -> None:
        self.o.lstat(path)
        if amode and not self.o.access(path, amode):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), path)

    @request
    def statfs(self, path: str | None) -> dict[str, int]:
        return attrs.statfs(self.o.statvfs(path or "/"))

    # --- names ------------------------------------------------------------------------------
    @request
    def readlink(self, path: str) -> str:
        return str(self.o.readlink(path))

    @request
    def mknod(self, path: str, mode: int, dev: int) -> None:
        self.o.mknod(path, mode, dev)

    @request
    def mkdir(self, path: str, mode: int) -> None:
        self.o.mkdir(path, mode)

    @request
    def unlink(self, path: str) -> None:
        if path in self.hidden:  # already unlinked in the simulation (see _hide)
            self.o.close(self.hidden.pop(path))
            return
        self.o.unlink(path)
        self.cache.gone(path)

    @request
    def rmdir(self, path: str) -> None:
        self.o.rmdir(path)
        self.cache.gone(path)

    @request
    def symlink(self, path: str, target: str) -> None:
        self.o.symlink(target, path)

    @request
    def link(self, path: str, target: str) -> None:
        self.o.link(target, path, follow_symlinks=False)
        key = cache.ident(self.o.lstat(path))
        self.cache.add(target, key)
        self.cache.add(path, key)
        self.cache.others(key, path)  # the old name's link count and ctime

    @request
    def rename(self, old: str, new: str, flags: int = 0) -> None:
        if not flags and _HIDDEN.fullmatch(posixpath.basename(new)) and (
            posixpath.dirname(old) == posixpath.dirname(new) and new not in self.hidden
        ) and self._hide(old, new):
            self.cache.gone(old)
            return
        if old in self.hidden or new in self.hidden:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), old)
        self.o.renameat2(old, new, flags)
        exchange = bool(flags & _RENAME_EXCHANGE)
        if not exchange:
            self.cache.gone(new)
        self._moved(old, new, exchange)

    # --- files ------------------------------------------------------------------------------
    @request
    def open(self, path: str, flags: int) -> tuple[int, bool, bool]:
        """(handle, direct_io, keep_cache): pages cached by earlier opens are kept when
        reading them cannot differ from a read here (see cache.Tracker.may_keep)."""
        fd = self.o.open(path, (flags & ~_OPEN_DROP) | os.O_NOFOLLOW)
        s = self.o.fstat(fd)
        direct = s.st_nlink > 1
        if flags & os.O_TRUNC:
            self.cache.changed(path)
        keep = self.caching and not direct and self.cache.may_keep(s, self.proc.fs.clock())
        return self._install(fd, path, direct), direct, keep

    @request
    def create(self, path: str, mode: int, flags: int) -> tuple[int, bool, bool]:
        fd = self.o.open(path, (flags & ~(os.O_APPEND | os.O_DIRECT | os.O_ASYNC)) | os.O_CREAT,
                         mode)  # fmt: skip
        direct = self._direct(fd)
        if flags & os.O_TRUNC and direct:
            self.cache.changed(path)
        return self._install(fd, path, direct), direct, False

    @request
    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        h = self.handles.get(fh)
        if h is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if not h.fresh and not h.direct:
            return bytes(self.o.pread(h.fd, size, offset))
        before = self.o.fstat(h.fd)
        data = bytes(self.o.pread(h.fd, size, offset))
        after = self.o.fstat(h.fd)
        if h.fresh:
            h.fresh = False
            self.cache.read_served(before, after, self.proc.fs.clock())
        if h.direct and before.st_atime_ns != after.st_atime_ns:
            self._changed_fd(h)  # the other names' atime
        return data

    @request
    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        h = self.handles.get(fh)
        if h is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        n = int(self.o.pwrite(h.fd, data, offset))
        self._changed_fd(h)
        return n

    # No ``flush``: close(2) has nothing to write back here, and without the operation
    # libfuse answers ENOSYS once, after which the kernel sends no FLUSH at each close.

    @request
    def release(self, path: str | None, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is not None:
            self.o.close(h.fd)
            self._forget_hidden()

    @request
    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        self.o.fsync(self._fd(fh))

    @request
    def fallocate(self, path: str | None, mode: int, offset: int, length: int, fh: int) -> None:
        """Mode 0 and KEEP_SIZE: the simulated file has no blocks to reserve, only a size."""
        if mode & ~_FALLOC_FL_KEEP_SIZE:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        if offset < 0 or length <= 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        fd = self._fd(fh)
        if not mode & _FALLOC_FL_KEEP_SIZE and offset + length > self.o.fstat(fd).st_size:
            self.o.ftruncate(fd, offset + length)
            self._changed(path, fh)

    # --- directories ------------------------------------------------------------------------
    @request
    def opendir(self, path: str) -> int:
        """Listings are never cached by the kernel: libfuse's high-level opendir does not
        pass ``cache_readdir`` on, so every readdir asks the simulation."""
        return self._install(self.o.open(path, os.O_RDONLY | os.O_DIRECTORY))

    @request
    def readdir_with_offset(self, path: str | None, offset: int, fh: int
                            ) -> Iterator[tuple[str, dict[str, int], int]]:  # fmt: skip
        h = self.handles.get(fh)
        if h is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if offset == 0 or h.entries is None:  # first read or rewinddir: a fresh listing
            h.entries = self._listing(h.fd)
        return itertools.islice(h.entries, offset, None)

    def _listing(self, fd: int) -> list[tuple[str, dict[str, int], int]]:
        o = self.o
        here = o.fstat(fd).st_ino
        try:
            up = o.lstat("..", dir_fd=fd).st_ino
        except OSError:
            up = here
        rows: list[tuple[str, int, int]] = [(".", here, 0o040000), ("..", up, 0o040000)]
        for entry in o.scandir(fd):
            rows.append((entry.name, entry.inode(), attrs.dirent_mode(entry)))
        return [(name, {"st_ino": ino, "st_mode": mode}, i + 1)
                for i, (name, ino, mode) in enumerate(rows)]  # fmt: skip

    @request
    def releasedir(self, path: str | None, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is not None:
            self.o.close(h.fd)

    @request
    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> None:
        return None

    # --- xattrs -----------------------------------------------------------------------------
    @request
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        target, kw = self._at(path)
        return bytes(self.o.getxattr(target, name, **kw))

    @request
    def listxattr(self, path: str) -> list[str]:
        target, kw = self._at(path)
        return list(self.o.listxattr(target, **kw))

    @request
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> None:
        target, kw = self._at(path)
        self.o.setxattr(target, name, value, options, **kw)
        self.cache.changed(path)

    @request
    def removexattr(self, path: str, name: str) -> None:
        target, kw = self._at(path)
        self.o.removexattr(target, name, **kw)
        self.cache.changed(path)
