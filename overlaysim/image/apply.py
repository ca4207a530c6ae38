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

from overlaysim.image.findings import Findings
from overlaysim.image.layer import Entry, LayerPlan
from overlaysim.image.resolve import NotADir, Resolver, rmtree

Mode = Literal["native", "flat"]
OPAQUE_XATTR = "trusted.overlay.opaque"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_TYPE = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "fifo": stat.S_IFIFO}
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC


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
    """Writes one LayerPlan below ``root`` (which must exist) in ``o``."""

    def __init__(
        self, o: Any, root: str, mode: Mode, findings: Findings, max_hops: int = 40
    ) -> None:
        self.o = o
        self.root = root
        self.mode = mode
        self.findings = findings
        self.res = Resolver(o, root, max_hops)
        # What exists below a root that started empty (native layers): path -> is a directory.
        # Saves an lstat per entry; dropped (None) as soon as anything is removed.
        self._known: dict[str, bool] | None = None
        self._umask = _umask(o)

    # --- helpers ------------------------------------------------------------------------------
    def _remove(self, path: str) -> None:
        rmtree(self.o, path)
        self.res.invalidate()
        self._known = None

    def _exists(self, path: str) -> bool | None:
        """None if absent, else whether it is a directory."""
        if self._known is not None:
            return self._known.get(path)
        st = self.res.lstat(path)
        return None if st is None else stat.S_ISDIR(st.st_mode)

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
        result = ApplyResult(plan.index, self.mode)
        dirs: list[tuple[str, Entry]] = []
        unpacked: set[str] = set()
        if self.mode == "native" and not self.o.listdir(self.root):
            self._known = {}
        for e in plan.entries:
            if e.kind == "opaque":
                self._opaque(plan, e, unpacked, result)
                continue
            if e.kind == "root":
                if self.mode == "flat":
                    self._attrs(plan, self.root, e)
                    dirs.append((self.root, e))
                continue
            loc = self._locate(plan, e, e.path, result)
            if loc is None:
                continue
            d, base = loc
            final = posixpath.join(d, base)
            if e.kind == "whiteout":
                self._whiteout(plan, e, final, result)
                continue
            isdir = self._exists(final)
            if isdir is not None and not (isdir and e.kind == "dir"):
                self._remove(final)
                result.removed += 1
            if not self._create(plan, e, final, isdir is not None and e.kind == "dir"):
                continue
            if self._known is not None:
                self._known[final] = e.kind == "dir"
            unpacked.add(final)
            result.written += 1
            if e.kind == "dir":
                dirs.append((final, e))
            if e.ref is not None and self.mode == "native":
                e.ref.path = final
        for path, e in dirs:
            try:
                self.o.utime(path, ns=(e.atime_ns, e.mtime_ns), follow_symlinks=False)
            except FileNotFoundError:
                self._note(
                    plan, "dir-vanished", "directory removed later in the same layer", e.path
                )
        return result

    def _whiteout(self, plan: LayerPlan, e: Entry, final: str, result: ApplyResult) -> None:
        result.whiteouts += 1
        exists = self._exists(final) is not None
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

    def _create(self, plan: LayerPlan, e: Entry, final: str, merge: bool) -> bool:
        o = self.o
        k = e.kind
        if k == "dir":
            if not merge:
                o.mkdir(final, 0o700)
        elif k == "file":
            fd = o.open(final, _CREATE, e.mode & 0o777)
            try:
                view = memoryview(e.data)
                while view:
                    n = o.write(fd, view)
                    view = view[n:]
            finally:
                o.close(fd)
        elif k == "symlink":
            o.symlink(e.link, final)
        elif k == "hardlink":
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
        else:
            o.mknod(final, _TYPE[k] | 0o600, os.makedev(e.devmajor, e.devminor))
        to_link = k == "hardlink" and stat.S_ISLNK(o.lstat(final).st_mode)
        # a new file already has its mode when umask and set-id bits do not get in the way
        exact = k == "file" and not e.mode & 0o7000 and not e.mode & self._umask
        self._attrs(plan, final, e, chmod=not (to_link or exact))
        if k != "dir" and not to_link:  # Docker sets no times through a link to a symlink
            o.utime(final, ns=(e.atime_ns, e.mtime_ns), follow_symlinks=False)
        return True

    def _attrs(self, plan: LayerPlan, path: str, e: Entry, chmod: bool = True) -> None:
        """lchown, xattrs, then chmod (chown clears set-id bits), as go-archive does."""
        o = self.o
        o.chown(path, e.uid, e.gid, follow_symlinks=False)
        for k, v in e.xattrs.items():
            try:
                o.setxattr(path, k, v, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                self._note(plan, "xattr-refused", f"xattr {k!r} not set ({exc.strerror})", e.path)
        if chmod and e.kind != "symlink":
            o.chmod(path, e.mode)
