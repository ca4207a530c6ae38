"""hostdir: real directories seen inside HostFS, as a bind mount shows them (nothing imported).

Every operation goes to the real kernel on the real path, as root, and its errors are the real
errno: a whiteout made here is a real char 0/0 device, an xattr a real ``trusted.*`` one, so a
tool reading the real directory meanwhile sees what an overlay on the real kernel would leave.

One :class:`PassNode` per real inode, found by its real inode number in a superblock per real
device (two mounts of dirs of one real filesystem share it, as bind mounts share theirs): the
engine compares inodes by identity (hard links, origin, same-fs checks), so one real inode
must always be one object. ``st_ino`` is the real number; ``st_dev`` is the simulated
superblock's, because the simulation's mount table hands out device numbers and layers of
two real filesystems must not look alike to it. A node remembers its name (parent and name;
a file also the other names it was met under, hard links); its real path is rebuilt from
those at each call, so a renamed directory moves its subtree.

Attributes are cached from the last ``lstat`` and reloaded after each change made here; a
change made behind the simulation's back is seen at the next lookup of that name (the kernel
gives no promise either for layers changed while mounted). File data goes through a small
pool of real file descriptors (:data:`FD_POOL`), reopened on demand, so a tree of any size
never exhausts the process's descriptors.
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable

from overlaysim.vfs.node import NS_GEN, FileData, Node, dtype_of, fserr
from overlaysim.vfs.passthrough_sys import (
    DIR_FDS,
    FD_POOL,
    LONG,
    O_READ,
    name_to_handle,
    open_by_handle,
    open_noatime,
    renameat2,
    utimensat,
)
from overlaysim.vfs.superblock import SuperBlock

_S_IFMT = 0o170000
_DAY_NS = 86_400 * 10**9
#: The name the VFS gives an O_TMPFILE file between create() and unlink().
TMPFILE = "\0tmpfile"


class PassSuper(SuperBlock):
    """The simulated superblock of one real device: its inodes by real inode number, and the
    other devices met below it (a real mount inside a mapped dir is followed, as ``rbind``)."""

    __slots__ = ("family", "nodes", "real_dev", "top")

    def __init__(self, clock: Callable[[], int], real_dev: int, uuid: bytes,
                 family: dict[int, PassSuper]) -> None:  # fmt: skip
        super().__init__("hostdir", clock, uuid=uuid)
        self.real_dev = real_dev
        self.nodes: dict[int, PassNode] = {}
        self.family = family
        self.top: PassNode | None = None  # the highest dir of the device, once mapped
        family[real_dev] = self

    def by_path(self, path: str) -> PassNode | None:
        """The node of a real path below :attr:`top`, walked name by name (None if not)."""
        top = self.top
        if top is None:
            return None
        base = top.path().rstrip("/") + "/"
        if not path.startswith(base):
            return top if path == top.path() else None
        node: PassNode | None = top
        for name in path[len(base):].split("/"):
            if node is None or node.ftype != st.S_IFDIR:
                return None
            node = node.lookup(name) if name else node
        return node

    def sibling(self, real_dev: int, path: str) -> PassSuper:
        """The superblock of the real device of ``path``, met during a walk."""
        sb = self.family.get(real_dev)
        if sb is None:
            from overlaysim.vfs.passthrough_mount import real_uuid

            sb = PassSuper(self.clock, real_dev, real_uuid(path), self.family)
        return sb


class PassNode(Node):
    """A real inode. ``pname`` is its name in ``parent`` (None once that name is gone), or the
    absolute real path for the topmost dir of its device (``parent`` is itself then);
    ``alts`` the other names a non-directory was met under (its other hard links)."""

    __slots__ = ("_fh", "_st", "_stale", "alts", "ftype", "gid", "ino", "mode", "mounted",
                 "parent", "pname", "sb", "uid")  # fmt: skip

    def __init__(self, sb: PassSuper, real: os.stat_result, parent: PassNode | None,
                 pname: str) -> None:  # fmt: skip
        self.sb: PassSuper = sb
        self.ino = real.st_ino
        self.ftype = real.st_mode & _S_IFMT
        self.mounted = 0
        self.parent = parent if parent is not None else self
        self.pname: str | None = pname
        self.alts: list[tuple[PassNode, str]] = []
        self._stale = False
        self._fh: tuple[int, bytes, bytes] | None = None  # the real handle, once asked for
        self._apply(real)

    # --- where it is on the real disk ------------------------------------------------------
    def path(self) -> str:
        """The real path of this inode now (ENOENT once it has no name)."""
        names: list[str] = []
        node: PassNode = self
        while node.parent is not node:
            if node.pname is None:
                raise fserr(errno.ENOENT)
            names.append(node.pname)
            parent = node.parent
            assert isinstance(parent, PassNode)
            node = parent
        top = node.pname
        if top is None:
            raise fserr(errno.ENOENT)
        if not names:
            return top
        return top.rstrip("/") + "/" + "/".join(reversed(names))

    def target(self) -> str | int:
        """The real path, or for an unlinked file still open (in the pool) its descriptor."""
        try:
            return self.where()
        except FileNotFoundError:
            fd = FD_POOL.peek(self)
            if fd is None:
                raise
            return fd

    def where(self) -> str:
        """A path the real kernel accepts for this inode: the real path, or, when that is
        beyond PATH_MAX, the name under ``/proc/self/fd/N`` of an fd of its parent dir."""
        path = self.path()
        if len(path) < LONG or self.parent is self:
            return path
        parent = self.parent
        assert isinstance(parent, PassNode) and self.pname is not None
        return parent._join(self.pname)

    def _join(self, name: str) -> str:
        path = self.path().rstrip("/") + "/" + name
        if len(path) < LONG:
            return path
        return f"/proc/self/fd/{DIR_FDS.get(self)}/{name}"

    def _apply(self, real: os.stat_result) -> None:
        self.mode, self.uid, self.gid = real.st_mode, real.st_uid, real.st_gid
        self._st = os.stat_result((
            real.st_mode, real.st_ino, self.sb.dev, real.st_nlink, real.st_uid, real.st_gid,
            real.st_size, int(real.st_atime), int(real.st_mtime), int(real.st_ctime),
            real.st_atime, real.st_mtime, real.st_ctime, real.st_atime_ns, real.st_mtime_ns,
            real.st_ctime_ns, real.st_blksize, real.st_blocks, real.st_rdev,
        ))  # fmt: skip
        self._stale = False

    def reload(self) -> bool:
        """Read the attributes again from the real inode (by a name, else by an open fd);
        False when neither reaches it (the last known attributes stay)."""
        real: os.stat_result | None = None
        try:
            real = os.lstat(self.where())
            if real.st_ino != self.ino:
                real = None  # the name now holds another inode
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
        if real is None:
            fd = FD_POOL.peek(self)
            if fd is None:
                self._stale = False
                return False
            real = os.fstat(fd)
        self._apply(real)
        return True

    def _set_nlink(self, nlink: int) -> None:
        s = self._st
        self._st = os.stat_result((
            s.st_mode, s.st_ino, s.st_dev, nlink, s.st_uid, s.st_gid, s.st_size,
            int(s.st_atime), int(s.st_mtime), int(s.st_ctime), s.st_atime, s.st_mtime,
            s.st_ctime, s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns, s.st_blksize, s.st_blocks,
            s.st_rdev,
        ))  # fmt: skip
        self._stale = False

    def _child(self, name: str, real: os.stat_result) -> PassNode:
        """The node of ``real``, found at ``self/name``: the cached one, renamed to it."""
        sb = self.sb
        if real.st_dev != sb.real_dev:
            sb = sb.sibling(real.st_dev, self._join(name))
        node = sb.nodes.get(real.st_ino)
        if node is None or node.ftype != real.st_mode & _S_IFMT:
            node = sb.nodes[real.st_ino] = PassNode(sb, real, self, name)
            return node
        if node.parent is not node:
            node._named(self, name)
        node._apply(real)
        return node

    def _named(self, parent: PassNode, name: str) -> None:
        """``parent/name`` is a name of this inode now (the latest one met comes first)."""
        if self.parent is parent and self.pname == name:
            return
        if self.ftype != st.S_IFDIR and self.pname is not None:
            alts = [a for a in self.alts if a != (parent, name)]
            assert isinstance(self.parent, PassNode)
            self.alts = [(self.parent, self.pname), *alts][:16]
        self.parent, self.pname = parent, name

    def _unnamed(self, parent: PassNode, name: str) -> None:
        """``parent/name`` no longer names this inode (unlink, rmdir, replaced by a rename)."""
        self.alts = [a for a in self.alts if a != (parent, name)]
        if self.parent is parent and self.pname == name:
            if self.alts:
                (p, n), self.alts = self.alts[0], self.alts[1:]
                self.parent, self.pname = p, n
            else:
                self.pname = None
        if not self.reload():  # no name left that we know, nothing open: one link less
            left = 0 if self.ftype == st.S_IFDIR else max(0, self._st.st_nlink - 1)
            self._set_nlink(left)
        if self._st.st_nlink == 0 and self.sb.nodes.get(self.ino) is self:
            del self.sb.nodes[self.ino]  # the number may be reused by a new inode

    # --- lookup & listing ------------------------------------------------------------------
    def lookup(self, name: str) -> PassNode | None:
        if self.ftype != st.S_IFDIR:
            raise fserr(errno.ENOTDIR)
        try:
            real = os.lstat(self._join(name))
        except FileNotFoundError:
            return None
        return self._child(name, real)

    def readdir(self) -> list[tuple[str, int, int]]:
        if self.ftype != st.S_IFDIR:
            raise fserr(errno.ENOTDIR)
        try:
            fd = open_noatime(self.where(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if self.pname is None:
                return []  # a removed dir (open, or a cwd) lists empty
            raise
        out: list[tuple[str, int, int]] = []
        try:
            with os.scandir(fd) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        dt = 4
                    elif e.is_file(follow_symlinks=False):
                        dt = 8
                    elif e.is_symlink():
                        dt = 10
                    else:
                        dt = dtype_of(e.stat(follow_symlinks=False).st_mode)
                    out.append((e.name, dt, e.inode()))
        finally:
            os.close(fd)
        return out

    def is_dead(self) -> bool:
        return self.ftype == st.S_IFDIR and self.stat().st_nlink == 0

    # --- attributes ------------------------------------------------------------------------
    def stat(self) -> os.stat_result:
        if self._stale:
            self.reload()
        return self._st

    def size(self) -> int:
        return self.stat().st_size

    def readlink(self) -> str:
        if self.ftype != st.S_IFLNK:
            raise fserr(errno.EINVAL)
        return os.readlink(self.where())

    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None, atime: int | None = None,
                mtime: int | None = None) -> None:  # fmt: skip
        path = self.target()
        nofollow = {} if isinstance(path, int) else {"follow_symlinks": False}
        try:
            if uid is not None or gid is not None or all(
                    v is None for v in (mode, size, atime, mtime)):  # fmt: skip
                # chown first (it clears setuid bits), so a mode given with it wins;
                # chown(-1, -1) is what changes only the ctime
                os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid,
                         **nofollow)  # fmt: skip
            if mode is not None and self.ftype != st.S_IFLNK:  # a symlink's mode never changes
                os.chmod(path, mode & 0o7777)
            if size is not None:
                self._data_fd(True, lambda fd: os.ftruncate(fd, size))
            if atime is not None or mtime is not None:
                utimensat(path, atime, mtime)
        finally:
            self.reload()

    def touch_atime(self) -> None:
        """relatime: when the rule asks for it, a real access lets the real kernel stamp it."""
        s = self.stat()
        a = s.st_atime_ns
        if a > s.st_mtime_ns and a > s.st_ctime_ns and self.sb.clock() - a < _DAY_NS:
            return
        try:
            path = self.where()
        except FileNotFoundError:
            return  # an unlinked file: its real atime is its open descriptor's business
        if self.ftype == st.S_IFREG:
            fd = os.open(path, O_READ | os.O_NONBLOCK)
            try:
                os.pread(fd, 0, 0)
            finally:
                os.close(fd)
        elif self.ftype == st.S_IFDIR:
            os.listdir(path)
        elif self.ftype == st.S_IFLNK:
            os.readlink(path)
        self._stale = True

    # --- xattrs ----------------------------------------------------------------------------
    def _xattr_target(self) -> tuple[str | int, bool]:
        t = self.target()
        return t, isinstance(t, int)  # an fd is the file itself: "follow" it

    def getxattr(self, name: str) -> bytes:
        t, follow = self._xattr_target()
        return os.getxattr(t, name, follow_symlinks=follow)

    def listxattr(self) -> list[str]:
        t, follow = self._xattr_target()
        return os.listxattr(t, follow_symlinks=follow)

    def setxattr(self, name: str, value: bytes, flags: int) -> None:
        t, follow = self._xattr_target()
        try:
            os.setxattr(t, name, value, flags, follow_symlinks=follow)
        finally:
            self._stale = True

    def removexattr(self, name: str) -> None:
        t, follow = self._xattr_target()
        try:
            os.removexattr(t, name, follow_symlinks=follow)
        finally:
            self._stale = True

    def decode_handle(self, ftype: int, fid: bytes) -> PassNode | None:
        """The live inode a real file handle names on this node's filesystem, or None."""
        got = open_by_handle(self.where(), ftype, fid)
        if got is None or got[0].st_dev != self.sb.real_dev:
            return None
        real, where = got
        node = self.sb.nodes.get(real.st_ino)
        if node is not None and node.ftype == real.st_mode & _S_IFMT and node.stat().st_nlink:
            return node
        return self.sb.by_path(where)

    def real_handle(self) -> tuple[int, bytes, bytes] | None:
        """(type, fid, fs uuid) of the real file handle, what the kernel's overlay writes in
        an ``origin`` xattr for this inode; None when its filesystem gives no handles. Kept:
        an inode's handle never changes, and the index asks for it at every stat."""
        if self._fh is None:
            got = name_to_handle(self.where())
            if got is None:
                return None
            self._fh = (got[0], got[1], self.sb.uuid)
        return self._fh

    # --- namespace -------------------------------------------------------------------------
    def _new(self, name: str) -> PassNode:
        self._stale = True
        return self._child(name, os.lstat(self._join(name)))

    def _own(self, path: str, uid: int, gid: int, mode: int | None) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)
        if mode is not None:
            os.chmod(path, mode & 0o7777)

    def create(self, name: str, mode: int, uid: int, gid: int, rdev: int) -> PassNode:
        if name == TMPFILE:
            return self._tmpfile(mode, uid, gid)
        path = self._join(name)
        if mode & _S_IFMT == st.S_IFREG:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600)  # fmt: skip
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode & 0o7777)
            except BaseException:
                os.close(fd)
                raise
            node = self._new(name)
            FD_POOL.put(node, fd, True)
            return node
        os.mknod(path, (mode & _S_IFMT) | 0o600, rdev)
        self._own(path, uid, gid, mode)
        return self._new(name)

    def _tmpfile(self, mode: int, uid: int, gid: int) -> PassNode:
        """open(O_TMPFILE): a real unnamed file, its descriptor kept until it gets a name."""
        fd = os.open(self.where(), os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode & 0o7777)
            real = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        node = PassNode(self.sb, real, self, TMPFILE)
        node.pname = None
        FD_POOL.put(node, fd, True, pin=True)
        self._stale = True
        return node

    def mkdir(self, name: str, mode: int, uid: int, gid: int) -> PassNode:
        path = self._join(name)
        os.mkdir(path, 0o700)
        self._own(path, uid, gid, mode)
        return self._new(name)

    def symlink(self, name: str, target: str, uid: int, gid: int) -> PassNode:
        path = self._join(name)
        os.symlink(target, path)
        self._own(path, uid, gid, None)
        return self._new(name)

    def link(self, name: str, node: Node) -> PassNode:
        assert isinstance(node, PassNode)
        os.link(node.where(), self._join(name), follow_symlinks=False)
        node._stale = True
        self._stale = True
        return node

    def unlink(self, name: str, node: Node) -> None:
        assert isinstance(node, PassNode)
        if name == TMPFILE:
            return  # made unnamed (see create)
        try:
            os.unlink(self._join(name))
        finally:
            NS_GEN[0] += 1
            self._stale = True
        node._unnamed(self, name)

    def rmdir(self, name: str, node: Node) -> None:
        assert isinstance(node, PassNode)
        try:
            os.rmdir(self._join(name))
        finally:
            NS_GEN[0] += 1
            self._stale = True
        node._unnamed(self, name)

    def rename(self, name: str, node: Node, newdir: Node, newname: str, flags: int) -> None:
        assert isinstance(node, PassNode) and isinstance(newdir, PassNode)
        if newdir.sb is not self.sb:
            raise fserr(errno.EXDEV)
        old, new = self._join(name), newdir._join(newname)
        victim = newdir.lookup(newname)
        try:
            renameat2(old, new, flags)
        finally:
            NS_GEN[0] += 1
            self._stale = newdir._stale = True
        if victim is node:
            return  # two names of one inode: rename(2) does nothing
        node.alts = [a for a in node.alts if a != (self, name)]
        if node.parent is self and node.pname == name:
            node.pname = None
        node._named(newdir, newname)
        if victim is not None:
            if flags & 2:  # RENAME_EXCHANGE: the victim takes the old name
                victim.alts = [a for a in victim.alts if a != (newdir, newname)]
                victim.pname = None
                victim._named(self, name)
                victim.reload()
            else:
                victim._unnamed(newdir, newname)
        node.reload()

    # --- data ------------------------------------------------------------------------------
    def open_data(self, flags: int) -> PassFile:
        if self.ftype != st.S_IFREG:
            raise fserr(errno.ENXIO)
        return PassFile(self)

    def copy_data_from(self, src: Node, size: int) -> int | None:
        """Overlay copy-up between two real files: the first ``size`` bytes of ``src`` over
        this one, copied inside the kernel (copy_file_range: a reflink where the fs can),
        as ovl_copy_up_file does; None when ``src`` is no real file (the engine copies)."""
        if not isinstance(src, PassNode) or src.ftype != st.S_IFREG:
            return None
        rfd, wfd = FD_POOL.get(src, False), FD_POOL.get(self, True)
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(rfd, wfd, size - copied, copied, copied)
                if n == 0:
                    break
                copied += n
        except OSError as e:
            if copied or e.errno not in (errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            return None  # no in-kernel copy between these two: the engine copies
        finally:
            self._stale = True
        return copied

    def _data_fd(self, write: bool, op: Callable[[int], object]) -> object:
        fd = FD_POOL.get(self, write)
        try:
            return op(fd)
        finally:
            if write:
                self._stale = True


class PassFile(FileData):
    """An open regular file: reads and writes at offsets on a pooled real descriptor."""

    __slots__ = ("_node",)

    def __init__(self, node: PassNode) -> None:
        self._node = node

    def node(self) -> PassNode:
        return self._node

    def read(self, pos: int, n: int) -> bytes:
        return os.pread(FD_POOL.get(self._node, False), n, pos)

    def write(self, pos: int, data: bytes) -> int:
        node = self._node
        fd = FD_POOL.get(node, True)
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(fd, view[done:], pos + done)
        finally:
            node._stale = True
        return done

    def size(self) -> int:
        return os.fstat(FD_POOL.get(self._node, False)).st_size

    def truncate(self, length: int) -> None:
        self._node._data_fd(True, lambda fd: os.ftruncate(fd, length))

    def seek_data(self, pos: int, hole: bool) -> int:
        return os.lseek(FD_POOL.get(self._node, False), pos, os.SEEK_HOLE if hole else os.SEEK_DATA)


