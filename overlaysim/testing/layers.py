"""Declarative layer stacks, written through any os-like module.

The same spec builds identical layers on the real disk (for the kernel) and in a HostFS (for
the simulator), so the two can be compared. Paths inside a spec are relative to the layer
root; hard links name their target by such a path. Building ``trusted.*`` xattrs, devices
and whiteouts needs root (as on the kernel side).
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TRUSTED_PREFIX = "trusted.overlay."
USER_PREFIX = "user.overlay."


@dataclass(frozen=True)
class File:
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=dict)
    mtime_ns: int | None = None


@dataclass(frozen=True)
class Symlink:
    target: str
    uid: int = 0
    gid: int = 0
    mtime_ns: int | None = None


@dataclass(frozen=True)
class Whiteout:
    """``chr``: the char 0/0 device overlayfs makes; ``xattr``: an empty file marked with the
    ``overlay.whiteout`` xattr (honoured by readdir only under an ``opaque="x"`` parent)."""

    form: Literal["chr", "xattr"] = "chr"


@dataclass(frozen=True)
class Device:
    kind: Literal["chr", "blk"] = "chr"
    major: int = 1
    minor: int = 3
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Fifo:
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class HardLink:
    """Another name for the non-directory at ``target`` (a path in the same layer)."""

    target: str


@dataclass(frozen=True)
class Dir:
    entries: Mapping[str, Node] = field(default_factory=dict)
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=dict)
    opaque: Literal["y", "x"] | None = None
    mtime_ns: int | None = None


Node = File | Dir | Symlink | Whiteout | Device | Fifo | HardLink


@dataclass(frozen=True)
class LayerStack:
    """Lower layers top first (``lowerdir=`` order); ``upper=None`` makes a read-only stack.
    ``data``: data-only lower layers below them (``lowerdir=l0:l1::d0::d1``), never merged:
    only metacopy files with an absolute redirect reach their files."""

    lowers: tuple[Dir, ...]
    upper: Dir | None = field(default_factory=Dir)
    data: tuple[Dir, ...] = ()
    # each lower layer on a filesystem of its own (a tmpfs the mount factory makes), the
    # upper and work dirs on the base one: st_ino/st_dev follow the xino rules then
    separate_fs: bool = False


def walk(node: Dir, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Every (relative path, node) below ``node``, parents before children."""
    for name, child in node.entries.items():
        path = posixpath.join(prefix, name) if prefix else name
        yield path, child
        if isinstance(child, Dir):
            yield from walk(child, path)


def lookup(node: Dir, path: str) -> Node | None:
    """The node at ``path`` in a spec tree, or None."""
    cur: Node = node
    for part in [p for p in path.split("/") if p]:
        if not isinstance(cur, Dir) or part not in cur.entries:
            return None
        cur = cur.entries[part]
    return cur


def _set_meta(o: Any, path: str, node: Node, prefix: str) -> None:
    if isinstance(node, Dir | File | Device | Fifo):
        o.chmod(path, node.mode)
    if isinstance(node, Dir | File | Device | Fifo | Symlink):
        o.chown(path, node.uid, node.gid, follow_symlinks=False)
    if isinstance(node, Dir | File):
        for name, value in node.xattrs.items():
            o.setxattr(path, name, value)
    if isinstance(node, Dir) and node.opaque:
        o.setxattr(path, prefix + "opaque", node.opaque.encode())


def _create(o: Any, path: str, node: Node, prefix: str) -> None:
    if isinstance(node, Dir):
        o.mkdir(path, 0o700)
    elif isinstance(node, File):
        fd = o.open(path, o.O_WRONLY | o.O_CREAT | o.O_EXCL, 0o600)
        try:
            view = memoryview(node.data)
            while view:
                view = view[o.write(fd, view) :]
        finally:
            o.close(fd)
    elif isinstance(node, Symlink):
        o.symlink(node.target, path)
    elif isinstance(node, Whiteout):
        if node.form == "chr":
            o.mknod(path, stat.S_IFCHR | 0o000, o.makedev(0, 0))
        else:
            o.close(o.open(path, o.O_WRONLY | o.O_CREAT | o.O_EXCL, 0o644))
            o.setxattr(path, prefix + "whiteout", b"y")
        return
    elif isinstance(node, Device):
        kind = stat.S_IFCHR if node.kind == "chr" else stat.S_IFBLK
        o.mknod(path, kind | 0o600, o.makedev(node.major, node.minor))
    elif isinstance(node, Fifo):
        o.mkfifo(path, 0o600)
    else:
        return  # hard links come in a second pass
    _set_meta(o, path, node, prefix)


def build(spec: Dir, o: Any, root: str, *, xattr_prefix: str = TRUSTED_PREFIX) -> None:
    """Write ``spec`` at ``root`` (created if missing) through the os-like module ``o``."""
    if not o.path.isdir(root):
        o.mkdir(root, 0o700)
    _set_meta(o, root, spec, xattr_prefix)
    items = list(walk(spec))
    for rel, node in items:
        _create(o, posixpath.join(root, rel), node, xattr_prefix)
    for rel, node in items:
        if isinstance(node, HardLink):
            o.link(posixpath.join(root, node.target), posixpath.join(root, rel))
    # times last, children before parents, since creating entries bumps a dir's mtime
    for rel, node in reversed([("", spec), *items]):
        mtime = getattr(node, "mtime_ns", None)
        if mtime is not None:
            o.utime(posixpath.join(root, rel) if rel else root, ns=(mtime, mtime),
                    follow_symlinks=False)  # fmt: skip


@dataclass(frozen=True)
class StackPaths:
    """Where :func:`build_stack` put each layer (lowers top first)."""

    lowers: tuple[str, ...]
    upper: str | None
    work: str | None
    data: tuple[str, ...] = ()  # data-only layers, after "::"

    def options(self, extra: str = "") -> str:
        """The ``mount(2)`` data string for these layers, plus ``extra`` options."""
        parts = ["lowerdir=" + ":".join(escape_lowerdir(p) for p in self.lowers)
                 + "".join("::" + escape_lowerdir(p) for p in self.data)]  # fmt: skip
        if self.upper is not None and self.work is not None:
            parts += [f"upperdir={escape_path(self.upper)}", f"workdir={escape_path(self.work)}"]
        return ",".join(parts + ([extra] if extra else []))


def escape_path(path: str) -> str:
    """Backslash-escape what the option splitter would cut (``,``) or unescape (``\\``)."""
    return path.replace("\\", "\\\\").replace(",", "\\,")


def escape_lowerdir(path: str) -> str:
    return escape_path(path).replace(":", "\\:")


def xattr_prefix_for(options: str) -> str:
    """The private xattr namespace a mount with these options reads."""
    names = {opt.partition("=")[0] for opt in options.split(",")}
    return USER_PREFIX if "userxattr" in names else TRUSTED_PREFIX


def build_stack(stack: LayerStack, o: Any, base: str, *, options: str = "") -> StackPaths:
    """Build ``stack`` under ``base`` as ``l0..lN`` (top first), ``d0..dN`` (data-only),
    ``u`` and ``w``."""
    prefix = xattr_prefix_for(options)
    if not o.path.isdir(base):
        o.makedirs(base)
    lowers = []
    for i, layer in enumerate(stack.lowers):
        path = posixpath.join(base, f"l{i}")
        build(layer, o, path, xattr_prefix=prefix)
        lowers.append(path)
    data = []
    for i, layer in enumerate(stack.data):
        path = posixpath.join(base, f"d{i}")
        build(layer, o, path, xattr_prefix=prefix)
        data.append(path)
    upper = work = None
    if stack.upper is not None:
        upper, work = posixpath.join(base, "u"), posixpath.join(base, "w")
        build(stack.upper, o, upper, xattr_prefix=prefix)
        o.mkdir(work, 0o755)
    return StackPaths(tuple(lowers), upper, work, tuple(data))
