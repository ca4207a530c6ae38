"""Observation recorder shared by every conformance scenario.

A scenario runs once against the real kernel and once against HostFS; the two runs must
produce equal observation dicts.  Values that cannot be equal across two filesystems
(inode numbers, device numbers, absolute timestamps, file descriptor numbers, the base
directory's absolute path) are normalised here into *relations*, so a scenario author
never has to think about them: inodes become labels ``i1, i2, ...`` in order of first
appearance, devices ``d1, d2, ...``, times are compared against snapshots.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from collections.abc import Callable
from typing import Any

TICK = 0.01  # seconds; > one jiffy at HZ=250

_TYPES = {
    stat.S_IFREG: "reg",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "lnk",
    stat.S_IFCHR: "chr",
    stat.S_IFBLK: "blk",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "sock",
}


def errname(exc: OSError) -> str:
    """Symbolic errno name, or the raw number if the errno is unknown."""
    if exc.errno is None:
        return "None"
    return errno.errorcode.get(exc.errno, str(exc.errno))


class Recorder:
    """Collects ``key -> JSON value`` observations for one scenario run."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.obs: dict[str, Any] = {}
        self._inos: dict[tuple[int, int], str] = {}
        self._devs: dict[int, str] = {}

    # -- labels -----------------------------------------------------------------------
    def dev(self, dev: int) -> str:
        """Stable label for a device number (first seen = d1)."""
        return self._devs.setdefault(dev, f"d{len(self._devs) + 1}")

    def ino(self, st: Any) -> str:
        """Stable label for an inode (identified by st_dev and st_ino)."""
        key = (int(st.st_dev), int(st.st_ino))
        return self._inos.setdefault(key, f"i{len(self._inos) + 1}")

    def ino_of(self, dev: int, ino: int) -> str:
        """Label for a bare inode number seen on device ``dev`` (e.g. DirEntry.inode())."""
        return self._inos.setdefault((dev, ino), f"i{len(self._inos) + 1}")

    # -- normalisation ----------------------------------------------------------------
    def stat_dict(self, st: Any) -> dict[str, Any]:
        """The comparable part of a stat result: everything but absolute ino/dev/times.

        Times are left to :meth:`delta`/:meth:`times_eq`, where the scenario controls the
        clock: even "mtime == ctime" depends on whether a kernel tick fell between two
        coarse-grained stamps (e.g. write then unlink), so it is not a stable fact.
        """
        fmt = stat.S_IFMT(st.st_mode)
        out: dict[str, Any] = {
            "type": _TYPES.get(fmt, oct(fmt)),
            "perm": oct(stat.S_IMODE(st.st_mode)),
            "nlink": st.st_nlink,
            "uid": st.st_uid,
            "gid": st.st_gid,
            "size": st.st_size,
            "blocks": st.st_blocks,
            "blksize": st.st_blksize,
            "rdev": [os.major(st.st_rdev), os.minor(st.st_rdev)],
            "ino": self.ino(st),
            "dev": self.dev(st.st_dev),
        }
        return out

    def norm(self, value: Any) -> Any:
        """Turn a return value into JSON-comparable form."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.path(value)
        if isinstance(value, bytes | bytearray):
            return "b:" + repr(bytes(value))
        if hasattr(value, "st_mode") and hasattr(value, "st_ino"):
            return self.stat_dict(value)
        if isinstance(value, tuple | list):
            return [self.norm(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self.norm(v) for k, v in value.items()}
        return f"<{type(value).__name__}>"

    def path(self, p: str) -> str:
        """Replace the base directory prefix, which differs between the two runs."""
        if p == self.base or p.startswith(self.base + "/"):
            return "$BASE" + p[len(self.base) :]
        return p

    # -- recording --------------------------------------------------------------------
    def record(self, key: str, value: Any) -> None:
        """Store one observation; keys are unique within a scenario."""
        if key in self.obs:
            raise ValueError(f"duplicate observation key {key!r}")
        self.obs[key] = json.loads(json.dumps(self.norm(value)))

    def call(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn``; record its normalised result or its errno; return the raw result.

        Returns None when the call raised (so scenarios can keep going).
        """
        try:
            result = fn(*args, **kwargs)
        except OSError as exc:
            self.record(key, ["errno", errname(exc)])
            return None
        except (AttributeError, NotImplementedError, TypeError, ValueError) as exc:
            self.record(key, ["exc", type(exc).__name__])
            return None
        self.record(key, result)
        return result

    def fd(self, key: str, fn: Callable[..., int], *args: Any, **kwargs: Any) -> int | None:
        """Like :meth:`call` for calls returning a new fd: records ``"fd"``, not the number."""
        try:
            fd = fn(*args, **kwargs)
        except OSError as exc:
            self.record(key, ["errno", errname(exc)])
            return None
        self.record(key, "fd" if isinstance(fd, int) and fd >= 0 else fd)
        return fd

    def scan(self, key: str, o: Any, path: Any) -> None:
        """Record a scandir listing: per name the d_type answers and inode == lstat ino."""
        try:
            with o.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.record(key, ["errno", errname(exc)])
            return
        rows = []
        for e in entries:
            lst = o.lstat(e.path)
            rows.append(
                {
                    "name": e.name,
                    "path": self.path(e.path) if isinstance(e.path, str) else "fd",
                    "dir": e.is_dir(),
                    "file": e.is_file(),
                    "link": e.is_symlink(),
                    "dir_nf": e.is_dir(follow_symlinks=False),
                    "file_nf": e.is_file(follow_symlinks=False),
                    "inode_is_lstat_ino": e.inode() == lst.st_ino,
                    "stat_nf": self.stat_dict(e.stat(follow_symlinks=False)),
                }
            )
        self.record(key, rows)

    # -- times ------------------------------------------------------------------------
    @staticmethod
    def snap(o: Any, path: Any, *, follow: bool = False) -> Any:
        """Unrecorded stat used as a 'before' for :meth:`delta`.

        It then sleeps past one kernel tick (HZ=250): with multigrain timestamps (6.13+)
        a change may be stamped with the coarse clock floor, i.e. the *same* time as the
        last fine-grained stamp handed out (observed: link() right after mkfifo() left the
        parent's mtime unchanged, because tmpfs stamps the dir with the linked inode's
        ctime).  After a tick every later change gets a strictly later time.
        """
        st = o.fstat(path) if isinstance(path, int) else o.stat(path, follow_symlinks=follow)
        time.sleep(TICK)
        return st

    def delta(
        self, key: str, o: Any, path: Any, before: Any, *, follow: bool = False,
        atime: bool = False,
    ) -> None:
        """Record how mtime/ctime (and optionally atime) moved since ``before``."""
        after = self.snap(o, path, follow=follow)

        def rel(a: int, b: int) -> str:
            return "same" if a == b else ("later" if b > a else "earlier")

        out = {
            "mtime": rel(before.st_mtime_ns, after.st_mtime_ns),
            "ctime": rel(before.st_ctime_ns, after.st_ctime_ns),
        }
        if atime:
            out["atime"] = rel(before.st_atime_ns, after.st_atime_ns)
        self.record(key, out)

    def times_eq(self, key: str, st: Any) -> None:
        """Record which of atime/mtime/ctime are equal to each other."""
        self.record(
            key,
            {
                "a=m": st.st_atime_ns == st.st_mtime_ns,
                "m=c": st.st_mtime_ns == st.st_ctime_ns,
            },
        )

    def tree(self, key: str, o: Any, top: str) -> None:
        """Record a whole subtree: per relative path its stat dict, contents or symlink
        target, and xattrs (not followed)."""
        out: dict[str, Any] = {}
        stack = [""]
        while stack:
            rel = stack.pop()
            full = top + ("/" + rel if rel else "")
            st = o.lstat(full)
            row: dict[str, Any] = self.stat_dict(st)
            if stat.S_ISLNK(st.st_mode):
                row["target"] = self.path(o.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                fd = o.open(full, os.O_RDONLY)
                try:
                    row["data"] = "b:" + repr(o.read(fd, 1 << 20))
                finally:
                    o.close(fd)
            elif stat.S_ISDIR(st.st_mode):
                for name in sorted(o.listdir(full)):
                    stack.append(f"{rel}/{name}" if rel else name)
            names = sorted(o.listxattr(full, follow_symlinks=False))
            row["xattrs"] = {
                n: "b:" + repr(o.getxattr(full, n, follow_symlinks=False)) for n in names
            }
            out[rel or "."] = row
        self.record(key, {k: out[k] for k in sorted(out)})
