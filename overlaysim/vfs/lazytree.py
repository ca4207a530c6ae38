"""A real directory tree imported into tmpfs inodes on demand: the lowers of ``overlaysim mount``.

The eager import (:mod:`overlaysim.vfs.hosttree`) walks the whole tree and reads every byte
before the mount answers. Here a directory becomes a :class:`LazyDir` whose entries are made
(as ordinary MemInodes with the real lstat metadata and xattrs) the first time anything reads
``entries`` or ``nlink`` (lookup, readdir, stat, a change inside it, a walk); a regular file
is a plain MemInode whose blob has its bytes as a :class:`LazyBytes` prefix, read on the
first access to them. A populated dir turns into a plain MemInode (``__class__`` is
assigned: same slots), loaded bytes into a plain Blob, so the hot paths, which test
``type(node) is MemInode``, are as fast as ever once a node is listed, and ordinary inodes
never pay for any of this.

The real tree is never written and its atimes never change: as root it is read through a
detached, read-only, noatime clone of its mount (open_tree + mount_setattr: no mount appears
anywhere and nothing is left to clean up); otherwise files and dirs are opened O_NOATIME
where the owner allows it. Each path is walked one component at a time without following
symlinks, so a dir swapped for a symlink meanwhile cannot lead outside the tree. A file
that changed or vanished since its dir was listed reads as EIO (its size was already shown).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as st
from typing import TYPE_CHECKING, Any

from overlaysim.vfs.hosttree import list_real_xattrs
from overlaysim.vfs.memfs import _CANON, _CANON_MAX, EMPTY_BLOB, Blob, MemInode
from overlaysim.vfs.node import fserr

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import HostFS
    from overlaysim.vfs.superblock import SuperBlock

_ENTRIES: Any = MemInode.__dict__["entries"]  # the slots, under the properties below
_NLINK: Any = MemInode.__dict__["nlink"]
_DATA: Any = Blob.__dict__["data"]
_S_IFMT = 0o170000
_S_IFDIR = st.S_IFDIR
_S_IFREG = st.S_IFREG
_S_IFLNK = st.S_IFLNK
_NOATIME = getattr(os, "O_NOATIME", 0)
_DIRFLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATHFLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LazyDir(MemInode):
    """A directory whose entries are still in the real tree (``entries`` slot: the tree and
    the path in it)."""

    __slots__ = ()

    @property
    def entries(self) -> dict[str, MemInode]:
        return _populate(self)

    @entries.setter
    def entries(self, value: Any) -> None:
        _ENTRIES.__set__(self, value)

    @property
    def nlink(self) -> int:
        _populate(self)
        return int(_NLINK.__get__(self))

    @nlink.setter
    def nlink(self, value: int) -> None:
        _NLINK.__set__(self, value)

    def is_dead(self) -> bool:
        return False  # never removed while its entries are unread


class LazyBytes(Blob):
    """The bytes of a real file, read on first access to ``data`` (the slot holds the tree,
    the path and the identity and size seen when its dir was listed until then).

    A lower file's own blob is an empty one with this as its shared prefix (``base``,
    ``blen`` = the size): st_size and st_blocks come from the prefix length, so stat reads
    nothing, and copy-up shares the prefix as it shares any blob, so a chmod or an append
    on a copied-up file reads nothing either; the first read of the bytes does."""

    __slots__ = ()

    @property
    def data(self) -> bytearray:
        return _load(self)

    @data.setter
    def data(self, value: Any) -> None:
        _DATA.__set__(self, value)


class RealInodes:
    """What the lazy trees of one simulation share: inode numbers derived from the real ones
    and one inode per real (st_dev, st_ino) with several links.

    The eager import numbered inodes in walk order, the same at every mount; an upper dir
    keeps file handles (``origin``, the index) holding those numbers. Numbered as first
    needed they would differ from one mount to the next, so a node gets ``base + st_ino``,
    its real fs's base given at import in lowerdir order (stable while the real files are,
    as the kernel's handles are). The bases start at 2**48, far above the numbers the
    simulation hands out itself. A file on another fs mounted inside a lower, or a number
    that does not fit, gets the next free number instead (unique, not stable)."""

    SHIFT = 48

    def __init__(self) -> None:
        self.bases: dict[int, int] = {}
        self.links: dict[tuple[int, int], MemInode] = {}

    def add_fs(self, dev: int) -> None:
        if dev not in self.bases:
            self.bases[dev] = (len(self.bases) + 1) << self.SHIFT

    def ino(self, sb: SuperBlock, s: os.stat_result) -> int:
        base = self.bases.get(s.st_dev)
        if base is None or s.st_ino >> self.SHIFT:
            return sb.new_ino()
        return base | s.st_ino


class LazyTree:
    """One real directory read into the simulation as it is needed; ``dirs_listed`` and
    ``files_read`` count the real reads (tests assert what a request cost)."""

    def __init__(self, real_dir: str, *, xattrs: bool = True,
                 inodes: RealInodes | None = None) -> None:  # fmt: skip
        self.real = real_dir
        self.xattrs = xattrs
        self.root_fd, self.noatime_mount = _open_root(real_dir)
        self.inodes = RealInodes() if inodes is None else inodes
        self.links = self.inodes.links
        self.dirs_listed = 0
        self.files_read = 0

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    # --- the real side ---------------------------------------------------------------------
    def _open(self, rel: str, flags: int) -> int:
        """``rel`` (components separated by "/", "" for the top) opened with ``flags``, each
        component looked up without following symlinks."""
        fd = self.root_fd
        parts = rel.split("/") if rel else []
        try:
            for name in parts[:-1]:
                nfd = os.open(name, _PATHFLAGS, dir_fd=fd)
                if fd != self.root_fd:
                    os.close(fd)
                fd = nfd
            last = parts[-1] if parts else "."
            try:
                return os.open(last, flags | _NOATIME, dir_fd=fd)
            except PermissionError:  # O_NOATIME: neither the owner nor CAP_FOWNER
                return os.open(last, flags, dir_fd=fd)
        finally:
            if fd != self.root_fd:
                os.close(fd)

    def real_xattrs(self, path: str | int, follow: bool = False) -> dict[str, bytes] | None:
        if not self.xattrs:
            return None
        out: dict[str, bytes] = {}
        for name in list_real_xattrs(path, follow):
            try:
                out[name] = os.getxattr(path, name, follow_symlinks=follow)
            except OSError:
                continue
        return out or None

    def read_file(self, pend: tuple[Any, ...]) -> bytearray:
        """The bytes of a file as its dir listing saw it; EIO if it is gone or changed."""
        _tree, rel, size, dev, ino, mtime, ctime = pend
        self.files_read += 1
        try:
            fd = self._open(rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            raise fserr(errno.EIO) from None
        try:
            seen = (dev, ino, size, mtime, ctime)
            if _ident(os.fstat(fd)) != seen:
                raise fserr(errno.EIO)
            buf = bytearray(size)
            view = memoryview(buf)
            with open(fd, "rb", buffering=0, closefd=False) as f:
                got = 0
                while got < size and (n := f.readinto(view[got:])):
                    got += n
            view.release()
            if got != size or _ident(os.fstat(fd)) != seen:
                raise fserr(errno.EIO)
            return buf
        except OSError as e:
            raise fserr(errno.EIO) from e
        finally:
            os.close(fd)


def import_lazy(fs: HostFS, real_dir: str, dest: str, *, xattrs: bool = True,
                inodes: RealInodes | None = None) -> LazyTree:  # fmt: skip
    """Make ``dest`` (created if missing) the lazily read copy of real ``real_dir``; the tree
    keeps a descriptor of it until :meth:`LazyTree.close`. The trees of one simulation share
    ``inodes``."""
    top = os.lstat(real_dir)
    if not st.S_ISDIR(top.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), real_dir)
    o = fs.os
    if not o.path.isdir(dest):
        o.makedirs(dest)
    tree = LazyTree(real_dir, xattrs=xattrs, inodes=inodes)
    try:
        s = os.fstat(tree.root_fd)
        tree.inodes.add_fs(s.st_dev)
        xa = tree.real_xattrs(f"/proc/self/fd/{tree.root_fd}", follow=True)
    except OSError:
        tree.close()
        raise
    node = o._resolve(dest)[1]
    assert type(node) is MemInode and not node.entries
    _set_meta(node, s, s.st_mode)
    node.xattrs = xa
    node.__class__ = LazyDir
    _ENTRIES.__set__(node, (tree, ""))
    node.stc = None
    return tree


def _open_root(real_dir: str) -> tuple[int, bool]:
    """(descriptor of the tree's top, whether it is a read-only noatime clone)."""
    fd = _noatime_clone(real_dir)
    if fd >= 0:
        return fd, True
    return os.open(real_dir, _PATHFLAGS & ~os.O_NOFOLLOW), False


# open_tree(2) and mount_setattr(2): the same numbers on every architecture but alpha.
_SYS_OPEN_TREE, _SYS_MOUNT_SETATTR = 428, 442
_OPEN_TREE_CLONE, _AT_RECURSIVE, _AT_EMPTY_PATH = 1, 0x8000, 0x1000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOATIME, _MOUNT_ATTR__ATIME = 0x1, 0x10, 0x70


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]  # fmt: skip


def _noatime_clone(real_dir: str) -> int:
    """A detached clone of the mounts under ``real_dir``, read-only and noatime, or -1
    (not root, or a kernel before 5.12)."""
    if os.geteuid() != 0:
        return -1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return -1
    flags = _OPEN_TREE_CLONE | _AT_RECURSIVE | os.O_CLOEXEC
    fd = int(syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(-100),
                     os.fsencode(real_dir), ctypes.c_uint(flags)))  # fmt: skip
    if fd < 0:
        return -1
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOATIME, _MOUNT_ATTR__ATIME, 0, 0)
    rc = syscall(ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(fd), b"",
                 ctypes.c_uint(_AT_EMPTY_PATH | _AT_RECURSIVE), ctypes.byref(attr),
                 ctypes.c_size_t(ctypes.sizeof(attr)))  # fmt: skip
    if rc != 0:
        os.close(fd)
        return -1
    return fd


def _ident(s: os.stat_result) -> tuple[int, int, int, int, int]:
    return (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)


# --- making inodes --------------------------------------------------------------------------
def _canon(v: int) -> int:
    return _CANON.setdefault(v, v) if v < _CANON_MAX else v


def _set_meta(n: MemInode, s: os.stat_result, mode: int) -> None:
    n.mode = _canon(mode)
    n.uid = _canon(s.st_uid)
    n.gid = _canon(s.st_gid)
    n.atime, n.mtime, n.ctime = s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns


def _new(cls: type[MemInode], sb: SuperBlock, s: os.stat_result, mode: int,
         inodes: RealInodes) -> MemInode:  # fmt: skip
    """An inode as MemInode.__init__ makes it, with the real metadata (ctime too: the kernel
    overlay shows the lower's)."""
    n = object.__new__(cls)
    n.sb = sb
    n.ino = inodes.ino(sb, s)
    _set_meta(n, s, mode)
    ftype = mode & _S_IFMT
    n.ftype = _canon(ftype)
    n.rdev = s.st_rdev if ftype in (st.S_IFCHR, st.S_IFBLK) else 0
    n.xattrs = None
    n.stc = None
    n.mounted = 0
    n.parent = n
    n.target = ""
    return n


def _populate(d: LazyDir) -> dict[str, MemInode]:
    """Make the entries of ``d`` from its real dir (sorted by name, as the eager import adds
    them: readdir order follows), then turn ``d`` into a plain MemInode. EIO if the real dir
    cannot be read; ``d`` stays lazy then, and the next access tries again."""
    raw = _ENTRIES.__get__(d)
    if type(raw) is dict:  # another reference already populated it
        return raw
    tree, rel = raw
    sb = d.sb
    try:
        dfd = tree._open(rel, _DIRFLAGS)
    except OSError:
        raise fserr(errno.EIO) from None
    tree.dirs_listed += 1
    entries: dict[str, MemInode] = {}
    ndirs = 0
    links = tree.links
    inodes = tree.inodes
    try:
        for name in sorted(os.listdir(dfd)):
            try:
                s = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the listing: as if listed a moment later
            mode = s.st_mode
            ftype = mode & _S_IFMT
            crel = f"{rel}/{name}" if rel else name
            if ftype != _S_IFDIR and s.st_nlink > 1:
                key = (s.st_dev, s.st_ino)
                same = links.get(key)
                if same is not None:
                    entries[name] = same
                    continue
            if ftype == _S_IFDIR:
                n = _new(LazyDir, sb, s, mode, inodes)
                _ENTRIES.__set__(n, (tree, crel))
                _NLINK.__set__(n, 2)
                n.parent = d
                ndirs += 1
            elif ftype == _S_IFREG and s.st_size:
                n = _new(MemInode, sb, s, mode, inodes)
                n.nlink = s.st_nlink
                n.blob = _lazy_blob((tree, crel, s.st_size, s.st_dev, s.st_ino,
                                     s.st_mtime_ns, s.st_ctime_ns))  # fmt: skip
            else:
                mode = mode if ftype != _S_IFLNK else _S_IFLNK | 0o777
                n = _new(MemInode, sb, s, mode, inodes)
                n.nlink = s.st_nlink if ftype != _S_IFDIR else 2
                if ftype == _S_IFREG:
                    n.blob = EMPTY_BLOB
                elif ftype == _S_IFLNK:
                    n.target = os.readlink(name, dir_fd=dfd)
            n.xattrs = tree.real_xattrs(f"/proc/self/fd/{dfd}/{name}")
            if ftype != _S_IFDIR and s.st_nlink > 1:
                links[(s.st_dev, s.st_ino)] = n
            entries[name] = n
    except OSError:
        raise fserr(errno.EIO) from None
    finally:
        os.close(dfd)
    _ENTRIES.__set__(d, entries)
    _NLINK.__set__(d, 2 + ndirs)
    _plain(d)
    d.stc = None
    return entries


def _plain(n: MemInode) -> None:
    n.__class__ = MemInode  # loaded: the same slots, without the properties


def _lazy_blob(pend: tuple[Any, ...]) -> Blob:
    lazy = object.__new__(LazyBytes)
    lazy.base, lazy.blen, lazy.refs, lazy.pages = None, 0, 1, None
    _DATA.__set__(lazy, pend)
    b = Blob()
    b.base, b.blen = lazy, pend[2]  # never held by an inode: nobody writes it in place
    return b


def _load(lazy: LazyBytes) -> bytearray:
    """Read the bytes of ``lazy`` and turn it into a plain Blob (EIO: it stays lazy)."""
    raw = _DATA.__get__(lazy)
    if isinstance(raw, bytearray):
        return raw
    data: bytearray = raw[0].read_file(raw)
    _DATA.__set__(lazy, data)
    _plain_blob(lazy)
    return data


def _plain_blob(b: Blob) -> None:
    b.__class__ = Blob  # loaded: the same slots, without the property
