"""The reference model: a flat real directory holding the merged view of a layer stack.

Where mounting is not permitted, a simulator can still be checked against this model on the
merged view. Operations run with the plain ``os`` module on the flattened tree; the few
overlay rules a flat directory cannot know are emulated in :class:`ReferenceOs`: EXDEV for
renaming a directory that comes from a lower layer (unless ``redirect_dir=on``), EROFS on
a read-only stack, EPERM for ``mknod c 0 0`` and EINVAL for ``RENAME_WHITEOUT``.

The model is only exact for stacks without the kernel's listing quirks; pass stacks through
:func:`sanitize` (drops hard links, xattr whiteouts, ``opaque="x"`` and stray whiteouts).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tempfile
from dataclasses import replace
from typing import Any

from overlaysim.overlay.layers import parse_options
from overlaysim.testing import layers as L
from overlaysim.testing.ops import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, renameat2

_PRIVATE = (L.TRUSTED_PREFIX, L.USER_PREFIX)


def _is_whiteout(node: L.Node) -> bool:
    return isinstance(node, L.Whiteout)


def _visible_xattrs(xattrs: Any, prefix: str) -> dict[str, bytes]:
    """What the merged view lists: private xattrs hidden, ``overlay.overlay.X`` unescaped."""
    out = {}
    for name, value in xattrs.items():
        if name.startswith(prefix + "overlay."):
            out[prefix + name[len(prefix) + len("overlay.") :]] = value
        elif not name.startswith(prefix):
            out[name] = value
    return out


def merge(stack: L.LayerStack, prefix: str = L.TRUSTED_PREFIX) -> tuple[L.Dir, set[str]]:
    """The merged tree of ``stack`` and the set of directory paths that have a lower layer
    (the ones a rename refuses with EXDEV unless redirect_dir=on)."""
    layers: list[tuple[L.Dir, bool]] = ([(stack.upper, True)] if stack.upper else []) + [
        (d, False) for d in stack.lowers
    ]
    origin: set[str] = set()

    def merge_dir(dirs: list[tuple[L.Dir, bool]], path: str) -> L.Dir:
        if any(not upper for _, upper in dirs):
            origin.add(path)
        entries: dict[str, L.Node] = {}
        names = [n for d, _ in dirs for n in d.entries]
        for name in dict.fromkeys(names):
            found: list[tuple[L.Dir, bool]] = []
            leaf: L.Node | None = None
            for d, upper in dirs:
                node = d.entries.get(name)
                if node is None:
                    continue
                if isinstance(node, L.Dir):
                    found.append((node, upper))
                    if node.opaque == "y":
                        break
                    continue
                if not found and not _is_whiteout(node):
                    leaf = node
                break
            child = posixpath.join(path, name) if path else name
            if found:
                entries[name] = merge_dir(found, child)
            elif leaf is not None:
                entries[name] = leaf
        top = dirs[0][0]
        return replace(top, entries=entries, opaque=None, xattrs=_visible_xattrs(top.xattrs, prefix))

    root = merge_dir(layers, "")
    return _strip(root, prefix), origin


def _strip(node: L.Dir, prefix: str) -> L.Dir:
    """Hide private xattrs of files too."""
    out: dict[str, L.Node] = {}
    for name, child in node.entries.items():
        if isinstance(child, L.Dir):
            out[name] = _strip(child, prefix)
        elif isinstance(child, L.File):
            out[name] = replace(child, xattrs=_visible_xattrs(child.xattrs, prefix))
        else:
            out[name] = child
    return replace(node, entries=out)


class _Mut:
    """A mutable copy of a spec directory, for :func:`sanitize`."""

    def __init__(self, node: L.Dir) -> None:
        self.node = node
        self.entries: dict[str, L.Node | _Mut] = {
            name: _Mut(child) if isinstance(child, L.Dir) else child
            for name, child in node.entries.items()
        }

    def freeze(self) -> L.Dir:
        entries = {n: c.freeze() if isinstance(c, _Mut) else c for n, c in self.entries.items()}
        return replace(self.node, entries=entries, opaque="y" if self.node.opaque == "y" else None)


def _clean(dirs: list[_Mut]) -> None:
    merged = len(dirs) > 1
    for d in dirs:
        for name, child in list(d.entries.items()):
            if isinstance(child, L.HardLink) or (
                isinstance(child, L.Whiteout) and (child.form == "xattr" or not merged)
            ):
                del d.entries[name]
            elif isinstance(child, L.File) and any(x.startswith(_PRIVATE) for x in child.xattrs):
                # a metacopy file's data is found below it, which a flat tree cannot show
                xattrs = {k: v for k, v in child.xattrs.items() if not k.startswith(_PRIVATE)}
                d.entries[name] = replace(child, xattrs=xattrs)
    for name in dict.fromkeys(n for d in dirs for n in d.entries):
        below: list[_Mut] = []
        for d in dirs:  # the directories a lookup of ``name`` merges
            sub = d.entries.get(name)
            if sub is None:
                continue
            if not isinstance(sub, _Mut):
                break
            below.append(sub)
            if sub.node.opaque == "y":
                break
        if below:
            _clean(below)


def sanitize(stack: L.LayerStack) -> L.LayerStack:
    """A stack the reference model represents exactly: no hard links, xattr whiteouts,
    ``opaque="x"``, or whiteouts in directories that are not merged (those are listed but
    not stat-able on the kernel, which a flat directory cannot show)."""
    layers = [_Mut(d) for d in ([stack.upper] if stack.upper else []) + list(stack.lowers)]
    _clean(layers)
    frozen = [m.freeze() for m in layers]
    if stack.upper is None:
        return L.LayerStack(lowers=tuple(frozen), upper=None)
    return L.LayerStack(lowers=tuple(frozen[1:]), upper=frozen[0])


class ReferenceOs:
    """``os`` on the flat tree, plus the overlay refusals a flat directory cannot know."""

    def __init__(self, root: str, origin: set[str], *, redirect: bool, read_only: bool):
        self.root, self.origin, self.redirect, self.read_only = root, origin, redirect, read_only

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    # -- helpers ------------------------------------------------------------------------------
    def _rel(self, path: str) -> str:
        rel = posixpath.relpath(posixpath.normpath(path), self.root)
        return "" if rel == "." else rel

    def _lower_dir(self, path: str) -> bool:
        return os.path.isdir(path) and not os.path.islink(path) and self._rel(path) in self.origin

    def _parent(self, path: str) -> None:
        """Raise what a lookup of the parent directory would."""
        parent = posixpath.dirname(path.rstrip("/")) or "."
        st = os.stat(parent)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)

    def _erofs(self, path: str) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    def _move_origin(self, src: str, dst: str, exchange: bool) -> None:
        s, d = self._rel(src), self._rel(dst)

        def sub(p: str, root: str) -> bool:
            return p == root or p.startswith(root + "/")

        moved_s = {p for p in self.origin if sub(p, s)}
        moved_d = {p for p in self.origin if sub(p, d)}
        self.origin -= moved_s | moved_d
        self.origin |= {d + p[len(s) :] for p in moved_s}
        if exchange:
            self.origin |= {s + p[len(d) :] for p in moved_d}

    def _drop_origin(self, path: str) -> None:
        r = self._rel(path)
        self.origin = {p for p in self.origin if not (p == r or p.startswith(r + "/"))}

    def _rename_check(self, src: str, dst: str, flags: int) -> bool:
        """The VFS checks ``renameat2`` makes before the filesystem's; False: a no-op."""
        if flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), src)
        self._parent(src)
        self._parent(dst)
        if self.read_only:
            raise self._erofs(src)
        s = os.lstat(src)
        d = None
        try:
            d = os.lstat(dst)
        except FileNotFoundError:
            if flags & RENAME_EXCHANGE:
                raise
        if d is not None and flags & RENAME_NOREPLACE:
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
        sdir = stat.S_ISDIR(s.st_mode)
        rs, rd = self._rel(src), self._rel(dst)
        if sdir and rd.startswith(rs + "/"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), src)
        if d is not None and stat.S_ISDIR(d.st_mode) and rs.startswith(rd + "/"):
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), dst)
        if d is not None and (s.st_dev, s.st_ino) == (d.st_dev, d.st_ino):
            return False
        if d is not None and not flags & RENAME_EXCHANGE:
            ddir = stat.S_ISDIR(d.st_mode)
            if sdir and not ddir:
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), dst)
            if ddir and not sdir:
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), dst)
        return True

    # -- refusals -----------------------------------------------------------------------------
    def renameat2(self, src: str, dst: str, flags: int = 0) -> None:
        if not self._rename_check(src, dst, flags):
            return
        if flags & RENAME_WHITEOUT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), src)
        if not self.redirect and (
            self._lower_dir(src) or (flags & RENAME_EXCHANGE and self._lower_dir(dst))
        ):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src)
        renameat2(os, src, dst, flags)
        self._move_origin(src, dst, bool(flags & RENAME_EXCHANGE))

    def rename(self, src: str, dst: str) -> None:
        self.renameat2(src, dst, 0)

    replace = rename

    def mknod(self, path: str, mode: int = 0o600, device: int = 0) -> None:
        self._create_check(path)
        if stat.S_ISCHR(mode) and device == 0:  # ovl_mknod refuses whiteouts, after the VFS
            self._parent(path)
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            raise OSError(errno.EPERM, os.strerror(errno.EPERM), path)
        os.mknod(path, mode, device)

    def _create_check(self, path: str) -> None:
        if self.read_only:
            self._parent(path)
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            raise self._erofs(path)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self._create_check(path)
        os.mkdir(path, mode)
        self._drop_origin(path)

    def symlink(self, target: str, path: str) -> None:
        self._create_check(path)
        os.symlink(target, path)

    def link(self, src: str, dst: str) -> None:
        if self.read_only:
            os.lstat(src)
            self._create_check(dst)
        os.link(src, dst)

    def rmdir(self, path: str) -> None:
        if self.read_only:
            self._parent(path)
            raise self._erofs(path)
        os.rmdir(path)
        self._drop_origin(path)

    def unlink(self, path: str) -> None:
        if self.read_only:
            self._parent(path)
            raise self._erofs(path)
        os.unlink(path)

    remove = unlink

    def open(self, path: str, flags: int, mode: int = 0o777) -> int:
        if self.read_only:
            if flags & os.O_CREAT:
                if flags & os.O_EXCL and os.path.lexists(path):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
                try:
                    os.stat(path)
                except FileNotFoundError:  # would create, through a dangling symlink too
                    self._parent(os.path.realpath(path))
                    raise self._erofs(path) from None
            st = os.stat(path)
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
                if stat.S_ISREG(st.st_mode):
                    raise self._erofs(path)
        return os.open(path, flags, mode)

    def _attr(self, path: str, follow: bool = True) -> None:
        if self.read_only:
            os.stat(path) if follow else os.lstat(path)
            raise self._erofs(path)

    def chmod(self, path: str, mode: int, **kw: Any) -> None:
        self._attr(path, kw.get("follow_symlinks", True))
        os.chmod(path, mode, **kw)

    def chown(self, path: str, uid: int, gid: int, **kw: Any) -> None:
        self._attr(path, kw.get("follow_symlinks", True))
        os.chown(path, uid, gid, **kw)

    def utime(self, path: str, *args: Any, **kw: Any) -> None:
        self._attr(path, kw.get("follow_symlinks", True))
        os.utime(path, *args, **kw)

    def truncate(self, path: str, length: int) -> None:
        if self.read_only:  # vfs_truncate checks the type before the mount's write access
            mode = os.stat(path).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            if not stat.S_ISREG(mode):
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
            raise self._erofs(path)
        os.truncate(path, length)

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0, **kw: Any) -> None:
        self._attr(path, kw.get("follow_symlinks", True))
        os.setxattr(path, name, value, flags, **kw)

    def removexattr(self, path: str, name: str, **kw: Any) -> None:
        self._attr(path, kw.get("follow_symlinks", True))
        os.removexattr(path, name, **kw)


class ReferenceModel:
    """A flat temp dir holding the merged view of ``stack``; the mount interface of
    :mod:`overlaysim.testing.differential` with no upper or work dir to compare."""

    def __init__(self, stack: L.LayerStack, options: str = "") -> None:
        prefix = L.xattr_prefix_for(options)
        dummy = "lowerdir=a" + (":b" if stack.upper is None else ",upperdir=u,workdir=w")
        params = parse_options(dummy + ("," + options if options else ""))
        tree, origin = merge(stack, prefix)
        self.base = tempfile.mkdtemp(prefix="ovl-reference-")
        self.mount_path = os.path.join(self.base, "merged")
        try:
            L.build(tree, os, self.mount_path, xattr_prefix=prefix)
        except BaseException:
            self.close()
            raise
        self.os = ReferenceOs(self.mount_path, origin, redirect=params.redirect_dir == "on",
                              read_only=params.read_only)  # fmt: skip
        self.upper_os: Any = os
        self.work_os: Any = os
        self.volatile = params.volatile
        self.upper_root: str | None = None
        self.work_root: str | None = None

    def umount(self) -> None:
        """Nothing to do: a flat directory keeps its state."""

    def remount(self) -> None:
        """A flat directory keeps its state, but a volatile overlay cannot be mounted again."""
        if self.volatile:
            raise OSError(errno.EINVAL, "overlayfs: overlay with incompat feature 'volatile' "
                                        "cannot be mounted")  # fmt: skip

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def reference_factory(stack: L.LayerStack, options: str) -> ReferenceModel:
    return ReferenceModel(stack, options)
