"""Name resolution inside an image root with chroot semantics, through an os-like module.

Every component is looked up with ``lstat``; a symlink is read and its target continued from
the *image* root when absolute, ``..`` at the root stays at the root, and at most
``max_symlink_hops`` links are followed. So no name in a layer can reach outside the root,
whatever the layer contains: escape is impossible by construction, not by string filtering.
The last component is never followed (entries replace what is there).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import Any

from overlaysim.errors import SymlinkLoop


class NotADir(Exception):
    """A parent component exists and is not a directory (the caller decides what that means)."""

    def __init__(self, rel: str) -> None:
        super().__init__(rel)
        self.rel = rel


class Resolver:
    """Resolve relative image paths below ``root`` (an absolute path in ``o``'s namespace)."""

    def __init__(self, o: Any, root: str, max_hops: int = 40) -> None:
        self.o = o
        self.root = root.rstrip("/") or "/"
        self.max_hops = max_hops
        self.via_symlink = False  # set when the last resolution went through a symlink
        self.created: list[str] = []  # implied directories made by the last resolution
        # resolved directories; valid until something is removed (callers call invalidate)
        self._cache: dict[str, tuple[list[str], bool]] = {}
        self._abs_cache: dict[str, str] = {}

    def invalidate(self) -> None:
        self._cache.clear()
        self._abs_cache.clear()

    def abs(self, parts: list[str]) -> str:
        if not parts:
            return self.root
        return posixpath.join(self.root, *parts)

    def lstat(self, path: str) -> os.stat_result | None:
        try:
            st: os.stat_result = self.o.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        return st

    def dir_parts(self, rel: str, create: bool) -> list[str]:
        """Resolve ``rel`` as a directory; create missing components (mode 0755, root) if asked."""
        self.via_symlink = False
        self.created = []
        hit = self._cache.get(rel)
        if hit is not None:
            self.via_symlink = hit[1]
            return list(hit[0])
        todo = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        # start from the longest prefix already resolved
        for i in range(len(todo) - 1, 0, -1):
            pre = self._cache.get("/".join(todo[:i]))
            if pre is not None:
                done, self.via_symlink, todo = list(pre[0]), pre[1], todo[i:]
                break
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            path = self.abs([*done, part])
            st = self.lstat(path)
            if st is None:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
                self.o.mkdir(path, 0o755)
                self.o.chmod(path, 0o755)
                self.o.chown(path, 0, 0, follow_symlinks=False)
                self.created.append(path)
                done.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > self.max_hops:
                    raise SymlinkLoop(f"more than {self.max_hops} symlinks resolving {rel!r}")
                target = self.o.readlink(path)
                self.via_symlink = True
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADir("/".join([*done, part]))
            done.append(part)
        if create:
            self._cache[rel] = (list(done), self.via_symlink)
        return done

    def parent(self, rel: str, create: bool = True) -> tuple[str, str]:
        """(absolute directory, base name) for an entry path; parents resolved, base not."""
        i = rel.rfind("/")
        parent, base = (rel[:i], rel[i + 1 :]) if i >= 0 else ("", rel)
        if create:
            hit = self._abs_cache.get(parent)
            if hit is not None and parent in self._cache:
                self.via_symlink = self._cache[parent][1]
                return hit, base
        d = self.abs(self.dir_parts(parent, create))
        if create:
            self._abs_cache[parent] = d
        return d, base

    def existing(self, rel: str) -> str | None:
        """Absolute path of an existing entry (parents followed, last component not)."""
        try:
            d, base = self.parent(rel, create=False)
        except (FileNotFoundError, NotADir):
            return None
        p = posixpath.join(d, base) if base else d
        return p if self.lstat(p) is not None else None


def rmtree(o: Any, path: str) -> None:
    """Remove a path of any type, never following symlinks."""
    st = o.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        for name in o.listdir(path):
            rmtree(o, posixpath.join(path, name))
        o.rmdir(path)
    else:
        o.unlink(path)
