"""What a builtin tool sees: the os-like module, the shell state, its streams and helpers.

Tools never touch the real process (cwd, umask, stdout): everything goes through a
``Ctx`` so the same code runs on real ``os`` (the test oracle) and on ``HostFS.os``.
"""

from __future__ import annotations

import errno
import io
import os
import stat as statmod
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol


class Sink(Protocol):
    """Where a command writes bytes (a buffer, a user stream, an open file)."""

    def write(self, data: bytes) -> None: ...


class BufferSink:
    """Collects output in memory: pipes and command substitution."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def write(self, data: bytes) -> None:
        self.buf.write(data)

    def getvalue(self) -> bytes:
        return self.buf.getvalue()


class NullSink:
    """``/dev/null`` and closed descriptors."""

    def write(self, data: bytes) -> None:
        return None


class StreamSink:
    """Forwards to a caller's stream, binary or text (text gets UTF-8 with surrogateescape)."""

    def __init__(self, stream: IO[bytes] | IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        if isinstance(self.stream, io.TextIOBase):
            self.stream.write(data.decode("utf-8", "surrogateescape"))
        else:
            self.stream.write(data)  # type: ignore[arg-type]
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()


class FdSink:
    """An fd opened by a redirection on the os-like module; written through as we go."""

    def __init__(self, o: Any, fd: int) -> None:
        self.o = o
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self.o.write(self.fd, view)
            view = view[n:]

    def close(self) -> None:
        self.o.close(self.fd)


class Users:
    """uid/gid <-> name tables: 0 is root, other ids print as numbers unless a table names them."""

    def __init__(
        self, passwd: Mapping[int, str] | None = None, group: Mapping[int, str] | None = None
    ) -> None:
        self.passwd = dict(passwd) if passwd is not None else {0: "root"}
        self.group = dict(group) if group is not None else {0: "root"}

    def user(self, uid: int) -> str | None:
        return self.passwd.get(uid)

    def grp(self, gid: int) -> str | None:
        return self.group.get(gid)

    def uid_of(self, name: str) -> int | None:
        for uid, n in self.passwd.items():
            if n == name:
                return uid
        return int(name) if name.isdigit() else None

    def gid_of(self, name: str) -> int | None:
        for gid, n in self.group.items():
            if n == name:
                return gid
        return int(name) if name.isdigit() else None


@dataclass
class ShellState:
    """The part of a shell a subshell copies: cwd, variables, exported names."""

    cwd: str
    vars: dict[str, str]
    oldpwd: str = ""
    status: int = 0

    def copy(self) -> ShellState:
        return ShellState(self.cwd, dict(self.vars), self.oldpwd, self.status)


class MountLike(Protocol):
    source: str
    target: str
    fstype: str
    options: str


@dataclass
class Machine:
    """Everything outside the filesystem API that tools may ask about."""

    mounts: Callable[[], Iterable[Any]] | None = None
    do_mount: Callable[[str, str, str, str], None] | None = None
    do_umount: Callable[[str], None] | None = None
    users: Users = field(default_factory=Users)
    clock: Callable[[], float] = time.time
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = (0,)


class ShellExit(Exception):
    """``exit N``: stop the script with status N."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class UsageFailure(Exception):
    """Bad options: the tool prints the message, a 'Try' hint, and exits with ``status``."""

    def __init__(self, message: str, hint: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class Ctx:
    """One command's view: os-like module, shell state, stdin bytes and output sinks."""

    o: Any
    state: ShellState
    machine: Machine
    stdin: bytes
    out: Sink
    err: Sink
    prog: str = ""
    run_sub: Callable[[str], bytes] | None = None
    line: int = 0  # the script line, for dash-style builtin messages ("sh: 3: cd: ...")
    shell_name: str = "sh"

    @property
    def cwd(self) -> str:
        return self.state.cwd

    @property
    def users(self) -> Users:
        return self.machine.users

    def abspath(self, path: str) -> str:
        """Absolute form for the os-like module; the user's spelling stays in messages."""
        if not path or path.startswith("/"):
            return path
        return self.cwd.rstrip("/") + "/" + path

    def write(self, text: str) -> None:
        self.out.write(text.encode("utf-8", "surrogateescape"))

    def error(self, message: str) -> None:
        self.err.write(f"{self.prog}: {message}\n".encode("utf-8", "surrogateescape"))

    def builtin_error(self, message: str) -> None:
        """dash's form for builtins: ``sh: LINE: cd: can't cd to x``."""
        text = f"{self.shell_name}: {self.line}: {self.prog}: {message}\n"
        self.err.write(text.encode("utf-8", "surrogateescape"))

    def env(self, name: str, default: str = "") -> str:
        return self.state.vars.get(name, default)


def strerror(exc: OSError) -> str:
    """The C library's text for an errno, whatever message the raiser chose."""
    if exc.errno:
        if exc.errno == errno.ENODATA:
            return "No data available"
        return os.strerror(exc.errno)
    return str(exc)


def quote(name: str) -> str:
    """coreutils' quoting in messages (shell-escape-always): 'x', "it's", 'a'\\''b"c'."""
    if "'" not in name:
        return f"'{name}'"
    if not any(c in name for c in '"$`\\!'):
        return f'"{name}"'
    return "'" + name.replace("'", "'\\''") + "'"


def is_dir(o: Any, path: str, follow: bool = True) -> bool:
    try:
        st = o.stat(path) if follow else o.lstat(path)
    except OSError:
        return False
    return statmod.S_ISDIR(st.st_mode)


def read_all(o: Any, path: str) -> bytes:
    """Whole contents of a file through the os-like module (EISDIR surfaces on read)."""
    fd = o.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            data = o.read(fd, 1 << 16)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)
    finally:
        o.close(fd)


def lines_of(data: bytes) -> list[bytes]:
    """Split after each ``\\n`` only (not ``\\r``), keeping the ends, as coreutils does."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def id_names(o: Any, path: str) -> dict[int, str]:
    """``{id: name}`` from a passwd/group-format file on the os-like module ({} if unreadable)."""
    try:
        data = read_all(o, path).decode("utf-8", "replace")
    except OSError:
        return {}
    names: dict[int, str] = {}
    for line in data.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return names
