"""The layers of an image or container as overlay diff dirs, read into plain data (no UI).

A layer is what Docker's overlay2 keeps in ``<id>/diff``: directories, files, symlinks, and
the overlay's own markers (a whiteout is a 0/0 character device, an opaque directory has
``trusted.overlay.opaque=y``). Reading those dirs, not the tars, means an image from the
world, a container (its upper dir is one more layer) and a ``docker save`` archive (imported
into a scratch HostFS first) all become the same :class:`Layer` lists.
"""

from __future__ import annotations

import hashlib
import stat as st
from dataclasses import dataclass, field
from typing import Any

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
METACOPY_XATTRS = ("trusted.overlay.metacopy", "user.overlay.metacopy")


@dataclass(frozen=True)
class Entry:
    """One name in one layer. ``size`` is the data a regular file stores (0 otherwise)."""

    path: str  # absolute inside the layer: "/etc/passwd"
    kind: str  # "dir", "file", "symlink", "whiteout", "device", "fifo", "socket"
    size: int
    mode: int
    uid: int
    gid: int
    ino: int  # the inode in the layer dir: names sharing it are hard links
    first_link: bool = True  # the first name of its inode in walk order (carries the data)
    opaque: bool = False
    metacopy: bool = False  # an upper file whose data still lives below (metacopy=on)
    digest: str = ""  # sha256 of a file's data, or a symlink's target

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def same_metadata(self, other: Entry) -> bool:
        return (self.mode, self.uid, self.gid) == (other.mode, other.uid, other.gid)


@dataclass
class Layer:
    """One layer, bottom (index 0) to top, with the name people know it by."""

    index: int
    id: str  # overlay2 cache id, diff id or a label: whatever names the dir
    command: str  # the history's created_by ("" if unknown)
    dir: str  # where it was read from (in the HostFS it came from)
    entries: dict[str, Entry] = field(default_factory=dict)
    diff_id: str = ""
    label: str = ""

    @property
    def size(self) -> int:
        """Data bytes stored by this layer: every inode's data once (hard-link aware)."""
        return sum(e.size for e in self.entries.values() if e.kind == "file" and e.first_link
                   and not e.metacopy)  # fmt: skip

    def sorted_entries(self) -> list[Entry]:
        return [self.entries[p] for p in sorted(self.entries, key=path_key)]


def path_key(path: str) -> tuple[str, ...]:
    """Sort by components, so a directory's names follow it (``/a``, ``/a/b``, ``/a.b``)."""
    return tuple(p for p in path.split("/") if p)


def _kind(mode: int, rdev: int) -> str:
    if st.S_ISDIR(mode):
        return "dir"
    if st.S_ISREG(mode):
        return "file"
    if st.S_ISLNK(mode):
        return "symlink"
    if st.S_ISCHR(mode) and rdev == 0:
        return "whiteout"
    if st.S_ISFIFO(mode):
        return "fifo"
    if st.S_ISSOCK(mode):
        return "socket"
    return "device"


def _xattr(o: Any, path: str, names: tuple[str, ...]) -> bytes | None:
    for name in names:
        try:
            return bytes(o.getxattr(path, name, follow_symlinks=False))
        except OSError:
            continue
    return None


def _digest(o: Any, path: str) -> str:
    h = hashlib.sha256()
    fd = o.open(path, o.O_RDONLY)
    try:
        while True:
            chunk = o.read(fd, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
    finally:
        o.close(fd)
    return h.hexdigest()


def read_layer_dir(o: Any, root: str) -> dict[str, Entry]:
    """Walk ``root`` (an ``os``-like API) in name order, as Docker's tar writer does, so the
    first name of a hard-linked inode is the one a layer tar would give the data."""
    out: dict[str, Entry] = {}
    seen: set[int] = set()

    def walk(real: str, rel: str) -> None:
        for name in sorted(o.listdir(real), key=lambda n: n.encode("utf-8", "surrogateescape")):
            rpath = real.rstrip("/") + "/" + name
            path = rel.rstrip("/") + "/" + name
            s = o.lstat(rpath)
            kind = _kind(s.st_mode, s.st_rdev)
            first = s.st_ino not in seen
            seen.add(s.st_ino)
            opaque = kind == "dir" and _xattr(o, rpath, OPAQUE_XATTRS) == b"y"
            metacopy = kind == "file" and _xattr(o, rpath, METACOPY_XATTRS) is not None
            digest = ""
            if kind == "file" and not metacopy:
                digest = _digest(o, rpath)
            elif kind == "symlink":
                digest = o.readlink(rpath)
            out[path] = Entry(path, kind, s.st_size if kind == "file" else 0,
                              st.S_IMODE(s.st_mode), s.st_uid, s.st_gid, s.st_ino, first,
                              opaque, metacopy, digest)  # fmt: skip
            if kind == "dir":
                walk(rpath, path)

    walk(root, "/")
    return out
