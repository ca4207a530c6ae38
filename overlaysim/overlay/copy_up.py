"""Copy-up (fs/overlayfs/copy_up.c): bring a lower object into the upper layer before a change.

Parents first, up to the root. Data, mode (setuid kept), owner, atime/mtime and every
non-overlay xattr are copied; ctime is new. The upper parent's times are restored afterwards,
so a merged directory's mtime changes only when an entry is really added or removed.
``origin`` (a file handle of the lower object) is written unless the lower file has several
hard links (index=off), and the upper parent is marked ``impure``.

File bytes are shared copy-on-write with the lower inode, so copying up 64 MiB costs what a
metadata copy costs; the event still reports the bytes the kernel would have copied.
"""

from __future__ import annotations

import errno
import os
import stat as st
from typing import TYPE_CHECKING

from overlaysim.events import Event
from overlaysim.overlay.namei import xattr
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT = 0o170000


def open_reason(flags: int) -> str:
    acc = flags & os.O_ACCMODE
    names = {os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}
    parts = [names.get(acc, "O_RDONLY")] + (["O_TRUNC"] if flags & os.O_TRUNC else [])
    return "open(" + "|".join(parts) + ")"


def copy_up(ino: OvlInode, reason: str, truncate: bool = False) -> Node:
    """Return the upper inode of ``ino``, copying it (and its parents) up first if needed.

    ``truncate`` (open with O_TRUNC): ovl_copy_up_one sets the size to 0 first, so no data is
    copied (measured on 6.18: a 400 MiB lower file opens O_TRUNC in 0.3 ms, O_APPEND 1.6 s)."""
    if ino.upper is not None:
        return ino.upper
    ofs = ino.ofs
    if ofs.upper_root is None or ofs.sb.rdonly:
        raise fserr(errno.EROFS)
    parent = ino.parent
    assert parent is not ino
    from overlaysim.overlay.inode import OvlInode

    assert isinstance(parent, OvlInode)
    upper_parent = copy_up(parent, f"parent of a {reason}")
    lower = ino.lowers[0][1]
    layer = ino.lowers[0][0]
    saved = (upper_parent.atime, upper_parent.mtime) if isinstance(upper_parent, MemInode) else None
    new = _copy_object(upper_parent, ino.name, lower, not truncate)
    for name in lower.listxattr():
        if name.startswith(ofs.prefix) and not name.startswith(ofs.prefix + "overlay."):
            continue  # the lower layer's own overlay state is never copied
        try:
            new.setxattr(name, lower.getxattr(name), 0)
        except OSError:
            continue
    with_origin = ino.keeps_origin()
    if with_origin:
        from overlaysim.overlay.xattrs import encode_fh

        # userxattr: user.* cannot be set on symlinks and special files; the kernel ignores
        # that EPERM, so such a copy-up has no origin on disk (the cached inode keeps st_ino).
        if not ofs.prefix.startswith("user.") or new.mode & _S_IFMT in (st.S_IFREG, st.S_IFDIR):
            new.setxattr(ofs.prefix + "origin", encode_fh(lower), 0)
        else:
            with_origin = False
        ino.origin_ino = lower.ino
    s = lower.stat()
    new.setattr(mode=st.S_IMODE(s.st_mode), atime=s.st_atime_ns, mtime=s.st_mtime_ns)
    set_impure(ofs.prefix, upper_parent)
    if isinstance(upper_parent, MemInode) and saved is not None:
        upper_parent.atime, upper_parent.mtime = saved
        upper_parent.stc = None
    ino.upper = new
    ftype = s.st_mode & _S_IFMT
    ofs.emit(Event(
        "copy_up", ino.merged_path(), ofs.mount_path, reason,
        {"type": _TYPE_NAMES.get(ftype, "special"), "layer": f"lower{layer + 1}",
         "bytes": s.st_size if ftype == st.S_IFREG and not truncate else 0,
         "origin": with_origin},
    ))  # fmt: skip
    return new


_TYPE_NAMES = {st.S_IFREG: "file", st.S_IFDIR: "dir", st.S_IFLNK: "symlink"}


def _copy_object(upper_parent: Node, name: str, lower: Node, data: bool = True) -> Node:
    mode, uid, gid = lower.mode, lower.uid, lower.gid
    ftype = mode & _S_IFMT
    if ftype == st.S_IFDIR:
        return upper_parent.mkdir(name, mode & 0o7777, uid, gid)
    if ftype == st.S_IFLNK:
        return upper_parent.symlink(name, lower.readlink(), uid, gid)
    rdev = lower.stat().st_rdev if ftype in (st.S_IFCHR, st.S_IFBLK) else 0
    new = upper_parent.create(name, mode, uid, gid, rdev)
    if ftype == st.S_IFREG and data:
        if isinstance(new, MemInode) and isinstance(lower, MemInode):
            new.blob = lower.share_blob()
            new.stc = None
        else:
            src = lower.open_data(os.O_RDONLY)
            dst = new.open_data(os.O_WRONLY)
            pos, size = 0, src.size()
            while pos < size:
                chunk = src.read(pos, 1 << 20)
                dst.write(pos, chunk)
                pos += len(chunk)
    return new


def fix_origin(ofs: OvlFS, upper_parent: Node, upper: Node, lower: Node, parent_path: str,
               name: str) -> None:  # fmt: skip
    """ovl_fix_origin(): a merge dir whose upper has no origin (made by hand, or by an old
    kernel) gets one at its first lookup, pointing at the topmost lower dir, and its upper
    parent becomes impure. Measured on 6.18: a plain ``stat`` writes both."""
    if xattr(upper, ofs.prefix + "origin") is not None:
        return
    from overlaysim.overlay.xattrs import encode_fh

    upper.setxattr(ofs.prefix + "origin", encode_fh(lower), 0)
    set_impure(ofs.prefix, upper_parent)
    path = parent_path.rstrip("/") + "/" + name
    ofs.emit(Event("origin", path, ofs.mount_path, "lookup of a merge dir without origin",
                   {"upper_parent": "impure"}))  # fmt: skip


def set_impure(prefix: str, upper_dir: Node) -> None:
    if xattr(upper_dir, prefix + "impure") is None:
        upper_dir.setxattr(prefix + "impure", b"y", 0)
