"""What the kernel caches of the mount, and which of it a request makes stale.

The kernel keeps names, attributes and file pages per kernel inode, and libfuse's high-level
library gives every *name* its own kernel inode. So the kernel itself refreshes what a request
names (the file it chmods, the dir it creates in, the pages it writes), and three things
change behind its back, which :class:`Tracker` collects for invalidation after the request:

* the other names of a hard-linked file (a write, chmod, link or unlink through one name
  changes size, mode, ctime, nlink seen through all): every name the kernel has seen with
  st_nlink > 1 is indexed by the simulation's (st_dev, st_ino);
* engine decisions on other paths: a copy-up stamps the ctime of each copied-up ancestor, an
  opaque/redirect/origin xattr the ctime of its directory, an index entry the link count;
  they are read from the engine's events;
* atime under ``relatime``: a read served from the page cache never reaches the simulation,
  so an open keeps the cached pages only if the last read we served left atime unchanged
  and the file has not changed since (:meth:`Tracker.may_keep`).
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Iterable

from overlaysim.events import Event

#: How long (s) the daemon lets the kernel keep names, negative lookups and attributes.
TIMEOUT = 30.0
#: How long (s) a request waits for its invalidations (see binding.Notifier).
WAIT = 0.2
_DAY_NS = 86_400 * 10**9
#: Events that change no attribute of the path they name.
_QUIET = frozenset({"mount", "umount", "exdev"})
Ident = tuple[int, int]


def ident(s: os.stat_result) -> Ident:
    return s.st_dev, s.st_ino


class Tracker:
    """Hard-link names, pending invalidations and atime-stable files of one mount.

    ``root`` is the simulation path served as the mount's root ("" : each event's own
    overlay mount point, which the daemon serves)."""

    def __init__(self, root: str = "") -> None:
        self.root = root.rstrip("/")
        self.names: dict[Ident, set[str]] = {}
        self.ident: dict[str, Ident] = {}
        self.stale: set[str] = set()
        self.stable: dict[Ident, tuple[int, int, int, bool]] = {}

    # --- hard-link names ----------------------------------------------------------------------
    def seen(self, path: str, s: os.stat_result) -> None:
        """A reply about ``path`` (the kernel now caches it)."""
        if s.st_nlink > 1 and not st.S_ISDIR(s.st_mode):
            self.add(path, ident(s))

    def add(self, path: str, key: Ident) -> None:
        if self.ident.get(path) == key:
            return
        self.forget(path)
        self.ident[path] = key
        self.names.setdefault(key, set()).add(path)

    def forget(self, path: str) -> Ident | None:
        key = self.ident.pop(path, None)
        if key is not None:
            names = self.names[key]
            names.discard(path)
            if not names:
                del self.names[key]
        return key

    def others(self, key: Ident | None, but: str | None = None) -> None:
        """The names of ``key`` other than ``but`` are stale."""
        names = self.names.get(key) if key is not None else None
        if names:
            self.stale.update(n for n in names if n != but)

    def changed(self, path: str, but_self: bool = True) -> None:
        """``path`` changed through its own name: its other names are stale."""
        if self.names:
            self.others(self.ident.get(path), path if but_self else None)

    def gone(self, path: str) -> None:
        """``path`` no longer names its file (unlink, rmdir, replaced by a rename)."""
        if self.ident:
            self.others(self.forget(path))
            self._forget_under(path)

    def moved(self, old: str, new: str, exchange: bool = False) -> None:
        """A rename: entries under ``old`` are now under ``new`` (and back for EXCHANGE)."""
        if not self.ident:
            return
        swap = {}
        for p in list(self.ident):
            if p == old or p.startswith(old + "/"):
                swap[p] = new + p[len(old) :]
            elif exchange and (p == new or p.startswith(new + "/")):
                swap[p] = old + p[len(new) :]
        keys = {p: self.forget(p) for p in swap}
        for p, q in swap.items():
            key = keys[p]
            if key is not None:
                self.add(q, key)
                self.others(key, q)  # rename stamps the moved file's ctime

    def _forget_under(self, path: str) -> None:
        prefix = path + "/"
        for p in [p for p in self.ident if p.startswith(prefix)]:
            self.forget(p)

    # --- engine decisions -----------------------------------------------------------------
    def events(self, events: Iterable[Event]) -> None:
        for e in events:
            if e.kind in _QUIET:
                continue
            base = self.root or e.mount.rstrip("/")
            if e.path == base or (not base and e.path == "/"):
                path = "/"
            elif e.path.startswith(base + "/"):
                path = e.path[len(base) :]
            else:
                continue
            self.stale.add(path)
            self.others(self.ident.get(path))

    def take(self) -> list[str]:
        out = sorted(self.stale)
        self.stale.clear()
        return out

    # --- atime and cached pages -------------------------------------------------------------
    def read_served(self, before: os.stat_result, after: os.stat_result, now: int) -> None:
        """The first read of an open file reached the simulation: did it stamp atime?"""
        key = ident(after)
        if before.st_atime_ns == after.st_atime_ns:
            old = now - after.st_atime_ns >= _DAY_NS  # not stamped although a day old: never is
            self.stable[key] = (after.st_atime_ns, after.st_mtime_ns, after.st_ctime_ns, old)
        else:
            self.stable.pop(key, None)
        if len(self.stable) > 65536:
            self.stable.clear()

    def may_keep(self, s: os.stat_result, now: int) -> bool:
        """Can an open keep the pages the kernel cached? Only if a read now would leave the
        file as the last read we served did (relatime: unless a day has passed since)."""
        got = self.stable.get(ident(s))
        if got is None or got[:3] != (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns):
            return False
        return got[3] or now - s.st_atime_ns < _DAY_NS
