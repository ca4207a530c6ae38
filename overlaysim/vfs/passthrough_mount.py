"""``mount -t hostdir /real/dir /sim/dir``: the passthrough type registered in HostFS.

The source is a real directory; the options are ``ro`` or ``rw``. A read-only mapping refuses
every change made through it (EROFS, the VFS's rule for a read-only mount), as a ``ro`` bind
mount does; the overlay engine never writes its lower layers anyway. One superblock per real
device and HostFS (:class:`~overlaysim.vfs.passthrough.PassSuper`), so that layers on one real
filesystem are one filesystem to the engine, as they are to the kernel (``samefs``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat as st
import weakref
from typing import TYPE_CHECKING

from overlaysim.vfs.fstypes import register_filesystem
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import Node, fserr
from overlaysim.vfs.passthrough import PassNode, PassSuper
from overlaysim.vfs.sys_handle import register_export_ops

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import HostFS, Process

FSTYPE = "hostdir"
_FS_IOC_GETFSUUID = 0x80111500  # _IOR(0x15, 0, struct fsuuid2 { u8 len; u8 uuid[16]; })

#: Per HostFS: its superblocks by real device number.
_FAMILIES: weakref.WeakKeyDictionary[HostFS, dict[int, PassSuper]] = weakref.WeakKeyDictionary()


def real_uuid(path: str | None) -> bytes:
    """The real filesystem's ``s_uuid`` (FS_IOC_GETFSUUID), which the kernel's overlay puts in
    the file handles it stores and checks (a null one, 16 zero bytes, as the kernel does:
    ext4 without a uuid, or a filesystem that does not say)."""
    if path is None:
        return bytes(16)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return bytes(16)
    try:
        buf = bytearray(17)
        fcntl.ioctl(fd, _FS_IOC_GETFSUUID, buf)
        return bytes(buf[1:17]) if buf[0] == 16 else bytes(16)
    except OSError:
        return bytes(16)
    finally:
        os.close(fd)


def node_at(fs: HostFS, real: str) -> PassNode:
    """The node of the real directory ``real`` (absolute, no symlinks), with its real
    ancestors on the same device as parents, so ``..`` and the engine's overlap checks see
    the real tree."""
    target = os.lstat(real)
    chain = [real]
    while chain[-1] != "/":
        up = os.path.dirname(chain[-1])
        if os.lstat(up).st_dev != target.st_dev:
            break
        chain.append(up)
    family = _FAMILIES.setdefault(fs, {})
    sb = family.get(target.st_dev)
    if sb is None:
        sb = PassSuper(fs.clock, target.st_dev, real_uuid(real), family)
    top_st = os.lstat(chain[-1])
    node = sb.nodes.get(top_st.st_ino)
    if node is None or node.ftype != st.S_IFDIR:
        node = sb.nodes[top_st.st_ino] = PassNode(sb, top_st, None, chain[-1])
    if sb.top is None or sb.top.parent is not sb.top:
        sb.top = node
    for path in reversed(chain[:-1]):
        node = node._child(os.path.basename(path), os.lstat(path))
    return node


def mount_hostdir(proc: Process, source: str, data: str, target: str) -> Mount:
    """A mapping of the real directory ``source``; ``ro``/``rw`` are the only options."""
    ro = False
    for opt in filter(None, data.split(",")):
        if opt not in ("ro", "rw"):
            raise fserr(errno.EINVAL)
        ro = opt == "ro"
    if not os.path.isabs(source):
        raise fserr(errno.EINVAL)  # the simulation has no real cwd to resolve it from
    real = os.path.realpath(source)
    if not os.path.isdir(real):
        raise fserr(errno.ENOTDIR if os.path.lexists(real) else errno.ENOENT)
    root = node_at(proc.fs, real)
    mnt = Mount(root, source, FSTYPE, f"{'ro' if ro else 'rw'},relatime", None, None)
    mnt.rdonly = ro
    return mnt


class _RealExport:
    """name_to_handle_at/open_by_handle_at on a mapping: the real filesystem's handles, as
    on the bind mount a mapping stands for (an overlay's index stores the same bytes)."""

    def encode_fh(self, mnt: Mount, node: Node, fid_only: bool) -> tuple[int, bytes]:
        got = node.real_handle() if isinstance(node, PassNode) else None
        if got is None:
            raise fserr(errno.EOPNOTSUPP)
        return got[0], got[1]

    def fh_to_node(self, mnt: Mount, handle_type: int, data: bytes) -> Node | None:
        root = mnt.root
        return root.decode_handle(handle_type, data) if isinstance(root, PassNode) else None


register_filesystem(FSTYPE, mount_hostdir)
register_export_ops(FSTYPE, _RealExport())
