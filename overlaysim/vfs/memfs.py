"""tmpfs: the in-memory filesystem every layer lives on (mm/shmem.c in Linux).

Entries are a dict per directory; file data is a copy-on-write ``Blob`` so that overlay copy-up
can share the lower file's bytes and pay for a copy only when one side is written.
Observable details follow tmpfs on Linux 6.18 as measured: readdir lists newest first,
directory ``st_size`` is 40 + 20 per entry, short symlinks (< 128 bytes) take no blocks.
"""

from __future__ import annotations

import errno
import os
import stat as st

from overlaysim.vfs.node import NS_GEN, UTIME_NOW, FileData, Node, fserr
from overlaysim.vfs.superblock import SuperBlock

PAGE = 4096
BOGO_DIRENT = 20
SHORT_SYMLINK = 128
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
_stat_result = os.stat_result
_S_IFMT = 0o170000
_S_IFDIR = st.S_IFDIR
_S_IFLNK = st.S_IFLNK
_S_IFREG = st.S_IFREG


#: A write to a shared blob copies everything before the first changed byte only when that
#: is less than this; more stays shared as the new blob's prefix (a 64 MiB copy costs ~40 ms
#: here, mostly page faults, which an append of one byte to a copied-up file should not pay).
SHARE_MIN = 1 << 20


class Blob:
    """File bytes shared copy-on-write: ``refs`` holders (inodes, and blobs built on it).

    A holder takes its own blob before changing a shared one (:meth:`copy`), but only from
    the first byte it changes: the bytes before stay shared as a *prefix* (``blen`` bytes of
    ``base``, a plain blob that nobody writes in place any more since its count includes
    ours) and ``data`` holds the rest. An append to a copied-up file thus copies nothing.
    Blobs are only ever one level deep: ``base`` is always plain. ``pages`` tracks
    allocation only for sparse files (None: every page up to EOF is allocated).
    """

    __slots__ = ("base", "blen", "data", "pages", "refs")

    def __init__(self, buf: bytearray | None = None) -> None:
        self.data = bytearray() if buf is None else buf
        self.base: Blob | None = None
        self.blen = 0
        self.refs = 1
        self.pages: set[int] | None = None  # None: every page up to EOF is allocated

    @property
    def buf(self) -> bytearray:
        """All the bytes in one buffer; joins a shared prefix for good (for callers off the
        hot paths, such as saving a world)."""
        if self.base is not None:
            self.unshare(0)
        return self.data

    def size(self) -> int:
        return self.blen + len(self.data)

    def blocks(self) -> int:
        if self.pages is None:
            return -(-self.size() // PAGE) * (PAGE // 512)
        return len(self.pages) * (PAGE // 512)

    def read(self, pos: int, n: int) -> bytes:
        end = pos + n
        base, blen = self.base, self.blen
        if base is None or pos >= blen:
            with memoryview(self.data) as m:
                return bytes(m[pos - blen : end - blen])
        if end <= blen:
            with memoryview(base.data) as m:
                return bytes(m[pos:end])
        return bytes(self._span(pos, min(end, self.size())))

    def _span(self, a: int, b: int) -> bytearray:
        """A new buffer with bytes ``a`` to ``b`` (both within the file)."""
        out = bytearray()
        base, blen = self.base, self.blen
        if base is not None and a < blen:
            with memoryview(base.data) as m:
                out += m[a : min(b, blen)]
        if b > blen:
            with memoryview(self.data) as m:
                out += m[max(a - blen, 0) : b - blen]
        return out

    def copy(self, keep: int, stop: int) -> Blob:
        """A blob of its own for a new holder, with this one's first ``stop`` bytes, sharing
        at most the first ``keep`` of them (those the holder's change leaves alone)."""
        keep = min(keep, stop)
        base, blen = (self, keep) if self.base is None else (self.base, min(keep, self.blen))
        if blen < SHARE_MIN:
            new = Blob(self._span(0, stop))
        else:
            new = Blob(self._span(blen, stop))
            new.base, new.blen = base, blen
            base.refs += 1
        new.pages = None if self.pages is None else set(self.pages)
        return new

    def clone(self) -> Blob:
        return self.copy(0, self.size())

    def unshare(self, pos: int) -> None:
        """Own the bytes from ``pos`` on (this blob has one holder)."""
        base = self.base
        if base is None or pos >= self.blen:
            return
        if pos < SHARE_MIN:
            self.data = self._span(0, self.size())
            self.base, self.blen = None, 0
            base.refs -= 1
        else:
            self.data = self._span(pos, self.size())
            self.blen = pos

    def write(self, pos: int, data: bytes) -> None:
        """Write into an own blob whose prefix ends at or before ``pos``."""
        buf, blen = self.data, self.blen
        n = len(data)
        end = pos + n
        old = blen + len(buf)
        if pos == old:
            buf += data
        else:
            if pos > old:
                self.make_sparse(old)
                buf.extend(bytes(pos - old))
            buf[pos - blen : end - blen] = data
        if self.pages is not None and n:
            self.pages.update(range(pos // PAGE, (end - 1) // PAGE + 1))

    def truncate(self, length: int) -> None:
        """Resize an own blob whose prefix ends at or before ``length``."""
        old = self.size()
        if length > old:
            self.make_sparse(old)
            self.data.extend(bytes(length - old))
        elif length < old:
            del self.data[length - self.blen :]
        if self.pages is not None and length < old:
            last = -(-length // PAGE)
            self.pages = {p for p in self.pages if p < last}

    def make_sparse(self, old_size: int) -> None:
        if self.pages is None:
            self.pages = set(range(-(-old_size // PAGE)))


#: One int object per mode, uid and gid value below 65536 (at most that many entries): an
#: inode keeps these, and every int above 256 computed anew would cost 32 bytes per inode.
_CANON: dict[int, int] = {}
_CANON_MAX = 1 << 16

#: The bytes of every new regular file until its first write: most files of a big layer are
#: empty or written once, so they share this instead of paying ~130 bytes each for their own.
#: Its reference count never drops to 1, so a write always clones it (copy-on-write as usual).
EMPTY_BLOB = Blob()
EMPTY_BLOB.refs = 1 << 62


class MemInode(Node, FileData):
    __slots__ = (
        "atime",
        "blob",
        "ctime",
        "entries",
        "ftype",
        "gid",
        "ino",
        "mode",
        "mounted",
        "mtime",
        "nlink",
        "parent",
        "rdev",
        "sb",
        "stc",
        "target",
        "uid",
        "xattrs",
    )

    def __init__(self, sb: SuperBlock, mode: int, uid: int, gid: int, rdev: int = 0) -> None:
        self.sb = sb
        self.ino = sb.new_ino()
        c = _CANON
        self.mode = c.setdefault(mode, mode) if mode < _CANON_MAX else mode
        self.uid = c.setdefault(uid, uid) if uid < _CANON_MAX else uid
        self.gid = c.setdefault(gid, gid) if gid < _CANON_MAX else gid
        self.rdev = rdev
        now = sb.clock()
        self.atime = self.mtime = self.ctime = now
        self.xattrs: dict[str, bytes] | None = None
        self.stc: os.stat_result | None = None
        self.mounted = 0
        self.parent: Node = self
        self.target = ""
        ftype = mode & _S_IFMT
        ftype = self.ftype = c.setdefault(ftype, ftype)
        if ftype == _S_IFDIR:
            self.entries: dict[str, MemInode] = {}
            self.nlink = 2
        else:
            self.nlink = 1
        if ftype == _S_IFREG:
            self.blob = EMPTY_BLOB

    # --- lookup & listing ------------------------------------------------------------------
    def lookup(self, name: str) -> MemInode | None:
        if self.mode & _S_IFMT != _S_IFDIR:
            raise fserr(errno.ENOTDIR)
        return self.entries.get(name)

    def readdir(self) -> list[tuple[str, int, int]]:
        if self.mode & _S_IFMT != _S_IFDIR:
            raise fserr(errno.ENOTDIR)
        return [(n, (i.mode >> 12) & 0o17, i.ino) for n, i in reversed(self.entries.items())]


    def is_dead(self) -> bool:
        return self.nlink == 0 and self.mode & _S_IFMT == _S_IFDIR

    # --- attributes ------------------------------------------------------------------------
    def size(self) -> int:
        ftype = self.mode & _S_IFMT
        if ftype == _S_IFREG:
            return self.blob.size()
        if ftype == _S_IFDIR:
            return 2 * BOGO_DIRENT + BOGO_DIRENT * len(self.entries)
        if ftype == _S_IFLNK:
            return len(os.fsencode(self.target))
        return 0

    def blocks(self) -> int:
        ftype = self.mode & _S_IFMT
        if ftype == _S_IFREG:
            return self.blob.blocks()
        if ftype == _S_IFLNK and self.size() >= SHORT_SYMLINK:
            return PAGE // 512
        return 0

    def stat(self) -> os.stat_result:
        """Built once and kept (``stc``) until an attribute changes: every method here that
        changes what stat shows sets ``stc = None``, and so must any code that assigns the
        attributes directly (overlay copy-up, world restore)."""
        s = self.stc
        if s is None:
            s = self.stc = _stat_result(self.stat_fields(self.ino, self.sb.dev, self.nlink))
        return s

    def stat_fields(self, ino: int, dev: int, nlink: int) -> tuple[int | float, ...]:
        """The 19 fields of os.stat_result; overlay substitutes ino, dev and nlink."""
        a, m, c = self.atime, self.mtime, self.ctime
        if self.ftype == _S_IFREG:  # the hot case, inlined
            b = self.blob
            size = b.blen + len(b.data)
            blocks = -(-size // PAGE) * 8 if b.pages is None else len(b.pages) * 8
        else:
            size, blocks = self.size(), self.blocks()
        return (
            self.mode, ino, dev, nlink, self.uid, self.gid, size,
            a // 1_000_000_000, m // 1_000_000_000, c // 1_000_000_000,
            a / 1e9, m / 1e9, c / 1e9, a, m, c, PAGE, blocks, self.rdev,
        )  # fmt: skip

    def readlink(self) -> str:
        if self.mode & _S_IFMT != _S_IFLNK:
            raise fserr(errno.EINVAL)
        return self.target

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
        now = self.sb.clock()
        c = _CANON
        if mode is not None:
            m = (self.mode & _S_IFMT) | (mode & 0o7777)
            self.mode = c.setdefault(m, m)
        if uid is not None:
            self.uid = c.setdefault(uid, uid) if uid < _CANON_MAX else uid
        if gid is not None:
            self.gid = c.setdefault(gid, gid) if gid < _CANON_MAX else gid
        if size is not None:
            self.truncate(size)
        if atime is not None:
            self.atime = now if atime == UTIME_NOW else atime
        if mtime is not None:
            self.mtime = now if mtime == UTIME_NOW else mtime
        self.ctime = now
        self.stc = None

    def touch_atime(self) -> None:
        # relatime: update when atime is not newer than mtime/ctime, or a day old.
        a = self.atime
        if a <= self.mtime or a <= self.ctime or self.sb.clock() - a >= 86_400 * 10**9:
            self.atime = self.sb.clock()
            self.stc = None

    def touch_dir(self) -> None:
        self.mtime = self.ctime = self.sb.clock()
        self.stc = None

    # --- xattrs ----------------------------------------------------------------------------
    def getxattr(self, name: str) -> bytes:
        x = self.xattrs
        if x is None or name not in x:
            raise fserr(errno.ENODATA)
        return x[name]

    def listxattr(self) -> list[str]:
        return list(self.xattrs) if self.xattrs else []

    def setxattr(self, name: str, value: bytes, flags: int) -> None:
        x = self.xattrs
        exists = x is not None and name in x
        if flags & os.XATTR_CREATE and exists:
            raise fserr(errno.EEXIST)
        if flags & os.XATTR_REPLACE and not exists:
            raise fserr(errno.ENODATA)
        if x is None:
            x = self.xattrs = {}
        x[name] = bytes(value)
        self.ctime = self.sb.clock()
        self.stc = None

    def removexattr(self, name: str) -> None:
        x = self.xattrs
        if x is None or name not in x:
            raise fserr(errno.ENODATA)
        del x[name]
        self.ctime = self.sb.clock()
        self.stc = None

    # --- namespace -------------------------------------------------------------------------
    def _add(self, name: str, node: MemInode) -> MemInode:
        entries = self.entries
        if name in entries:  # a replaced name: cached walks through it are stale
            NS_GEN[0] += 1
        entries[name] = node
        self.touch_dir()
        return node

    def create(self, name: str, mode: int, uid: int, gid: int, rdev: int) -> MemInode:
        return self._add(name, MemInode(self.sb, mode, uid, gid, rdev))

    def mkdir(self, name: str, mode: int, uid: int, gid: int) -> MemInode:
        child = MemInode(self.sb, _S_IFDIR | (mode & 0o7777), uid, gid)
        child.parent = self
        self.nlink += 1
        self.stc = None
        return self._add(name, child)

    def symlink(self, name: str, target: str, uid: int, gid: int) -> MemInode:
        child = MemInode(self.sb, _S_IFLNK | 0o777, uid, gid)
        child.target = target
        child.stc = None
        return self._add(name, child)

    def link(self, name: str, node: Node) -> MemInode:
        assert isinstance(node, MemInode)
        node.nlink += 1
        node.ctime = self.sb.clock()
        node.stc = None
        return self._add(name, node)

    def unlink(self, name: str, node: Node) -> None:
        assert isinstance(node, MemInode)
        del self.entries[name]
        NS_GEN[0] += 1
        node.nlink -= 1
        node.ctime = self.sb.clock()
        node.stc = None
        self.touch_dir()

    def rmdir(self, name: str, node: Node) -> None:
        assert isinstance(node, MemInode)
        if node.entries:
            raise fserr(errno.ENOTEMPTY)
        del self.entries[name]
        NS_GEN[0] += 1
        node.nlink = 0
        node.stc = None
        self.nlink -= 1
        self.touch_dir()

    def rename(self, name: str, node: Node, newdir: Node, newname: str, flags: int) -> None:
        """Move ``name`` to ``newdir/newname``; the VFS has checked types, emptiness, loops."""
        assert isinstance(node, MemInode) and isinstance(newdir, MemInode)
        now = self.sb.clock()
        is_dir = node.mode & _S_IFMT == _S_IFDIR
        victim = newdir.entries.get(newname)
        if (
            victim is not None
            and not flags & RENAME_EXCHANGE
            and victim.mode & _S_IFMT == _S_IFDIR
            and victim.entries
        ):
            raise fserr(errno.ENOTEMPTY)
        NS_GEN[0] += 1
        if flags & RENAME_EXCHANGE:
            assert victim is not None
            self.entries[name] = victim
            newdir.entries[newname] = node
            victim_dir = victim.mode & _S_IFMT == _S_IFDIR
            if newdir is not self and is_dir != victim_dir:
                delta = 1 if is_dir else -1
                newdir.nlink += delta
                self.nlink -= delta
            if is_dir:
                node.parent = newdir
            if victim_dir:
                victim.parent = self
            victim.ctime = now
        else:
            del self.entries[name]
            if victim is not None:
                if victim.mode & _S_IFMT == _S_IFDIR:
                    victim.nlink = 0
                    newdir.nlink -= 1
                else:
                    victim.nlink -= 1
                victim.ctime = now
                del newdir.entries[newname]
            newdir.entries[newname] = node
            if is_dir and newdir is not self:
                self.nlink -= 1
                newdir.nlink += 1
                node.parent = newdir
            if flags & RENAME_WHITEOUT:
                self.entries[name] = MemInode(self.sb, st.S_IFCHR, 0, 0, 0)
        node.ctime = now
        self.mtime = self.ctime = now
        newdir.mtime = newdir.ctime = now
        node.stc = self.stc = newdir.stc = None
        if victim is not None:
            victim.stc = None

    # --- data ------------------------------------------------------------------------------
    def open_data(self, flags: int) -> MemInode:
        return self

    def node(self) -> MemInode:
        return self

    def read(self, pos: int, n: int) -> bytes:
        return self.blob.read(pos, n)

    def _own_blob(self, pos: int, stop: int | None = None) -> Blob:
        """This file's blob, made its own from byte ``pos`` on (a change starts there);
        ``stop``: the bytes from there on are dropped anyway (truncation), do not copy them."""
        b = self.blob
        if b.refs > 1:
            b.refs -= 1
            size = b.size()
            b = self.blob = b.copy(pos, size if stop is None else min(stop, size))
        elif b.base is not None:
            b.unshare(pos)
        return b

    def write(self, pos: int, data: bytes) -> int:
        self._own_blob(pos).write(pos, data)
        self.mtime = self.ctime = self.sb.clock()
        self.stc = None
        return len(data)

    def truncate(self, length: int) -> None:
        old = self.blob.size()
        b = self._own_blob(length, length)
        if b.pages is not None and length < old and b.size() == length:
            b.pages = {p for p in b.pages if p < -(-length // PAGE)}  # copy() cut it already
        b.truncate(length)
        self.mtime = self.ctime = self.sb.clock()
        self.stc = None

    def seek_data(self, pos: int, hole: bool) -> int:
        """tmpfs reports data and holes per 4 KiB page; EOF counts as a hole."""
        pages = self.blob.pages
        size = self.blob.size()
        if pages is None:
            return size if hole else pos
        page = pos // PAGE
        last = -(-size // PAGE)
        while page < last and (page in pages) == hole:
            page += 1
        if page >= last:
            if hole:
                return size
            raise fserr(errno.ENXIO)
        return max(pos, page * PAGE)

    def share_blob(self) -> Blob:
        """Hand out this file's bytes copy-on-write (overlay copy-up)."""
        self.blob.refs += 1
        return self.blob


def new_tmpfs(sb: SuperBlock, mode: int = 0o1777, uid: int = 0, gid: int = 0) -> MemInode:
    root = MemInode(sb, _S_IFDIR | mode, uid, gid)
    root.parent = root
    return root
