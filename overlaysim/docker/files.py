"""Small file helpers over an os-like module, written the way dockerd writes its metadata:
to a temporary name in the same directory, then renamed (``ioutils.AtomicWriteFile``)."""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Any


def read(o: Any, path: str) -> bytes | None:
    """The whole file, or None if it does not exist."""
    try:
        fd = o.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while chunk := o.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        o.close(fd)


def write_atomic(o: Any, path: str, data: bytes, mode: int = 0o644) -> None:
    d, base = posixpath.split(path)
    tmp = posixpath.join(d, f".tmp-{base}")
    fd = o.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[o.write(fd, view) :]
    finally:
        o.close(fd)
    o.chmod(tmp, mode)
    o.rename(tmp, path)


def makedirs(o: Any, path: str, mode: int = 0o700) -> None:
    o.makedirs(path, mode, exist_ok=True)


def rmtree(o: Any, path: str) -> None:
    """Remove ``path`` and everything below it (no error if it is already gone)."""
    try:
        st = o.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        o.unlink(path)
        return
    for name in o.listdir(path):
        rmtree(o, posixpath.join(path, name))
    o.rmdir(path)


def listdir(o: Any, path: str) -> list[str]:
    try:
        return sorted(o.listdir(path))
    except FileNotFoundError:
        return []
