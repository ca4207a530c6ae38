"""The overlay inode (fs/overlayfs/inode.c): one object per merged name, whose attributes come
from the topmost real inode, and whose st_ino/st_dev/nlink follow the kernel's rules.

An open file keeps the overlay inode, not the real one, and reads through whatever is on top
now: an fd opened read-only before a copy-up sees the copied-up data afterwards (section 3.7).
A metacopy file (metadata copied up, data not yet) takes its attributes from the upper inode
and its bytes and ``st_blocks`` from the lower file that holds the data ("lowerdata").
"""

from __future__ import annotations

import errno
import os
import stat as st
from typing import TYPE_CHECKING

from overlaysim.overlay import copy_up, index, namei, readdir, xattrs, xino
from overlaysim.overlay import dir as ovl_dir
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import NS_GEN, FileData, Node, fserr

if TYPE_CHECKING:
    from overlaysim.overlay.super import OvlFS
    from overlaysim.vfs.superblock import SuperBlock

_S_IFMT = 0o170000
_S_IFDIR, _S_IFREG = st.S_IFDIR, st.S_IFREG
_MISSING = object()
_stat_result = os.stat_result
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC
# The copy-up reason of an open for writing depends only on the access mode and O_TRUNC:
# all of them made at import, so no open runs a first-use path (HypoFuzz keeps only the
# coverage an input repeats on replay, whatever ran before it).
_REASON_FLAGS = os.O_ACCMODE | os.O_TRUNC
_OPEN_REASONS = {m | t: copy_up.open_reason(m | t) for m in range(os.O_ACCMODE + 1)
                 for t in (0, os.O_TRUNC)}  # fmt: skip


class OvlInode(Node):
    __slots__ = ("children", "dead", "ftype", "lowerdata_redirect", "lowers", "mounted", "name",
                 "ofs", "origin_ino", "parent", "rdc", "stc", "upper", "vino", "xfsid",
                 "xwhiteouts")  # fmt: skip

    def __init__(
        self,
        ofs: OvlFS,
        parent: OvlInode | None,
        name: str,
        upper: Node | None,
        lowers: list[tuple[int, Node]],
    ) -> None:
        self.ofs = ofs
        self.parent: Node = self if parent is None else parent
        self.name = name
        self.upper = upper
        self.lowers = lowers
        self.mounted = 0
        self.dead = False
        self.children: dict[str, OvlInode | None] = {}
        self.xwhiteouts = False  # the dentry flag: an opaque="x" lower dir met on lookup
        # a metacopy file whose data is in a data-only layer, at this absolute path: looked up
        # (and appended to ``lowers``) on first open or copy-up, see namei.lookup_lowerdata
        self.lowerdata_redirect: str | None = None
        self.ftype = (upper if upper is not None else lowers[0][1]).mode & _S_IFMT
        # the root keeps the upper root's number though index=on gives it an origin
        # (ovl_get_root); a nameless inode decoded from a handle (export.py) is no root
        root = parent is None and type(self) is OvlInode
        self.origin_ino = None if root else self.origin_of(upper)
        self.vino = 0  # layers on several filesystems: a dir's non-persistent st_ino (xino.py)
        self.xfsid = -1  # ... and the fsid of an origin known by its handle only
        # the last stat result, with the real inode's cached one it was built from: valid
        # while the real inode keeps that object (MemInode drops it on any change) and the
        # real inode is the same (copy-up changes it)
        self.stc: tuple[os.stat_result, os.stat_result] | None = None
        # likewise the last plain merged listing, with the layer dirs' cached stat results
        self.rdc: tuple[list[os.stat_result], list[tuple[str, int, int]]] | None = None

    # --- identity --------------------------------------------------------------------------
    @property
    def real(self) -> Node:
        u = self.upper
        return u if u is not None else self.lowers[0][1]

    @property
    def mode(self) -> int:  # type: ignore[override]
        u = self.upper
        return (u if u is not None else self.lowers[0][1]).mode

    @property
    def uid(self) -> int:  # type: ignore[override]
        u = self.upper
        return (u if u is not None else self.lowers[0][1]).uid

    @property
    def gid(self) -> int:  # type: ignore[override]
        u = self.upper
        return (u if u is not None else self.lowers[0][1]).gid

    @property
    def sb(self) -> SuperBlock:  # type: ignore[override]
        return self.ofs.sb

    @property
    def ino(self) -> int:  # type: ignore[override]
        """st_ino. Same fs: the origin's (lower) inode number survives copy-up (section 5.2);
        across filesystems it is mapped as overlay/xino.py says."""
        if self.ofs.xino.mode:
            return xino.ino_dev(self)[0]
        if self.origin_ino is not None:
            return self.origin_ino
        if self.upper is not None:
            return self.upper.ino
        return self.lowers[0][1].ino

    def origin_of(self, upper: Node | None) -> int | None:
        """st_ino of a copied-up object: its origin's. A metacopy file's lowers are found by
        path, and (ovl_hash_bylower) give the number unless the lower is a hard link."""
        if upper is None:
            return None
        if self.ftype == _S_IFREG and self.lowers and namei.has_metacopy(self.ofs, upper):
            return self.lowers[0][1].ino if self.keeps_origin() else None
        return xattrs.origin_ino(self.ofs, upper)

    @property
    def metacopy(self) -> bool:
        """Copied up metadata only: the data still comes from the lower layers (no
        OVL_UPPERDATA). Read from the upper inode, which all its names share."""
        u = self.upper
        # metacopy=off never makes one, and its lookup refuses (EPERM) those it meets
        return (u is not None and self.ofs.params.metacopy and self.ftype == _S_IFREG
                and bool(self.lowers) and namei.has_metacopy(self.ofs, u))  # fmt: skip

    def is_metacopy_dentry(self) -> bool:
        """ovl_is_metacopy_dentry(): the data is not in the inode attributes come from."""
        if self.ftype != _S_IFREG:
            return False
        if self.upper is not None:
            return self.metacopy
        return len(self.lowers) > 1 or self.lowerdata_redirect is not None

    def lowerdata_pending(self) -> bool:
        """A lazy lowerdata not looked up yet (ovl_dentry_lowerdata() is NULL)."""
        return self.lowerdata_redirect is not None and len(self.lowers) == 1

    @property
    def realdata(self) -> Node:
        """ovl_path_realdata(): the upper inode once it has the data, else the lowest lower."""
        u = self.upper
        if u is not None and not self.metacopy:
            return u
        return self.lowers[-1][1] if self.ftype == _S_IFREG else self.real

    def keeps_origin(self) -> bool:
        """index=off: a lower file with several hard links gets no origin on copy-up; with
        index=on it is indexed instead, and keeps it (unless it got an upper inode of its
        own, not the index entry, before)."""
        low = self.lowers[0][1]
        if low.mode & _S_IFMT == _S_IFDIR or low.stat().st_nlink <= 1:
            return True
        return self.ofs.index is not None and (self.upper is None or index.is_indexed(self))

    def is_merge_dir(self) -> bool:
        return self.ftype == _S_IFDIR and (self.upper is not None) + len(self.lowers) >= 2

    def is_opaque(self) -> bool:
        return self.upper is not None and namei.is_opaque(self.ofs, self.upper)

    def is_dir(self) -> bool:
        return self.ftype == _S_IFDIR

    def lower_by_layer(self) -> dict[int, Node]:
        return dict(self.lowers)

    def path(self) -> str:
        """The path inside the overlay ("/" for its root)."""
        parts: list[str] = []
        node: OvlInode = self
        while node.parent is not node:
            parts.append(node.name)
            parent = node.parent
            assert isinstance(parent, OvlInode)
            node = parent
        return "/" + "/".join(reversed(parts))

    def merged_path(self) -> str:
        p = self.path()
        base = self.ofs.mount_path.rstrip("/")
        return base + p if p != "/" else (base or "/")

    # --- lookup & listing ------------------------------------------------------------------
    def lookup(self, name: str) -> OvlInode | None:
        c = self.children.get(name, _MISSING)
        if c is _MISSING:
            if not self.is_dir():
                raise fserr(errno.ENOTDIR)
            found = namei.lookup_name(self.ofs, self, name)
            upper, lowers = found.upper, found.lowers
            if upper is not None and lowers and self.upper is not None and upper.mode & _S_IFMT == _S_IFDIR:
                copy_up.fix_origin(self.ofs, self.upper, upper, lowers[0][1], self.merged_path(), name)
            c = None if upper is None and not lowers else OvlInode(self.ofs, self, name, upper, lowers)
            if c is not None:
                c.xwhiteouts = found.xwhiteouts
                c.lowerdata_redirect = found.lowerdata_redirect
                if self.ofs.index is not None:
                    self.ofs.index.track(c)
            self.children[name] = c
        return c  # type: ignore[return-value]

    def readdir(self) -> list[tuple[str, int, int]]:
        if not self.is_dir():
            raise fserr(errno.ENOTDIR)
        return readdir.readdir(self)

    def is_dead(self) -> bool:
        return self.dead

    # --- attributes ------------------------------------------------------------------------
    def stat(self) -> os.stat_result:
        u = self.upper
        real = u if u is not None else self.lowers[0][1]
        c = self.stc
        if c is not None and type(real) is MemInode and c[0] is real.stc:
            return c[1]
        merged = self.ftype == _S_IFDIR and (u is not None) + len(self.lowers) >= 2
        if self.ofs.xino.mode:  # layers on several filesystems
            ino, dev = xino.ino_dev(self)
        else:
            origin = self.origin_ino
            ino = real.ino if origin is None else origin
            dev = self.ofs.sb.dev
        lowers = self.lowers
        metacopy = lowers and (u is not None or len(lowers) > 1 or self.lowerdata_redirect
                               is not None) and self.is_metacopy_dentry()  # fmt: skip
        if type(real) is MemInode and not metacopy:
            if self.ofs.index is not None:
                nlink = index.stat_nlink(self, real.nlink)
                return _stat_result(real.stat_fields(ino, dev, 1 if merged else nlink))
            result = _stat_result(real.stat_fields(ino, dev, 1 if merged else real.nlink))
            self.stc = (real.stc or real.stat(), result)
            return result
        s = real.stat()
        fields = [*list(s)[:10], s.st_atime, s.st_mtime, s.st_ctime, s.st_atime_ns,
                  s.st_mtime_ns, s.st_ctime_ns, s.st_blksize, s.st_blocks, s.st_rdev]
        nlink = s.st_nlink if self.ofs.index is None else index.stat_nlink(self, s.st_nlink)
        fields[1], fields[2], fields[3] = ino, dev, 1 if merged else nlink
        if metacopy:  # ovl_getattr: a metacopy file's blocks are those of its data...
            if self.lowerdata_pending():  # ...guessed from the size before the data is found
                fields[17] = -(-s.st_size // s.st_blksize) * s.st_blksize >> 9
            else:
                fields[17] = lowers[-1][1].stat().st_blocks
        return _stat_result(fields)

    def readlink(self) -> str:
        return self.real.readlink()

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
        reason = (
            "truncate" if size is not None else "chmod" if mode is not None
            else "chown" if uid is not None or gid is not None else "utimes"
        )  # fmt: skip
        # a size change needs the data (ovl_copy_up_with_data); the rest may be metadata only
        upper = copy_up.copy_up(self, reason, os.O_WRONLY if size is not None else 0)
        upper.setattr(mode=mode, uid=uid, gid=gid, size=size, atime=atime, mtime=mtime)

    def touch_atime(self) -> None:
        if self.upper is not None:  # reading a lower file does not update its atime
            self.upper.touch_atime()

    # --- xattrs ----------------------------------------------------------------------------
    def getxattr(self, name: str) -> bytes:
        return xattrs.get(self, name)

    def listxattr(self) -> list[str]:
        return xattrs.listx(self)

    def setxattr(self, name: str, value: bytes, flags: int) -> None:
        xattrs.set_(self, name, value, flags)

    def removexattr(self, name: str) -> None:
        xattrs.remove(self, name)

    # --- namespace -------------------------------------------------------------------------
    def create(self, name: str, mode: int, uid: int, gid: int, rdev: int) -> Node:
        return ovl_dir.create(self, name, mode, uid, gid, rdev=rdev)

    def mkdir(self, name: str, mode: int, uid: int, gid: int) -> Node:
        return ovl_dir.create(self, name, _S_IFDIR | mode, uid, gid)

    def symlink(self, name: str, target: str, uid: int, gid: int) -> Node:
        return ovl_dir.create(self, name, st.S_IFLNK | 0o777, uid, gid, target=target)

    def link(self, name: str, node: Node) -> Node:
        assert isinstance(node, OvlInode)
        return ovl_dir.link(self, name, node)

    # A name that stops naming what it named bumps NS_GEN, so cached path walks through the
    # overlay are dropped: a whiteout over a lower name changes no upper entry that was there.
    def unlink(self, name: str, node: Node) -> None:
        assert isinstance(node, OvlInode)
        try:
            ovl_dir.remove(self, name, node, is_dir=False)
        finally:
            NS_GEN[0] += 1

    def rmdir(self, name: str, node: Node) -> None:
        assert isinstance(node, OvlInode)
        try:
            ovl_dir.remove(self, name, node, is_dir=True)
        finally:
            NS_GEN[0] += 1

    def rename(self, name: str, node: Node, newdir: Node, newname: str, flags: int) -> None:
        assert isinstance(node, OvlInode) and isinstance(newdir, OvlInode)
        try:
            ovl_dir.rename(self, name, node, newdir, newname, flags)
        finally:
            NS_GEN[0] += 1

    # --- data ------------------------------------------------------------------------------
    def open_data(self, flags: int) -> OvlFile:
        namei.lookup_lowerdata(self)  # ovl_open: the data is needed whatever the flags
        if flags & _WRITE_FLAGS:
            copy_up.copy_up(self, _OPEN_REASONS[flags & _REASON_FLAGS], flags)
        return OvlFile(self)


class OvlFile(FileData):
    """An open overlay file: always reads and writes the inode that is on top now."""

    __slots__ = ("_ino",)

    def __init__(self, ino: OvlInode) -> None:
        self._ino = ino

    def _data(self) -> FileData:
        return self._ino.realdata.open_data(os.O_RDONLY)

    def read(self, pos: int, n: int) -> bytes:
        return self._data().read(pos, n)

    def write(self, pos: int, data: bytes) -> int:
        upper = copy_up.copy_up(self._ino, "write", os.O_WRONLY)
        return upper.open_data(os.O_WRONLY).write(pos, data)

    def size(self) -> int:
        return self._data().size()

    def truncate(self, length: int) -> None:
        copy_up.copy_up(self._ino, "truncate", os.O_WRONLY).open_data(os.O_WRONLY).truncate(length)

    def seek_data(self, pos: int, hole: bool) -> int:
        return self._data().seek_data(pos, hole)

    def node(self) -> OvlInode:
        return self._ino
