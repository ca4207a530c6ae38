"""The inode interface every filesystem implements (Linux's inode_operations + file_operations).

The VFS (``namei``, ``syscalls``) does path walks, permission checks and fd bookkeeping once,
and calls these methods for what differs between filesystems: tmpfs keeps entries in a dict,
overlay merges layers. Methods raise ``OSError`` with the kernel's errno.
"""

from __future__ import annotations

import errno
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from overlaysim.vfs.superblock import SuperBlock
    from overlaysim.vfs.task import Task


def fserr(code: int, path: object = None) -> OSError:
    """An OSError exactly as ``os`` raises it (errno, strerror, filename)."""
    if path is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), path)


#: The namespace generation: bumped whenever a name may stop naming what it named (an entry
#: removed or replaced, a mount attached or detached). Path-walk caches compare it; adding a
#: new name never invalidates a successful walk, so creating files does not bump it.
NS_GEN = [0]


# d_type values of getdents(2), as scandir reports them.
#: setattr(atime=UTIME_NOW) stamps the same clock reading as the new ctime (utimensat).
UTIME_NOW = -(2**63)

DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12


def dtype_of(mode: int) -> int:
    return (mode >> 12) & 0o17


class Node(ABC):
    """Abstract inode.

    Attributes every implementation provides (plain slots or properties): ``mode`` (with the file
    type bits), ``ftype`` (just the type bits), ``uid``, ``gid``, ``ino`` and ``sb`` (for ``st_dev``), ``mounted`` (how many mounts
    sit on this directory), ``parent`` (directories: the physical parent, for ``..``).
    """

    __slots__ = ()
    # Writable attributes implementations keep as data; declared for the type checker.
    mode: int
    ftype: int  # the S_IFMT bits: an inode never changes type
    uid: int
    gid: int
    ino: int
    sb: SuperBlock
    mounted: int
    parent: Node
    #: True when file data lives in this object (read/write are methods of the node itself).
    is_overlay: ClassVar[bool] = False

    # --- lookup & listing ------------------------------------------------------------------
    def lookup(self, name: str) -> Node | None:
        raise fserr(errno.ENOTDIR)

    def readdir(self) -> list[tuple[str, int, int]]:
        """(name, d_type, d_ino) in the filesystem's native order, without ``.`` and ``..``."""
        raise fserr(errno.ENOTDIR)


    def is_dead(self) -> bool:
        """A removed directory: nothing may be created in it (ENOENT)."""
        return False

    # --- attributes ------------------------------------------------------------------------
    @abstractmethod
    def stat(self) -> os.stat_result:
        ...

    def readlink(self) -> str:
        raise fserr(errno.EINVAL)

    @abstractmethod
    def setattr(
        self,
        *,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        size: int | None = None,
        atime: int | None = None,
        mtime: int | None = None,
    ) -> None:
        ...

    def touch_atime(self) -> None:
        """Access-time update under ``relatime`` (reads, readdir)."""

    # --- xattrs (raw: namespace policy is the VFS's) -----------------------------------------
    def getxattr(self, name: str) -> bytes:
        raise fserr(errno.ENODATA)

    def listxattr(self) -> list[str]:
        return []

    def setxattr(self, name: str, value: bytes, flags: int) -> None:
        raise fserr(errno.EOPNOTSUPP)

    def removexattr(self, name: str) -> None:
        raise fserr(errno.ENODATA)

    # --- namespace operations on directories (permissions already checked) -------------------
    def create(self, name: str, mode: int, uid: int, gid: int, rdev: int) -> Node:
        raise fserr(errno.ENOTDIR)

    def mkdir(self, name: str, mode: int, uid: int, gid: int) -> Node:
        raise fserr(errno.ENOTDIR)

    def symlink(self, name: str, target: str, uid: int, gid: int) -> Node:
        raise fserr(errno.ENOTDIR)

    def link(self, name: str, node: Node) -> Node:
        raise fserr(errno.ENOTDIR)

    def unlink(self, name: str, node: Node) -> None:
        raise fserr(errno.ENOTDIR)

    def rmdir(self, name: str, node: Node) -> None:
        raise fserr(errno.ENOTDIR)

    def rename(self, name: str, node: Node, newdir: Node, newname: str, flags: int) -> None:
        raise fserr(errno.ENOTDIR)

    # --- data ------------------------------------------------------------------------------
    def open_data(self, flags: int) -> FileData:
        """Called when a regular file is opened; overlay copies up here for write opens."""
        raise fserr(errno.ENXIO)

    def open_for(self, task: Task | None, flags: int) -> FileData:
        """The open(2) entry point: most files ignore who opens them; /proc files do not."""
        return self.open_data(flags)

    def iter_names(self) -> Iterable[str]:
        return (name for name, _t, _i in self.readdir())


class FileData(ABC):
    """What an open regular file reads and writes (Linux's struct file private data)."""

    __slots__ = ()

    @abstractmethod
    def read(self, pos: int, n: int) -> bytes:
        ...

    @abstractmethod
    def write(self, pos: int, data: bytes) -> int:
        ...

    @abstractmethod
    def size(self) -> int:
        ...

    @abstractmethod
    def truncate(self, length: int) -> None:
        ...

    def seek_data(self, pos: int, hole: bool) -> int:
        """SEEK_DATA/SEEK_HOLE from ``pos`` (< size): a file without holes is all data."""
        return self.size() if hole else pos

    @abstractmethod
    def node(self) -> Node:
        ...
