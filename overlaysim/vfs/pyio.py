"""``fs.open`` and ``fs.os.fdopen``: Python file objects over simulated fds (io module layers)."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overlaysim.vfs.sys_file import FileCalls

Buffer = Any


class FdRaw(io.RawIOBase):
    """A raw stream over one simulated fd."""

    def __init__(self, osm: FileCalls, fd: int, mode: str, name: Any = None) -> None:
        super().__init__()
        self._os = osm
        self._fd = fd
        self._mode = mode
        self.name = fd if name is None else name

    @property
    def mode(self) -> str:
        return self._mode

    def fileno(self) -> int:
        return self._fd

    def readable(self) -> bool:
        return "r" in self._mode or "+" in self._mode

    def writable(self) -> bool:
        return any(c in self._mode for c in "wax+")

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Buffer) -> int:
        view = memoryview(b).cast("B")
        data = self._os.read(self._fd, len(view))
        view[: len(data)] = data
        return len(data)

    def write(self, b: Buffer) -> int:
        return self._os.write(self._fd, bytes(memoryview(b)))

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._os.lseek(self._fd, pos, whence)

    def tell(self) -> int:
        return self._os.lseek(self._fd, 0, os.SEEK_CUR)

    def truncate(self, size: int | None = None) -> int:
        size = self.tell() if size is None else size
        self._os.ftruncate(self._fd, size)
        return size

    def close(self) -> None:
        if not self.closed:
            try:
                self._os.close(self._fd)
            finally:
                super().close()


def _flags(mode: str) -> int:
    plus = "+" in mode
    if "r" in mode:
        return os.O_RDWR if plus else os.O_RDONLY
    base = os.O_RDWR if plus else os.O_WRONLY
    if "w" in mode:
        return base | os.O_CREAT | os.O_TRUNC
    if "a" in mode:
        return base | os.O_CREAT | os.O_APPEND
    if "x" in mode:
        return base | os.O_CREAT | os.O_EXCL
    raise ValueError(f"invalid mode: {mode!r}")


def wrap(
    osm: FileCalls,
    fd: int,
    mode: str,
    buffering: int,
    encoding: str | None,
    errors: str | None,
    newline: str | None,
    name: Any,
) -> Any:
    raw = FdRaw(osm, fd, mode.replace("b", "").replace("t", ""), name)
    if buffering == 0:
        if "b" not in mode:
            raise ValueError("can't have unbuffered text I/O")
        return raw
    size = io.DEFAULT_BUFFER_SIZE if buffering < 0 or buffering == 1 else buffering
    buf: Any
    if raw.readable() and raw.writable():
        buf = io.BufferedRandom(raw, size)
    elif raw.writable():
        buf = io.BufferedWriter(raw, size)
    else:
        buf = io.BufferedReader(raw, size)
    if "b" in mode:
        return buf
    text = io.TextIOWrapper(
        buf, encoding=encoding or "utf-8", errors=errors, newline=newline,
        line_buffering=buffering == 1,
    )  # fmt: skip
    text.mode = mode  # type: ignore[misc]
    return text


def open_file(
    osm: FileCalls,
    path: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> Any:
    """Like builtins.open (create mode 0o666 minus umask)."""
    if set(mode) - set("rwxabt+") or sum(c in mode for c in "rwxa") != 1:
        raise ValueError(f"invalid mode: {mode!r}")
    fd = osm.open(path, _flags(mode), 0o666)
    try:
        f = wrap(osm, fd, mode, buffering, encoding, errors, newline, path)
        if "a" in mode:
            osm.lseek(fd, 0, os.SEEK_END)
        return f
    except BaseException:
        osm.close(fd)
        raise


def fdopen(osm: FileCalls, fd: int, mode: str = "r", buffering: int = -1) -> Any:
    return wrap(osm, fd, mode, buffering, None, None, None, fd)
