"""Copy-up (fs/overlayfs/copy_up.c): bring a lower object into the upper layer before a change.

Parents first, up to the root. Data, mode (setuid kept), owner, atime/mtime and every
non-overlay xattr are copied; ctime is new. The upper parent's times are restored afterwards,
so a merged directory's mtime changes only when an entry is really added or removed.
``origin`` (a file handle of the lower object) is written unless the lower file has several
hard links (index=off), and the upper parent is marked ``impure``. With index=on such a file
is copied into W/index instead and linked at its name; a later name of the same lower inode
is only linked ("link-up", see ``index``).

With ``metacopy=on`` a regular file that is not opened for writing (chmod, chown, utimes,
xattrs, rename, link) is copied up metadata only: a sparse upper file of the full size with an
empty ``metacopy`` xattr, whose data still comes from the lower layers. Opening it for writing,
with O_TRUNC, or truncating it later copies the data in (ovl_copy_up_meta_inode_data): the
``metacopy`` xattr goes and the upper file's mtime is the time of that copy.

File bytes are shared copy-on-write with the lower inode, so copying up 64 MiB costs what a
metadata copy costs; the event still reports the bytes the kernel would have copied.
"""

from __future__ import annotations

import errno
import os
import stat as st
from typing import TYPE_CHECKING

from overlaysim.events import Event
from overlaysim.overlay import fh, index
from overlaysim.overlay.namei import lookup_lowerdata, xattr
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.inode import OvlInode
    from overlaysim.overlay.super import OvlFS

_S_IFMT = 0o170000
_CHUNK = 1 << 20


def open_reason(flags: int) -> str:
    acc = flags & os.O_ACCMODE
    names = {os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}
    parts = [names.get(acc, "O_RDONLY")] + (["O_TRUNC"] if flags & os.O_TRUNC else [])
    return "open(" + "|".join(parts) + ")"


def needs_data(flags: int) -> bool:
    """ovl_open_flags_need_copy_up(): opened for writing or with O_TRUNC."""
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR) or bool(flags & os.O_TRUNC)


def copy_up(ino: OvlInode, reason: str, flags: int = 0) -> Node:
    """Return the upper inode of ``ino``, copying it (and its parents) up first if needed.

    ``flags`` are the open flags that ask for it (0 for chmod, setxattr, rename, link...,
    ``O_WRONLY`` for a write or truncate). Under metacopy=on a regular file copied up with
    flags that need no data gets its metadata only; flags that need data bring the data of a
    metacopy file in. ``O_TRUNC``: ovl_copy_up_one sets the size to 0 first, so no data is
    copied (measured on 6.18: a 400 MiB lower file opens O_TRUNC in 0.3 ms, O_APPEND 1.6 s).
    A lazy lowerdata (in a data-only layer) is looked up first, even for a copy-up that needs
    no data or was done already: its errors (ENOENT...) are the copy-up's (ovl_copy_up_flags)."""
    lookup_lowerdata(ino)
    if ino.upper is not None:
        if ino.ofs.index is not None and not index.has_upper_alias(ino):
            # indexed: the inode is up (in W/index), this name is not linked yet
            if ino.ofs.sb.rdonly:
                raise fserr(errno.EROFS)
            index.link_up(ino, copy_up(_parent(ino), f"parent of a {reason}"))
        if needs_data(flags) and ino.metacopy:
            _copy_up_meta_inode_data(ino, reason, flags)
        return ino.upper
    ofs = ino.ofs
    if ofs.upper_root is None or ofs.sb.rdonly:
        raise fserr(errno.EROFS)
    disconnected = ino.parent is ino  # decoded from a file handle (export.py): no name
    if disconnected:
        if ofs.index is None or not index.need_index(ino):
            raise fserr(errno.EIO)  # "Disconnected dentry must be copied up to index dir"
        upper_parent = ofs.index.dir  # the copy goes to W/index; no name is linked
    else:
        parent = _parent(ino)
        up = parent.upper  # already up and nothing to link (the usual case): no call
        upper_parent = (up if up is not None and ofs.index is None
                        else copy_up(parent, f"parent of a {reason}"))  # fmt: skip
    layer, lower = ino.lowers[0]
    s = lower.stat()
    ftype = s.st_mode & _S_IFMT
    size = 0 if flags & os.O_TRUNC else s.st_size
    metacopy = ofs.params.metacopy and ftype == st.S_IFREG and not needs_data(flags)
    saved = _times(upper_parent)
    to_index = index.need_index(ino)
    dir_index = to_index and ftype == st.S_IFDIR  # nfs_export: an entry naming the upper dir
    to_index = to_index and not dir_index
    if to_index:  # a lower hard link goes to W/index under its origin's handle, then is linked
        assert ofs.index is not None
        count = index.overlay_nlink(ino)
        name = ofs.index.name_of(lower)
        assert name is not None
        new = _copy_object(ofs.index.dir, name, lower)
    else:
        new = _copy_object(upper_parent, ino.name, lower)
    copied = 0
    if ftype == st.S_IFREG and not metacopy and size:
        copied = _fill_data(new, ino.lowers[-1][1], size)  # the bytes come from lowerdata
    for name in lower.listxattr():
        if name.startswith(ofs.prefix) and not name.startswith(ofs.prefix + "overlay."):
            continue  # the lower layer's own overlay state is never copied
        try:
            new.setxattr(name, lower.getxattr(name), 0)
        except OSError:
            continue
    with_origin = ino.keeps_origin() or to_index
    if with_origin:
        # userxattr: user.* cannot be set on symlinks and special files; the kernel ignores
        # that EPERM, so such a copy-up has no origin on disk (the cached inode keeps st_ino).
        if not ofs.prefix.startswith("user.") or new.mode & _S_IFMT in (st.S_IFREG, st.S_IFDIR):
            new.setxattr(ofs.prefix + "origin", fh.origin_value(ofs, lower), 0)
        else:
            with_origin = False
        ino.origin_ino = lower.ino
    if metacopy:
        new.setxattr(ofs.prefix + "metacopy", b"", 0)  # empty: no verity digest
    if dir_index:
        index.create_dir_index(ino, new)
    if ftype == st.S_IFREG and _size(new) != size:
        new.setattr(size=size)  # ovl_set_size: a metacopy file is a hole of the full size
    new.setattr(mode=st.S_IMODE(s.st_mode), atime=s.st_atime_ns, mtime=s.st_mtime_ns)
    if not to_index:
        set_impure(ofs.prefix, upper_parent)
        _restore_times(upper_parent, saved)
    ino.upper = new
    ofs.emit(Event(
        "copy_up", ino.merged_path(), ofs.mount_path, reason,
        {"type": _TYPE_NAMES.get(ftype, "special"), "layer": f"lower{layer + 1}",
         "bytes": copied, "origin": with_origin, "metadata_only": metacopy, "indexed": to_index or dir_index},
    ))  # fmt: skip
    if to_index:
        assert ofs.index is not None
        index.set_nlink_upper(ino, count)  # the count of every name, before this one is linked
        ofs.index.share(ino)
        if not disconnected:
            index.link_up(ino, upper_parent)
    return new


def _times(node: Node) -> tuple[int, int]:
    """(atime, mtime) of an upper dir in ns, to put back after the copy-up adds to it."""
    if isinstance(node, MemInode):
        return (node.atime, node.mtime)
    s = node.stat()
    return (s.st_atime_ns, s.st_mtime_ns)


def _restore_times(node: Node, saved: tuple[int, int]) -> None:
    """ovl_set_timestamps() on the upper parent: its atime and mtime as before the copy-up
    (a real upper dir, vfs/passthrough, by utimensat; the kernel's notify_change sets ctime)."""
    if isinstance(node, MemInode):
        node.atime, node.mtime = saved
        node.stc = None
    else:
        node.setattr(atime=saved[0], mtime=saved[1])


def _parent(ino: OvlInode) -> OvlInode:
    from overlaysim.overlay.inode import OvlInode

    parent = ino.parent
    assert parent is not ino and isinstance(parent, OvlInode)
    return parent


def _copy_up_meta_inode_data(ino: OvlInode, reason: str, flags: int) -> None:
    """ovl_copy_up_meta_inode_data(): fill a metacopy upper file with its data.

    As many bytes as the origin's size are copied from the data file (none for O_TRUNC), over
    the upper file's hole; then the ``metacopy`` xattr is removed. Writing the data stamps the
    upper file's mtime (measured on 6.18: an open(O_WRONLY) with no write changes it)."""
    ofs = ino.ofs
    upper = ino.upper
    assert upper is not None
    layer, data = ino.lowers[-1]
    size = 0 if flags & os.O_TRUNC else ino.lowers[0][1].stat().st_size
    mtime = upper.stat().st_mtime_ns
    copied = _fill_data(upper, data, size) if size else 0
    upper.removexattr(ofs.prefix + "metacopy")
    if isinstance(upper, MemInode):
        upper.mtime = upper.ctime if copied else mtime
        upper.stc = None
    ofs.emit(Event(
        "copy_up", ino.merged_path(), ofs.mount_path, f"data copy-up of a metacopy file ({reason})",
        {"type": "file", "layer": f"lower{layer + 1}", "bytes": copied,
         "origin": xattr(upper, ofs.prefix + "origin") is not None, "metadata_only": False},
    ))  # fmt: skip


_TYPE_NAMES = {st.S_IFREG: "file", st.S_IFDIR: "dir", st.S_IFLNK: "symlink"}


def _copy_object(upper_parent: Node, name: str, lower: Node) -> Node:
    mode, uid, gid = lower.mode, lower.uid, lower.gid
    ftype = mode & _S_IFMT
    if ftype == st.S_IFDIR:
        return upper_parent.mkdir(name, mode & 0o7777, uid, gid)
    if ftype == st.S_IFLNK:
        return upper_parent.symlink(name, lower.readlink(), uid, gid)
    rdev = lower.stat().st_rdev if ftype in (st.S_IFCHR, st.S_IFBLK) else 0
    return upper_parent.create(name, mode, uid, gid, rdev)


def _size(node: Node) -> int:
    """st_size without building a stat result (the copy-up hot path)."""
    return node.size() if type(node) is MemInode else node.stat().st_size


def _fill_data(dst: Node, src: Node, size: int) -> int:
    """ovl_copy_up_file(): write the first ``size`` bytes of ``src`` (fewer if it is shorter)
    over ``dst``, an empty file or a hole; returns how many bytes were copied. The size of
    ``dst`` never shrinks."""
    old_size = _size(dst)
    if isinstance(dst, MemInode) and isinstance(src, MemInode):
        dst.blob = src.share_blob()
        dst.stc = None
        have = dst.blob.size()  # not .buf: that would join (and read) a shared prefix
        copied = min(have, size)
        if have > copied:
            dst.truncate(copied)
    elif (got := _copy_real(dst, src, size)) is not None:
        copied = got  # both on the real disk (vfs/passthrough): copy_file_range, as the kernel
    else:
        reader, writer = src.open_data(os.O_RDONLY), dst.open_data(os.O_WRONLY)
        copied = 0
        while copied < size:
            chunk = reader.read(copied, min(_CHUNK, size - copied))
            if not chunk:
                break
            writer.write(copied, chunk)
            copied += len(chunk)
    if copied < old_size:
        dst.open_data(os.O_WRONLY).truncate(old_size)
    return copied


def _copy_real(dst: Node, src: Node, size: int) -> int | None:
    """Bytes copied by the real kernel between two real files, or None where it cannot."""
    fast = getattr(dst, "copy_data_from", None)
    return fast(src, size) if fast is not None else None


def fix_origin(ofs: OvlFS, upper_parent: Node, upper: Node, lower: Node, parent_path: str,
               name: str) -> None:  # fmt: skip
    """ovl_fix_origin(): a merge dir whose upper has no origin (made by hand, or by an old
    kernel) gets one at its first lookup, pointing at the topmost lower dir, and its upper
    parent becomes impure. Measured on 6.18: a plain ``stat`` writes both."""
    if xattr(upper, ofs.prefix + "origin") is not None:
        return
    upper.setxattr(ofs.prefix + "origin", fh.origin_value(ofs, lower), 0)
    set_impure(ofs.prefix, upper_parent)
    path = parent_path.rstrip("/") + "/" + name
    ofs.emit(Event("origin", path, ofs.mount_path, "lookup of a merge dir without origin",
                   {"upper_parent": "impure"}))  # fmt: skip


def set_impure(prefix: str, upper_dir: Node) -> None:
    if xattr(upper_dir, prefix + "impure") is None:
        upper_dir.setxattr(prefix + "impure", b"y", 0)
