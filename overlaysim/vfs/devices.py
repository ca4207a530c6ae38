"""Device and FIFO behaviour behind an open(): the few character drivers a container sees.

A char device 0/0 (an overlay whiteout outside an overlay) has no driver: ENXIO, as on Linux.
FIFOs are real pipes, but the simulation is single-threaded: an open that Linux would block on
forever (a reader with no writer, without O_NONBLOCK) raises EWOULDBLOCK instead of hanging.
"""

from __future__ import annotations

import errno
import os

from overlaysim.vfs.node import FileData, Node, fserr


class _Stream(FileData):
    """Data that is not a byte array with a size: devices and pipes (size 0, no truncate)."""

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    def size(self) -> int:
        return 0

    def truncate(self, length: int) -> None:
        return None

    def node(self) -> Node:
        return self._node


class NullDev(_Stream):
    """/dev/null (1,3), /dev/zero (1,5), /dev/full (1,7), /dev/urandom (1,9), /dev/random (1,8)."""

    __slots__ = ("_minor",)

    def __init__(self, node: Node, minor: int) -> None:
        super().__init__(node)
        self._minor = minor

    def read(self, pos: int, n: int) -> bytes:
        if self._minor == 3:
            return b""
        if self._minor in (8, 9):
            return os.urandom(n)
        return bytes(n)

    def write(self, pos: int, data: bytes) -> int:
        if self._minor == 7:
            raise fserr(errno.ENOSPC)
        return len(data)


class Pipe:
    __slots__ = ("buf", "readers", "writers")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.readers = 0
        self.writers = 0


class FifoEnd(_Stream):
    __slots__ = ("nonblock", "pipe")

    def __init__(self, node: Node, pipe: Pipe, nonblock: bool) -> None:
        super().__init__(node)
        self.pipe = pipe
        self.nonblock = nonblock

    def read(self, pos: int, n: int) -> bytes:
        p = self.pipe
        if not p.buf:
            if p.writers == 0:
                return b""
            raise fserr(errno.EAGAIN)
        out = bytes(p.buf[:n])
        del p.buf[:n]
        return out

    def write(self, pos: int, data: bytes) -> int:
        p = self.pipe
        if p.readers == 0:
            raise fserr(errno.EPIPE)
        p.buf += data
        return len(data)


_CHAR_DRIVERS = {(1, 3), (1, 5), (1, 7), (1, 8), (1, 9)}


def open_char(node: Node, rdev: int) -> FileData:
    key = (os.major(rdev), os.minor(rdev))
    if key not in _CHAR_DRIVERS:
        raise fserr(errno.ENXIO)
    return NullDev(node, key[1])


def open_fifo(pipes: dict[int, Pipe], node: Node, acc: int, nonblock: bool) -> FifoEnd:
    pipe = pipes.setdefault(id(node), Pipe())
    if acc == os.O_RDONLY:
        if not nonblock and pipe.writers == 0:
            raise OSError(errno.EWOULDBLOCK, "open of a FIFO with no writer would block forever")
        pipe.readers += 1
    elif acc == os.O_WRONLY:
        if pipe.readers == 0:
            if nonblock:
                raise fserr(errno.ENXIO)
            raise OSError(errno.EWOULDBLOCK, "open of a FIFO with no reader would block forever")
        pipe.writers += 1
    else:
        pipe.readers += 1
        pipe.writers += 1
    return FifoEnd(node, pipe, nonblock)


def close_fifo(end: FifoEnd, acc: int) -> None:
    if acc in (os.O_RDONLY, os.O_RDWR):
        end.pipe.readers -= 1
    if acc in (os.O_WRONLY, os.O_RDWR):
        end.pipe.writers -= 1
