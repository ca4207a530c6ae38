"""An operation vocabulary applied identically to a kernel mount and to a simulator.

Each operation is a small frozen dataclass with paths relative to the mount point;
:func:`apply` runs it through any os-like module and returns a :class:`Result` that compares
equal across implementations exactly when the kernel would call them equal: the return
value in a normalised form (no inode numbers, devices or times), the errno *name*, and the
bytes read. ``snippet()`` gives the same operation as Python source for standalone scripts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
_AT_FDCWD = -100
_SYS_RENAMEAT2 = 316  # x86_64


@dataclass(frozen=True)
class Result:
    """What an operation did: ``value`` on success, else ``errno`` (a name like "ENOENT")."""

    value: Any = None
    errno: str | None = None
    data: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.errno is None

    def __str__(self) -> str:
        if self.errno:
            return self.errno
        return "ok" + (f" {self.value!r}" if self.value is not None else "") + (
            f" data={self.data!r}" if self.data is not None else ""
        )


# Looked up at import, not on first use: a lazy lookup is code only the first renameat2 of a
# process runs, so HypoFuzz saw that input cover less when it replayed it.
_SYSCALL: Callable[..., int] = ctypes.CDLL(None, use_errno=True).syscall


def renameat2(o: Any, src: str, dst: str, flags: int = 0) -> None:
    """``renameat2(2)`` through ``o``: ``o.renameat2`` if it has one (HostFS), the real
    syscall for the real ``os`` module, plain ``rename`` when no flag is given."""
    if hasattr(o, "renameat2"):
        o.renameat2(src, dst, flags)
    elif flags == 0:
        o.rename(src, dst)
    elif o is os:
        ret = _SYSCALL(_SYS_RENAMEAT2, _AT_FDCWD, os.fsencode(src), _AT_FDCWD,
                       os.fsencode(dst), ctypes.c_uint(flags))  # fmt: skip
        if ret != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), src, None, dst)
    else:
        raise NotImplementedError(f"{o!r} has no renameat2")


def file_type(mode: int) -> str:
    """A one-word type name for ``st_mode``."""
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "sock")):  # fmt: skip
        if test(mode):
            return name
    return "?"


def stat_summary(st: os.stat_result) -> tuple[Any, ...]:
    """The comparable part of a stat result: type, permissions, owner, and for non-dirs the
    size, link count and device number (never ino, dev or times; dir sizes and nlink vary)."""
    kind = file_type(st.st_mode)
    base: tuple[Any, ...] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if kind == "dir":
        return base
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("chr", "blk") else None
    return (*base, st.st_size, st.st_nlink, rdev)


class Op:
    """Base of all operations; subclasses implement ``run`` and ``snippet``."""

    def paths(self) -> tuple[str, ...]:
        return tuple(v for k, v in vars(self).items() if k in ("path", "src", "dst"))

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        raise NotImplementedError

    def snippet(self) -> str:
        """Python source that does this op on relative paths and binds its value to ``r``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Open(Op):
    """open(2) with ``flags``; then optionally write ``write`` and pread ``read`` bytes at 0.

    ``O_NONBLOCK`` is always added so that opening a FIFO cannot hang a run (for a FIFO it
    means ENXIO for a writer without a reader; regular files ignore it).
    """

    path: str
    flags: int = os.O_RDONLY
    mode: int = 0o644
    write: bytes | None = None
    read: int | None = None

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        fd = o.open(p(self.path), self.flags | os.O_NONBLOCK, self.mode)
        try:
            n = o.write(fd, self.write) if self.write is not None else None
            data = o.pread(fd, self.read, 0) if self.read is not None else None
        finally:
            o.close(fd)
        return n, data

    def snippet(self) -> str:
        lines = [f"fd = os.open({self.path!r}, {self.flags | os.O_NONBLOCK}, {self.mode:#o})",
                 "r = d = None"]  # fmt: skip
        if self.write is not None:
            lines.append(f"r = os.write(fd, {self.write!r})")
        if self.read is not None:
            lines.append(f"d = os.pread(fd, {self.read}, 0)")
        return "\n".join([*lines, "os.close(fd)"])


@dataclass(frozen=True)
class Write(Op):
    """Open for writing (appending if ``append``), write ``data``, close."""

    path: str
    data: bytes = b"x"
    append: bool = False

    def _flags(self) -> int:
        return os.O_WRONLY | (os.O_APPEND if self.append else 0)

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        return Open(self.path, self._flags(), write=self.data).run(o, p)

    def snippet(self) -> str:
        return Open(self.path, self._flags(), write=self.data).snippet()


def _simple(call: str, *fields: str, value: str = "None") -> Callable[[type], type]:
    """Give an op class ``run``/``snippet`` for a plain ``os.<call>(*fields)``."""

    def deco(cls: type) -> type:
        def run(self: Any, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
            args = [p(getattr(self, f)) if f in ("path", "src", "dst") else getattr(self, f)
                    for f in fields]  # fmt: skip
            out = getattr(o, call)(*args)
            return (None if value == "None" else _NORMALISE[value](out)), None

        def snippet(self: Any) -> str:
            args = ", ".join(repr(getattr(self, f)) for f in fields)
            call_src = f"os.{call}({args})"
            return f"r = {_SNIPPET_NORMALISE[value].format(call_src)}"

        cls.run = run  # type: ignore[attr-defined]
        cls.snippet = snippet  # type: ignore[attr-defined]
        return cls

    return deco


_NORMALISE: dict[str, Callable[[Any], Any]] = {
    "sorted": lambda names: sorted(os.fsdecode(n) for n in names),
    "stat": stat_summary,
    "str": os.fsdecode,
    "bytes": bytes,
}
_SNIPPET_NORMALISE = {"None": "{0} and None", "sorted": "sorted({0})", "str": "{0}",
                      "bytes": "{0}",
                      "stat": "(lambda s: (oct(s.st_mode), s.st_uid, s.st_gid, s.st_size))({0})"}  # fmt: skip


@_simple("truncate", "path", "length")
@dataclass(frozen=True)
class Truncate(Op):
    path: str
    length: int = 0


@_simple("unlink", "path")
@dataclass(frozen=True)
class Unlink(Op):
    path: str


@_simple("rmdir", "path")
@dataclass(frozen=True)
class Rmdir(Op):
    path: str


@_simple("mkdir", "path", "mode")
@dataclass(frozen=True)
class Mkdir(Op):
    path: str
    mode: int = 0o755


@_simple("link", "src", "dst")
@dataclass(frozen=True)
class Link(Op):
    src: str
    dst: str


@_simple("symlink", "target", "path")
@dataclass(frozen=True)
class Symlink(Op):
    target: str
    path: str


@_simple("chmod", "path", "mode")
@dataclass(frozen=True)
class Chmod(Op):
    path: str
    mode: int = 0o600


@_simple("readlink", "path", value="str")
@dataclass(frozen=True)
class Readlink(Op):
    path: str


@_simple("listdir", "path", value="sorted")
@dataclass(frozen=True)
class Listdir(Op):
    path: str = "."


@_simple("listxattr", "path", value="sorted")
@dataclass(frozen=True)
class ListXattr(Op):
    path: str


@_simple("getxattr", "path", "name", value="bytes")
@dataclass(frozen=True)
class GetXattr(Op):
    path: str
    name: str


@_simple("removexattr", "path", "name")
@dataclass(frozen=True)
class RemoveXattr(Op):
    path: str
    name: str


@_simple("setxattr", "path", "name", "value", "flags")
@dataclass(frozen=True)
class SetXattr(Op):
    path: str
    name: str
    value: bytes = b"v"
    flags: int = 0


@dataclass(frozen=True)
class Stat(Op):
    """stat (``follow``) or lstat; the value is :func:`stat_summary`."""

    path: str
    follow: bool = False

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        st = o.stat(p(self.path)) if self.follow else o.lstat(p(self.path))
        return stat_summary(st), None

    def snippet(self) -> str:
        call = "stat" if self.follow else "lstat"
        return f"s = os.{call}({self.path!r}); r = (oct(s.st_mode), s.st_uid, s.st_gid, s.st_size, s.st_nlink)"


@dataclass(frozen=True)
class Chown(Op):
    path: str
    uid: int = 1000
    gid: int = 1000
    follow: bool = True

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        o.chown(p(self.path), self.uid, self.gid, follow_symlinks=self.follow)
        return None, None

    def snippet(self) -> str:
        return f"r = os.chown({self.path!r}, {self.uid}, {self.gid}, follow_symlinks={self.follow})"


@dataclass(frozen=True)
class Utime(Op):
    """Set atime and mtime in nanoseconds."""

    path: str
    ns: tuple[int, int] = (1_000_000_000, 2_000_000_000)
    follow: bool = True

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        o.utime(p(self.path), ns=self.ns, follow_symlinks=self.follow)
        return None, None

    def snippet(self) -> str:
        return f"r = os.utime({self.path!r}, ns={self.ns!r}, follow_symlinks={self.follow})"


@dataclass(frozen=True)
class Mknod(Op):
    """mknod(2); ``kind`` is "chr", "blk" or "fifo"."""

    path: str
    kind: str = "fifo"
    major: int = 0
    minor: int = 0
    mode: int = 0o644

    def _mode(self) -> int:
        return {"chr": stat.S_IFCHR, "blk": stat.S_IFBLK}.get(self.kind, stat.S_IFIFO) | self.mode

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        o.mknod(p(self.path), self._mode(), os.makedev(self.major, self.minor))
        return None, None

    def snippet(self) -> str:
        return f"r = os.mknod({self.path!r}, {self._mode():#o}, os.makedev({self.major}, {self.minor}))"


@dataclass(frozen=True)
class Rename(Op):
    """rename(2), or renameat2(2) when ``flags`` (RENAME_NOREPLACE/EXCHANGE/WHITEOUT)."""

    src: str
    dst: str
    flags: int = 0

    def run(self, o: Any, p: Callable[[str], str]) -> tuple[Any, bytes | None]:
        renameat2(o, p(self.src), p(self.dst), self.flags)
        return None, None

    def snippet(self) -> str:
        if not self.flags:
            return f"r = os.rename({self.src!r}, {self.dst!r})"
        return (
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"if libc.syscall({_SYS_RENAMEAT2}, -100, {self.src!r}.encode(), -100, "
            f"{self.dst!r}.encode(), {self.flags}) != 0:\n"
            "    e = ctypes.get_errno(); raise OSError(e, os.strerror(e))\nr = None"
        )


def apply(op: Op, o: Any, mount_path: str) -> Result:
    """Run ``op`` with paths below ``mount_path`` through the os-like module ``o``.

    Absolute paths and ".." are refused (ValueError): an operation must stay in its mount.
    """
    for rel in op.paths():
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"operation path {rel!r} would leave the mount")

    def p(rel: str) -> str:
        return posixpath.join(mount_path, rel)

    try:
        value, data = op.run(o, p)
    except OSError as e:
        return Result(errno=errno.errorcode.get(e.errno or 0, str(e.errno)))
    return Result(value, None, data)
