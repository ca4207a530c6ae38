"""Apply a validated layer through an os-like module, the two ways real tools do it.

``native``: Docker's overlay2 ApplyDiff. Each layer goes into its own directory; ``.wh.x``
becomes a char device 0/0 and ``.wh..wh..opq`` the ``trusted.overlay.opaque=y`` xattr, so the
kernel (or our overlay engine) merges the stack. ``flat``: one tree for the whole image, as
umoci, crane and Docker's naive driver do: whiteouts delete, opaque markers delete the lower
children this layer did not write, and names resolve through symlinks of *earlier layers*.
The same plan applied both ways is how divergences are found.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from dataclasses import dataclass, field
from typing import Any, Literal

from overlaysim.image.entry import Entry
from overlaysim.image.findings import Findings
from overlaysim.image.layer import LayerPlan, paused_gc
from overlaysim.image.resolve import NotADir, Resolver, rmtree
from overlaysim.vfs.bulk import file_maker

Mode = Literal["native", "flat"]
OPAQUE_XATTR = "trusted.overlay.opaque"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_TYPE = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "fifo": stat.S_IFIFO}
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
# a handle on the directory entries are created in: O_PATH needs no read permission on it
_DIRFD = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC


def _umask(o: Any) -> int:
    """The module's current umask (read by setting and restoring it); 0o777 if unknown."""
    try:
        old = int(o.umask(0o22))
        o.umask(old)
    except (AttributeError, OSError, TypeError):
        return 0o777
    return old


@dataclass
class ApplyResult:
    layer: int
    mode: Mode
    written: int = 0
    whiteouts: int = 0
    opaques: int = 0
    removed: int = 0
    through_symlink: list[str] = field(default_factory=list)


class Applier:
    """Writes LayerPlans below ``root`` (which must exist) in ``o``, one ``apply`` per layer.

    Entries are created relative to a descriptor on their parent directory (one ``*at`` call
    walks one component, not the whole path), and a new file gets its owner, xattrs, mode and
    times through its own descriptor: tar streams list a directory's entries together, so one
    directory handle serves a run of entries.
    """

    def __init__(
        self, o: Any, root: str, mode: Mode, findings: Findings, max_hops: int = 40
    ) -> None:
        self.o = o
        self.root = root
        self.mode = mode
        self.findings = findings
        self.res = Resolver(o, root, max_hops)
        # What exists below a root that was empty when this applier started on it (it built
        # all of it, over one or more layers): path -> is a directory. Saves an lstat per
        # entry; dropped (None) as soon as anything is removed.
        self._known: dict[str, bool] | None = None
        self._umask = _umask(o)
        self._dpath = ""  # the directory self._dfd refers to ('' when none is open)
        self._dfd = -1
        # (uid, gid) a file created in that directory gets (learnt from the first one; it
        # depends on our credentials and the directory's gid and setgid bit only)
        self._new_owner: tuple[int, int] | None = None
        # one int object per distinct timestamp: inodes keep them, 40 bytes each otherwise
        self._times: dict[int, int] = {}
        # fs.os makes a plain new file in one call (None for other os-like modules)
        self._make = file_maker(o)

    # --- helpers ------------------------------------------------------------------------------
    def _dir(self, d: str) -> int:
        """A descriptor on directory ``d`` (resolved: no symlink in it), reused while it lasts."""
        if d != self._dpath:
            self._close_dir()
            self._dfd = self.o.open(d, _DIRFD)
            self._dpath = d
        return self._dfd

    def _close_dir(self) -> None:
        self._new_owner = None
        if self._dpath:
            self._dpath = ""
            self.o.close(self._dfd)

    def _remove(self, path: str) -> None:
        self._close_dir()  # the directory it names may be the one removed
        rmtree(self.o, path)
        self.res.invalidate()
        self._known = None

    def _exists(self, d: str, base: str, final: str) -> bool | None:
        """None if ``final`` (``d/base``, ``d`` resolved) is absent, else whether it is a dir."""
        if self._known is not None:
            return self._known.get(final)
        try:
            st = self.o.lstat(base, dir_fd=self._dir(d))
        except FileNotFoundError:
            return None
        return stat.S_ISDIR(st.st_mode)

    def _note(
        self, plan: LayerPlan, code: str, msg: str, path: str, level: Any = "warning"
    ) -> None:
        self.findings.add(code, f"{self.mode}: {msg}", path, plan.index, level)

    def _locate(
        self, plan: LayerPlan, e: Entry, rel: str, result: ApplyResult
    ) -> tuple[str, str] | None:
        try:
            d, base = self.res.parent(rel, create=True)
        except NotADir as exc:
            self._note(
                plan,
                "parent-not-dir",
                f"parent {exc.rel!r} is not a directory; entry dropped",
                e.path,
            )
            return None
        if self._known is not None:
            for c in self.res.created:
                self._known[c] = True
        if self.res.via_symlink:
            result.through_symlink.append(e.path)
            self._note(
                plan,
                "through-symlink",
                f"resolved through a symlink to {d[len(self.root) :] or '/'}",
                e.path,
                "info",
            )
        return d, base

    # --- main ---------------------------------------------------------------------------------
    def apply(self, plan: LayerPlan) -> ApplyResult:
        try:
            with paused_gc():
                return self._apply(plan)
        finally:
            self._close_dir()

    def _apply(self, plan: LayerPlan) -> ApplyResult:
        result = ApplyResult(plan.index, self.mode)
        dirs: list[tuple[str, Entry]] = []
        unpacked: set[str] = set()
        if self._known is None and not self.o.listdir(self.root):
            self._known = {}
        flat = self.mode == "flat"
        native = not flat
        make, times = self._make, self._times
        # The lane: files that follow a file made in the same directory (tar lists a
        # directory's members together) are made in one call each, skipping resolution.
        # Set only after the general code made a file there (not through a symlink) and
        # reset whenever the general code runs, so the directory descriptor is still open.
        lane_rel: str | None = None  # their path prefix ('' at the root, else 'a/b/')
        lane_n, lane_prefix, lane_dfd = 0, "", -1
        for e in plan.entries:
            if lane_rel is not None and e.kind == "file" and not e.xattrs:
                rel = e.path
                if rel.startswith(lane_rel) and rel.find("/", lane_n) < 0:
                    base = rel[lane_n:]
                    final = lane_prefix + base
                    known = self._known
                    if known is None or final not in known:
                        if len(times) > 4096:  # a layer of distinct times: keep the table small
                            times.clear()
                        a, m = e.atime_ns, e.mtime_ns
                        a, m = times.setdefault(a, a), times.setdefault(m, m)
                        if make is not None and make(
                            lane_dfd, base, e.mode, e.uid, e.gid, e.data, a, m
                        ):
                            if known is not None:
                                known[final] = False
                            if flat:
                                unpacked.add(final)
                            result.written += 1
                            if e.ref is not None and native:
                                e.ref.path = final
                            continue
            lane_rel = None
            if e.kind == "opaque":
                self._opaque(plan, e, unpacked, result)
                continue
            if e.kind == "root":
                self._new_owner = None
                if self.mode == "flat":
                    self._attrs(plan, self.root, e)
                    dirs.append((self.root, e))
                continue
            loc = self._locate(plan, e, e.path, result)
            if loc is None:
                continue
            d, base = loc
            final = f"{d}/{base}" if d != "/" else "/" + base
            if e.kind == "whiteout":
                self._whiteout(plan, e, d, base, result)
                continue
            known = self._known
            isdir = known.get(final) if known is not None else self._exists(d, base, final)
            if isdir is not None and not (isdir and e.kind == "dir"):
                self._remove(final)
                result.removed += 1
            try:
                if e.kind == "file":
                    self._file(plan, e, self._dir(d), base)
                    made = True
                else:
                    made = self._create(plan, e, d, base, isdir is True and e.kind == "dir")
            except OSError as exc:
                if exc.filename in (base, None):  # name the whole path, as os calls on it would
                    raise OSError(exc.errno, exc.strerror, final) from None
                raise
            if not made:
                continue
            if self._known is not None:
                self._known[final] = e.kind == "dir"
            if flat:  # only an opaque marker of the flat mode asks what this layer wrote
                unpacked.add(final)
            result.written += 1
            if e.kind == "dir":
                dirs.append((final, e))
            if e.ref is not None and native:
                e.ref.path = final
            if e.kind == "file" and make is not None and not self.res.via_symlink:
                lane_n = e.path.rfind("/") + 1
                lane_rel = e.path[:lane_n]
                lane_prefix = final[: len(final) - len(base)]
                lane_dfd = self._dfd
        for path, e in dirs:
            try:
                self.o.utime(path, ns=(e.atime_ns, e.mtime_ns), follow_symlinks=False)
            except FileNotFoundError:
                self._note(
                    plan, "dir-vanished", "directory removed later in the same layer", e.path
                )
        return result

    def _whiteout(self, plan: LayerPlan, e: Entry, d: str, base: str, result: ApplyResult) -> None:
        result.whiteouts += 1
        final = f"{d}/{base}" if d != "/" else "/" + base
        exists = self._exists(d, base, final) is not None
        if self.mode == "flat":
            if exists:
                self._remove(final)
                result.removed += 1
            else:
                self._note(
                    plan,
                    "whiteout-of-missing",
                    "whiteout of a path no lower layer has",
                    e.path,
                    "info",
                )
            return
        if exists:
            # Docker's mknod fails with EEXIST here and the whole layer fails
            self._note(
                plan,
                "whiteout-lost",
                "a same-layer entry already has this name; whiteout dropped",
                e.path,
            )
            return
        self.o.mknod(final, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        self.o.chown(final, e.uid, e.gid, follow_symlinks=False)
        if self._known is not None:
            self._known[final] = False

    def _opaque(self, plan: LayerPlan, e: Entry, unpacked: set[str], result: ApplyResult) -> None:
        result.opaques += 1
        try:
            parts = self.res.dir_parts(e.path, create=True)
        except NotADir as exc:
            self._note(
                plan,
                "parent-not-dir",
                f"opaque marker under non-directory {exc.rel!r} dropped",
                e.path,
            )
            return
        if self._known is not None:  # directories the marker implied are known to exist
            for c in self.res.created:
                self._known[c] = True
        d = self.res.abs(parts)
        if self.mode == "native":
            self.o.setxattr(d, OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        self._clear(d, unpacked, result)

    def _clear(self, d: str, unpacked: set[str], result: ApplyResult) -> None:
        for name in sorted(self.o.listdir(d)):
            p = posixpath.join(d, name)
            if p not in unpacked:
                self._remove(p)
                result.removed += 1
            elif stat.S_ISDIR(self.o.lstat(p).st_mode):
                self._clear(p, unpacked, result)

    def _create(self, plan: LayerPlan, e: Entry, d: str, base: str, merge: bool) -> bool:
        """Anything but a regular file (``_file``); False when the entry is dropped."""
        o = self.o
        k = e.kind
        final = f"{d}/{base}" if d != "/" else "/" + base
        self._new_owner = None  # a directory's mode or owner may change below
        if k == "hardlink":
            target = self.res.existing(e.link)
            if target is None or stat.S_ISDIR(o.lstat(target).st_mode):
                self._note(
                    plan,
                    "hardlink-target-missing",
                    f"hard link target {e.link!r} not found; dropped",
                    e.path,
                )
                return False
            o.link(target, final, follow_symlinks=False)
            to_link = stat.S_ISLNK(o.lstat(final).st_mode)
            self._attrs(plan, final, e, chmod=not to_link)
            if not to_link:  # Docker sets no times through a link to a symlink
                o.utime(final, ns=(e.atime_ns, e.mtime_ns), follow_symlinks=False)
            return True
        dfd = self._dir(d)
        if k == "dir":
            if not merge:
                o.mkdir(base, 0o700, dir_fd=dfd)
        elif k == "symlink":
            o.symlink(e.link, base, dir_fd=dfd)
        else:
            o.mknod(base, _TYPE[k] | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=dfd)
        o.chown(base, e.uid, e.gid, dir_fd=dfd, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(plan, final, e)
        if k != "symlink":
            o.chmod(base, e.mode, dir_fd=dfd)
        if k != "dir":
            o.utime(base, ns=(e.atime_ns, e.mtime_ns), dir_fd=dfd, follow_symlinks=False)
        return True

    def _file(self, plan: LayerPlan, e: Entry, dfd: int, base: str) -> None:
        """Create, fill and set up a regular file through one descriptor."""
        times = self._times
        if len(times) > 4096:  # a layer of distinct times: keep the table small
            times.clear()
        a, m = e.atime_ns, e.mtime_ns
        a, m = times.setdefault(a, a), times.setdefault(m, m)
        make = self._make
        if (
            make is not None
            and not e.xattrs
            and make(dfd, base, e.mode, e.uid, e.gid, e.data, a, m)
        ):
            return
        o = self.o
        fd = o.open(base, _CREATE, e.mode & 0o777, dir_fd=dfd)
        try:
            data = e.data
            n = o.write(fd, data) if data else 0  # bytes, not a view: nothing to copy
            if n < len(data):
                view = memoryview(data)[n:]
                while view:
                    n = o.write(fd, view)
                    view = view[n:]
            owner = (e.uid, e.gid)
            if owner != self._new_owner:
                if self._new_owner is None:
                    st = o.fstat(fd)
                    self._new_owner = (st.st_uid, st.st_gid)
                # chown to the owner it already has would change nothing: a new file has no
                # set-id bit to clear, and its ctime is already now
                if owner != self._new_owner:
                    o.chown(fd, e.uid, e.gid)
            if e.xattrs:
                self._xattrs(plan, fd, e)
            # a new file already has its mode when umask and set-id bits do not get in the way
            if e.mode & 0o7000 or e.mode & self._umask:
                o.chmod(fd, e.mode)
            o.utime(fd, ns=(a, m))
        finally:
            o.close(fd)

    def _attrs(self, plan: LayerPlan, path: str, e: Entry, chmod: bool = True) -> None:
        """lchown, xattrs, then chmod (chown clears set-id bits), as go-archive does."""
        o = self.o
        o.chown(path, e.uid, e.gid, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(plan, path, e)
        if chmod and e.kind != "symlink":
            o.chmod(path, e.mode)

    def _xattrs(self, plan: LayerPlan, target: str | int, e: Entry) -> None:
        o = self.o
        for k, v in e.xattrs.items():
            try:
                if isinstance(target, int):
                    o.setxattr(target, k, v)
                else:
                    o.setxattr(target, k, v, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                self._note(plan, "xattr-refused", f"xattr {k!r} not set ({exc.strerror})", e.path)
