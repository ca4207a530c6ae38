"""A bulk path for unpacking archives: one call per regular file instead of six.

Unpacking a layer makes each file with open(O_CREAT|O_EXCL), write, fchown, fchmod, futimens
and close; for the empty files that fill a big ``node_modules`` those six calls cost more
than everything else the import does. ``file_maker`` gives a function that makes the same
inode in one step (type, mode, owner, data, atime and mtime as given; ctime and the parent's
mtime and ctime now, as the calls would leave them), for the one case where the calls cannot
fail or differ: a root process creating a new name in a writable tmpfs directory. For
anything else it declines (returns False) and the caller makes the ordinary calls, which
raise the errno the kernel would. Keep it in step with ``sys_file._open_creat`` and the
attribute calls: tests/image/test_bulk_import.py compares the two on every kind of entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overlaysim.vfs.memfs import Blob, MemInode
from overlaysim.vfs.namei import NAME_MAX
from overlaysim.vfs.sysbase import SysBase

_S_IFREG = 0o100000
_S_IFDIR = 0o040000
_NO_ID = (1 << 32) - 1  # (uid_t)-1: chown's "leave unchanged"

#: make(dir_fd, name, mode, uid, gid, data, atime_ns, mtime_ns) -> done
FileMaker = Callable[[int, str, int, int, int, bytes, int, int], bool]


def file_maker(o: Any) -> FileMaker | None:
    """The bulk file creator of ``o`` (an ``fs.os``), or None for any other os-like module."""
    if not isinstance(o, SysBase):
        return None
    task = o._t  # the process the module acts as: its credentials and descriptors

    def make(
        dir_fd: int, name: str, mode: int, uid: int, gid: int, data: bytes, atime: int, mtime: int
    ) -> bool:
        f = task.fds.get(dir_fd)
        if f is None or task.cred.uid != 0:
            return False
        d = f.node
        if (
            type(d) is not MemInode
            or d.ftype != _S_IFDIR
            or d.nlink == 0  # removed: ENOENT
            or f.mnt.rdonly
            or d.sb.rdonly
            or name in d.entries  # EEXIST (or a mountpoint)
            or not name
            or name == "."
            or name == ".."
            or "/" in name
            or "\0" in name
            or (len(name) > 63 and len(name.encode("utf-8", "surrogateescape")) > NAME_MAX)
            or not 0 <= uid < _NO_ID
            or not 0 <= gid < _NO_ID
        ):
            return False
        node = d.create(name, _S_IFREG | (mode & 0o7777), uid, gid, 0)
        node.atime = atime
        node.mtime = mtime
        if data:
            node.blob = Blob(bytearray(data))
        node.stc = None
        return True

    return make
