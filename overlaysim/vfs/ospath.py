"""``fs.os.path``: posixpath's pure string functions, and the ones that ask the filesystem
(exists, isdir, realpath...) answered from HostFS instead of the host."""

from __future__ import annotations

import posixpath
import stat as st
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overlaysim.vfs.osmodule import OsModule


class PathModule:
    basename = staticmethod(posixpath.basename)
    commonpath = staticmethod(posixpath.commonpath)
    commonprefix = staticmethod(posixpath.commonprefix)
    dirname = staticmethod(posixpath.dirname)
    isabs = staticmethod(posixpath.isabs)
    join = staticmethod(posixpath.join)
    normcase = staticmethod(posixpath.normcase)
    normpath = staticmethod(posixpath.normpath)
    split = staticmethod(posixpath.split)
    splitdrive = staticmethod(posixpath.splitdrive)
    splitext = staticmethod(posixpath.splitext)
    relpath = staticmethod(posixpath.relpath)
    expanduser = staticmethod(posixpath.expanduser)
    expandvars = staticmethod(posixpath.expandvars)
    sep, altsep, extsep, pathsep = posixpath.sep, posixpath.altsep, posixpath.extsep, ":"
    curdir, pardir, defpath, devnull = ".", "..", posixpath.defpath, "/dev/null"
    supports_unicode_filenames = False

    def __init__(self, osm: OsModule) -> None:
        self._os = osm

    def _stat(self, path: Any, follow: bool = True) -> Any:
        try:
            return self._os.stat(path, follow_symlinks=follow)
        except (OSError, ValueError):
            return None

    def exists(self, path: Any) -> bool:
        return self._stat(path) is not None

    def lexists(self, path: Any) -> bool:
        return self._stat(path, False) is not None

    def isdir(self, path: Any) -> bool:
        s = self._stat(path)
        return s is not None and st.S_ISDIR(s.st_mode)

    def isfile(self, path: Any) -> bool:
        s = self._stat(path)
        return s is not None and st.S_ISREG(s.st_mode)

    def islink(self, path: Any) -> bool:
        s = self._stat(path, False)
        return s is not None and st.S_ISLNK(s.st_mode)

    def ismount(self, path: Any) -> bool:
        s1 = self._stat(path, False)
        if s1 is None or st.S_ISLNK(s1.st_mode):
            return False
        parent = posixpath.join(path, b".." if isinstance(path, bytes) else "..")
        s2 = self._stat(parent, False)
        if s2 is None:
            return False
        return bool(s1.st_dev != s2.st_dev or s1.st_ino == s2.st_ino)

    def getsize(self, path: Any) -> int:
        return int(self._os.stat(path).st_size)

    def getmtime(self, path: Any) -> float:
        return float(self._os.stat(path).st_mtime)

    def getatime(self, path: Any) -> float:
        return float(self._os.stat(path).st_atime)

    def getctime(self, path: Any) -> float:
        return float(self._os.stat(path).st_ctime)

    def samefile(self, a: Any, b: Any) -> bool:
        return posixpath.samestat(self._os.stat(a), self._os.stat(b))

    samestat = staticmethod(posixpath.samestat)

    def abspath(self, path: Any) -> Any:
        if isinstance(path, bytes):
            cwd: Any = self._os.getcwdb()
        else:
            cwd = self._os.getcwd()
        return posixpath.normpath(posixpath.join(cwd, path))

    def realpath(self, path: Any, *, strict: bool = False) -> Any:
        """Resolve symlinks component by component against HostFS (as posixpath does)."""
        as_bytes = isinstance(path, bytes)
        p = path.decode("utf-8", "surrogateescape") if as_bytes else str(path)
        if not p.startswith("/"):
            p = posixpath.join(self._os.getcwd(), p)
        resolved = "/"
        todo = [c for c in p.split("/") if c]
        hops = 0
        while todo:
            c = todo.pop(0)
            if c == ".":
                continue
            if c == "..":
                resolved = posixpath.dirname(resolved) or "/"
                continue
            cand = posixpath.join(resolved, c)
            s = self._stat(cand, False)
            if s is None and strict:
                self._os.lstat(cand)
            if s is not None and st.S_ISLNK(s.st_mode):
                hops += 1
                if hops > 40:
                    if strict:
                        self._os.stat(cand)
                    resolved = cand
                    continue
                target = self._os.readlink(cand)
                if target.startswith("/"):
                    resolved = "/"
                todo = [x for x in target.split("/") if x] + todo
                continue
            resolved = cand
        return resolved.encode("utf-8", "surrogateescape") if as_bytes else resolved
