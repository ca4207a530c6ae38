"""Path resolution (fs/namei.c): components, symlinks, ``..``, mounts, trailing slashes.

Rules reproduced from Linux: at most 40 symlinks per resolution (ELOOP), ``..`` is physical
(taken on the directory a symlink led to, not on the text), ``..`` at the process root stays
there, names over 255 bytes give ENAMETOOLONG when looked up, paths of 4096 bytes or more give
ENAMETOOLONG, and a trailing slash or ``/.`` demands a directory and follows a final symlink.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from overlaysim.vfs.cred import MAY_EXEC, permitted
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.mount import Mount
from overlaysim.vfs.node import NS_GEN, Node, fserr

if TYPE_CHECKING:
    from overlaysim.vfs.task import Task

MAXSYMLINKS = 40
PATH_MAX = 4096
NAME_MAX = 255
DCACHE_MAX = 4096  # cached walks per task; the cache starts over when full
_S_IFMT = 0o170000
_S_IFDIR = 0o040000
_S_IFLNK = 0o120000

# Kinds of final component for resolve_parent().
LAST_NORM, LAST_DOT, LAST_DOTDOT, LAST_ROOT = 0, 1, 2, 3


def name_too_long(name: str) -> bool:
    return len(name) > 63 and len(name.encode("utf-8", "surrogateescape")) > NAME_MAX


def check_path_len(path: str) -> None:
    if len(path) >= 1024 and len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise fserr(errno.ENAMETOOLONG)


def _last_real(comps: list[str], start: int) -> int:
    """Index of the last component that is not empty or '.'; -1 if none."""
    i = len(comps) - 1
    while i >= start and (comps[i] == "" or comps[i] == "."):
        i -= 1
    return i


def start_point(task: Task, path: str, dir_fd: int | None) -> tuple[Mount, Node]:
    if path[:1] == "/":
        return task.root
    if dir_fd is None:
        return task.cwd
    f = task.file(dir_fd)
    if f.node.mode & _S_IFMT != _S_IFDIR:
        raise fserr(errno.ENOTDIR)
    return f.mnt, f.node


def dotdot(task: Task, mnt: Mount, cur: Node) -> tuple[Mount, Node]:
    rmnt, rnode = task.root
    while True:
        if cur is rnode and mnt is rmnt:
            return mnt, cur
        if cur is mnt.root:
            up, mp = mnt.parent, mnt.mountpoint
            if up is None or mp is None:
                return mnt, cur
            mnt, cur = up, mp
            continue
        return mnt, cur.parent


def walk(
    task: Task,
    mnt: Mount,
    cur: Node,
    comps: list[str],
    follow_last: bool,
    links: int = 0,
) -> tuple[Mount, Node, int]:
    """Walk ``comps`` from ``cur``; returns the final (mount, node) and symlinks used so far."""
    cred = task.cred
    root = cred.uid == 0
    table = task.fs.mount_table
    last = _last_real(comps, 0)
    trailing = last < len(comps) - 1
    i = 0
    n = len(comps)
    while i < n:
        c = comps[i]
        i += 1
        if c == "" or c == ".":
            continue
        if cur.ftype != _S_IFDIR:
            raise fserr(errno.ENOTDIR)
        if not root and not permitted(cred, cur, MAY_EXEC):
            raise fserr(errno.EACCES)
        if c == "..":
            mnt, cur = dotdot(task, mnt, cur)
            continue
        found = cur.lookup(c)
        if found is None:
            raise fserr(errno.ENAMETOOLONG if name_too_long(c) else errno.ENOENT)
        child = found
        if child.mounted:
            mnt, child = table.follow(mnt, child)
        if child.ftype == _S_IFLNK and (i <= last or follow_last or trailing):
            links += 1
            if links > MAXSYMLINKS:
                raise fserr(errno.ELOOP)
            target = child.readlink()
            child.touch_atime()  # following a symlink reads it (relatime applies)
            if target == "":
                raise fserr(errno.ENOENT)
            rest = comps[i:]
            comps = target.split("/") + rest
            n = len(comps)
            i = 0
            last = _last_real(comps, 0)
            trailing = trailing or last < len(comps) - 1
            if target[0] == "/":
                mnt, cur = task.root
            continue
        cur = child
    if trailing and cur.ftype != _S_IFDIR:
        raise fserr(errno.ENOTDIR)
    return mnt, cur, links


def resolve(
    task: Task, path: str, dir_fd: int | None = None, follow: bool = True
) -> tuple[Mount, Node]:
    if not path:
        raise fserr(errno.ENOENT)
    if path[0] == "/" and task.cred.uid == 0 and len(path) < 1024 and path[-1] != "/":
        # Fast path: absolute, root (no search-permission checks), no symlink or dot on the
        # way; anything else walks again. The walk is cached until a name is removed or
        # replaced or a mount changes (NS_GEN: tmpfs and overlay both bump it), or the root
        # moves.
        dc = task.dcache
        if task.dcache_gen == NS_GEN[0] and task.dcache_root is task.root:
            hit = dc.get(path)
            if hit is not None:
                if len(hit) == 2:
                    return hit
                found = walk_rest(task, *hit)
                if found is not None:
                    return found
        else:
            dc.clear()
            task.dcache_gen = NS_GEN[0]
            task.dcache_root = task.root
            hit = None
        if hit is None:
            done = _plain_walk(task, path.split("/"))
            if done is not None:
                if len(dc) >= DCACHE_MAX:
                    dc.clear()
                found = done[0], done[1]
                dc[path] = found if done[2] is None else done[2]
                return found
    check_path_len(path)
    mnt, cur = start_point(task, path, dir_fd)
    mnt, cur, _ = walk(task, mnt, cur, path.split("/"), follow)
    return mnt, cur


def _plain_walk(
    task: Task, comps: list[str]
) -> tuple[Mount, Node, tuple[Mount, Node, list[str]] | None] | None:
    """The fast walk from the root: (mount, node, None), None if it needs the full walk.

    (A third item, a pivot (mount, node, components left), would make the cache walk again
    from there each time; every filesystem here bumps NS_GEN on removals, so none does.)
    """
    mnt, node = task.root
    for c in comps:
        if not c:
            continue
        if c == "." or c == ".." or node.ftype != _S_IFDIR:
            return None
        child: Node | None = (node.entries.get(c) if type(node) is MemInode
                              else node.lookup(c))  # fmt: skip
        if child is None or child.ftype == _S_IFLNK:
            return None
        if child.mounted:
            mnt, child = task.fs.mount_table.follow(mnt, child)
        node = child
    return mnt, node, None


def walk_rest(task: Task, mnt: Mount, node: Node, comps: list[str]) -> tuple[Mount, Node] | None:
    """The fast walk on any filesystem (lookup() each time); None if it needs the full walk."""
    for c in comps:
        if not c:
            continue
        if c == "." or c == ".." or node.ftype != _S_IFDIR:
            return None
        child = node.lookup(c)
        if child is None or child.ftype == _S_IFLNK:
            return None
        if child.mounted:
            mnt, child = task.fs.mount_table.follow(mnt, child)
        node = child
    return mnt, node


class Parent:
    """Where a create/delete/rename operates: the parent directory and the last name."""

    __slots__ = ("kind", "mnt", "name", "node", "trailing")

    def __init__(self, mnt: Mount, node: Node, name: str, kind: int, trailing: bool) -> None:
        self.mnt = mnt
        self.node = node
        self.name = name
        self.kind = kind
        self.trailing = trailing

    def lookup(self, task: Task, follow_mount: bool = True) -> Node | None:
        """Look the last name up in the parent (needs search permission on it).

        unlink, rmdir and rename look at the mount point itself (follow_mount=False), so that
        they can refuse it with EBUSY.
        """
        check_search(task, self.node)
        if name_too_long(self.name):
            raise fserr(errno.ENAMETOOLONG)
        child = self.node.lookup(self.name)
        if follow_mount and child is not None and child.mounted:
            _, child = task.fs.mount_table.follow(self.mnt, child)
        return child


def check_search(task: Task, node: Node) -> None:
    if task.cred.uid != 0 and not permitted(task.cred, node, MAY_EXEC):
        raise fserr(errno.EACCES)


def resolve_parent(task: Task, path: str, dir_fd: int | None = None) -> Parent:
    if not path:
        raise fserr(errno.ENOENT)
    check_path_len(path)
    stripped = path.rstrip("/")
    trailing = len(stripped) != len(path)
    mnt, cur = start_point(task, path, dir_fd)
    if not stripped:  # "/" or "///"
        return Parent(mnt, cur, "", LAST_ROOT, trailing)
    head, sep, name = stripped.rpartition("/")
    if sep:
        mnt, cur, _ = walk(task, mnt, cur, [*(head or "/").split("/"), ""], True)
    elif cur.ftype != _S_IFDIR:
        raise fserr(errno.ENOTDIR)
    kind = LAST_DOT if name == "." else LAST_DOTDOT if name == ".." else LAST_NORM
    return Parent(mnt, cur, name, kind, trailing)


def fspath(path: object) -> tuple[str, bool]:
    """(str path, was_bytes) for str, bytes and os.PathLike arguments, as os accepts them."""
    if isinstance(path, str):
        if "\0" in path:
            raise ValueError("embedded null byte")
        return path, False
    if isinstance(path, bytes):
        if b"\0" in path:
            raise ValueError("embedded null byte")
        return path.decode("utf-8", "surrogateescape"), True
    if isinstance(path, os.PathLike):
        return fspath(os.fspath(path))
    raise TypeError(
        f"path should be string, bytes or os.PathLike, not {type(path).__name__}"
    )
