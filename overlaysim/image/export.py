"""Layer tars from directories, exactly as Docker writes them, and ``docker diff`` changes.

``layer_tar``: Docker's native overlay2 Diff (go-archive ``TarWithOptions`` with the overlay
whiteout converter): a depth-first walk with byte-sorted siblings, no root entry, directories
with a trailing ``/``, USTAR-unless-needed "PAX", whole-second mtimes, uid/gid from the inode
and no user names, ``security.capability`` as the only xattr (v3 downgraded to v2), hard links
for the second name of an inode, a char 0/0 device as a 0600 ``.wh.<name>`` regular file and
an opaque directory followed by a ``.wh..wh..opq`` entry with the directory's permissions and
a zero mtime. ``rootfs_tar`` is ``docker export`` (the same walk, no whiteout conversion).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from overlaysim.image.tar_writer import (
    C_ISBLK,
    C_ISCHR,
    C_ISDIR,
    C_ISFIFO,
    C_ISLNK,
    C_ISREG,
    Header,
    TarWriter,
    Writable,
)
from overlaysim.image.tree import Node

_TYPEBITS = {
    stat.S_IFDIR: C_ISDIR,
    stat.S_IFREG: C_ISREG,
    stat.S_IFLNK: C_ISLNK,
    stat.S_IFCHR: C_ISCHR,
    stat.S_IFBLK: C_ISBLK,
    stat.S_IFIFO: C_ISFIFO,
}
_TYPEFLAG = {
    stat.S_IFDIR: "5",
    stat.S_IFREG: "0",
    stat.S_IFLNK: "2",
    stat.S_IFCHR: "3",
    stat.S_IFBLK: "4",
    stat.S_IFIFO: "6",
}


def _sorted(o: Any, path: str) -> Iterator[str]:
    names = sorted(o.listdir(path))
    if not "".join(names).isascii():  # code point order is byte order for ASCII names only
        names.sort(key=lambda n: n.encode("utf-8", "surrogateescape"))
    return iter(names)


def walk(o: Any, root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) depth-first, siblings in byte order (Go WalkDir)."""
    stack: list[tuple[str, str, Iterator[str]]] = [("", root, _sorted(o, root))]
    while stack:
        rel, path, it = stack[-1]
        name = next(it, None)
        if name is None:
            stack.pop()
            continue
        crel = f"{rel}/{name}" if rel else name
        cpath = path + name if not path or path[-1] == "/" else f"{path}/{name}"  # os.path.join
        try:
            st = o.lstat(cpath)
        except FileNotFoundError:
            # an overlay lists a whiteout of its lowest layer in a dir no other layer has,
            # but lookup hides it; Docker's tarballer logs the failed lstat and goes on
            continue
        yield crel, cpath, st
        if stat.S_ISDIR(st.st_mode):
            stack.append((crel, cpath, _sorted(o, cpath)))


def _read(o: Any, path: str, size: int) -> bytes:
    fd = o.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        parts, got = [], 0
        while got < size:
            b = o.read(fd, min(1 << 20, size - got))
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)
    finally:
        o.close(fd)


def _capability(o: Any, path: str) -> str | None:
    # listed first: nearly no file has one, and a failed getxattr costs an exception each
    try:
        if "security.capability" not in o.listxattr(path, follow_symlinks=False):
            return None
        cap = bytearray(o.getxattr(path, "security.capability", follow_symlinks=False))
    except OSError:
        return None
    if len(cap) > 3 and cap[3] == 3:  # VFS_CAP_REVISION_3 -> 2, dropping the rootid
        cap[3] = 2
        cap = cap[:20]
    return bytes(cap).decode("latin-1")


#: (uid, gid) -> (user name, group name), as Go's FileInfoHeader looks them up (Docker <= 22)
Names = Callable[[int, int], tuple[str, str]]


def _header(
    rel: str, st: os.stat_result, link: str, legacy_mode_bits: bool, names: Names | None = None
) -> Header | None:
    fmt = stat.S_IFMT(st.st_mode)
    tf = _TYPEFLAG.get(fmt)
    if tf is None:
        return None  # sockets: Go's FileInfoHeader refuses them and Docker skips the file
    mode = stat.S_IMODE(st.st_mode)
    if legacy_mode_bits:
        mode |= _TYPEBITS[fmt]
    h = Header(
        name=rel + "/" if fmt == stat.S_IFDIR else rel,
        typeflag=tf,
        mode=mode,
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size if fmt == stat.S_IFREG else 0,
        mtime_ns=st.st_mtime_ns // 10**9 * 10**9,
        linkname=link,
    )
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        h.devmajor, h.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if names is not None:
        h.uname, h.gname = names(st.st_uid, st.st_gid)
    return h


def layer_tar(
    o: Any,
    root: str,
    out: Writable,
    *,
    whiteouts: bool = True,
    legacy_mode_bits: bool = False,
    opaque_xattr: str = "trusted.overlay.opaque",
    names: Names | None = None,
) -> None:
    """Write the tar Docker's native Diff writes for the upper directory ``root``.

    ``whiteouts=False`` gives ``docker export``. ``legacy_mode_bits`` adds the S_IF* type bits
    to the mode field, and ``names`` fills uname/gname, as Docker up to 20.10 did
    (fillGo18FileTypeBits; Go's FileInfoHeader looked names up, later Docker does not).
    """
    w = TarWriter(out)
    seen: dict[tuple[int, int], str] = {}
    for rel, path, st in walk(o, root):
        fmt = stat.S_IFMT(st.st_mode)
        if not whiteouts and fmt == stat.S_IFCHR and st.st_rdev == 0:
            continue  # a whiteout: no overlay shows one (mknod of 0/0 on it is EPERM)
        link = o.readlink(path) if fmt == stat.S_IFLNK else ""
        h = _header(rel, st, link, legacy_mode_bits, names)
        if h is None:
            continue
        cap = _capability(o, path)
        if cap is not None:
            h.pax["SCHILY.xattr.security.capability"] = cap
        if fmt != stat.S_IFDIR and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                h.typeflag, h.linkname, h.size = "1", seen[key], 0
            else:
                seen[key] = h.name
        extra: Header | None = None
        if whiteouts and fmt == stat.S_IFCHR and h.devmajor == 0 and h.devminor == 0:
            # go-archive renames in place: the typeflag becomes '0' even for a second link
            # of a shared whiteout inode, and its linkname stays set
            d, f = posixpath.split(h.name)
            h.name, h.mode, h.typeflag, h.size = posixpath.join(d, ".wh." + f), 0o600, "0", 0
        elif whiteouts and fmt == stat.S_IFDIR:
            try:
                opaque = bytes(o.getxattr(path, opaque_xattr, follow_symlinks=False))
            except OSError:
                opaque = b""
            if opaque == b"y":
                extra = Header(
                    name=posixpath.join(h.name, ".wh..wh..opq"),
                    typeflag="0",
                    mode=h.mode & 0o777,
                    uid=h.uid,
                    gid=h.gid,
                    uname=h.uname,
                    gname=h.gname,
                    mtime_ns=None,
                    want_pax=False,
                )
        data = _read(o, path, h.size) if h.typeflag == "0" and h.size else b""
        w.add(h, data)
        if extra is not None:
            w.add(extra)
    w.close()


def rootfs_tar(
    o: Any,
    root: str,
    out: Writable,
    *,
    legacy_mode_bits: bool = False,
    names: Names | None = None,
) -> None:
    """``docker export``: the whole tree, devices as devices, no root entry, and never a
    char 0/0 device (on an overlay it is a whiteout, so a merged view has none; a single
    layer's diff dir read directly still holds those of its whiteouts)."""
    layer_tar(o, root, out, whiteouts=False, legacy_mode_bits=legacy_mode_bits, names=names)


@dataclass(frozen=True)
class Change:
    kind: str  # "A", "C" or "D"
    path: str  # absolute, as docker diff prints it

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"

    def to_json(self) -> dict[str, Any]:
        return {"Path": self.path, "Kind": {"C": 0, "A": 1, "D": 2}[self.kind]}


def _same_time(a: int, b: int) -> bool:
    if a == b:
        return True
    return a // 10**9 == b // 10**9 and (a % 10**9 == 0 or b % 10**9 == 0)


def _changed(x: Node, y: Node) -> bool:
    if (x.kind, x.mode, x.uid, x.gid, x.rdev) != (y.kind, y.mode, y.uid, y.gid, y.rdev):
        return True
    if x.kind != "dir" and (x.size != y.size or not _same_time(x.mtime_ns, y.mtime_ns)):
        return True
    cap = "security.capability"
    return dict(x.xattrs).get(cap) != dict(y.xattrs).get(cap)


def changes(old: dict[str, Node], new: dict[str, Node]) -> list[Change]:
    """``docker diff`` between two snapshots (moby ChangesDirs), parents before children, sorted."""
    raw: dict[str, str] = {}
    for p, n in new.items():
        if not p:
            continue
        o_ = old.get(p)
        parent = p.rpartition("/")[0]
        if o_ is None or (o_.kind == "dir") != (n.kind == "dir"):
            if parent and raw.get(parent) == "A":
                raw[p] = "A"
                continue
            raw[p] = "A" if o_ is None else "C"
        elif _changed(o_, n):
            raw[p] = "C"
    for p in old:
        if p and p not in new:
            parent = p.rpartition("/")[0]
            # moby recurses into an old directory only where the new one is a directory too:
            # a dir replaced by a file is one "C", its old children are not listed (found by
            # the dockerd oracle: `rm -rf /root; echo a > /root` is just "C /root")
            if parent == "" or (parent in new and new[parent].kind == "dir"):
                raw[p] = "D"
    out: dict[str, str] = {}
    for p in sorted(raw, key=lambda s: s.split("/")):
        parts = p.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            if anc not in raw and anc not in out:
                out[anc] = "C"
        out[p] = raw[p]
    return [Change(k, "/" + p) for p, k in sorted(out.items(), key=lambda kv: kv[0].split("/"))]
