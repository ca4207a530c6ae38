"""Read-only access to the files of an outer archive (a tar) or a directory, inside its root.

Manifests name members by path; a hostile one says ``../../etc/shadow`` or makes
``layer.tar`` a symlink to ``/``. Names resolve inside the source root with chroot semantics
(``..`` stops at the root, symlinks are followed inside it, at most 40 of them), and escaping
paths are rejected when strict. Data is read lazily by offset, so a 10 GiB docker save is
indexed, not loaded.
"""

from __future__ import annotations

import io
import itertools
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import BinaryIO

from overlaysim.errors import PathEscape, SymlinkLoop, Truncated, UnsupportedMediaType
from overlaysim.image import tar_reader as tr
from overlaysim.image.compress import open_stream
from overlaysim.image.errors import BadHeader, MissingMember, NotATar
from overlaysim.image.findings import Findings
from overlaysim.image.limits import Limits, check


class _Slice(io.RawIOBase):
    """A window [offset, offset+size) of a file descriptor or a bytes buffer, read by pread."""

    def __init__(self, fd: int | None, buf: memoryview | None, offset: int, size: int) -> None:
        self._fd, self._buf, self._off, self._size, self._pos = fd, buf, offset, size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        left = self._size - self._pos
        if n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        if self._buf is not None:
            data = bytes(self._buf[self._off + self._pos : self._off + self._pos + n])
        else:
            assert self._fd is not None
            data = os.pread(self._fd, n, self._off + self._pos)
        if not data:
            raise Truncated("archive member is shorter than its header says")
        self._pos += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._fd is None:
            data = self.read(len(b))
            b[: len(data)] = data
            return len(data)
        # straight into the caller's buffer: no intermediate bytes object to copy from
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        view = memoryview(b)[:n] if n < len(b) else b
        got = os.preadv(self._fd, [view], self._off + self._pos)
        if not got:
            raise Truncated("archive member is shorter than its header says")
        self._pos += got
        return got


@dataclass
class _Member:
    kind: str  # "file", "dir", "symlink", "link"
    offset: int = 0
    size: int = 0
    target: str = ""


def clean(name: str) -> str:
    """Strip leading '/' and './', collapse '..' but keep a leading one (to detect escapes)."""
    n = posixpath.normpath("/" + name.lstrip("/")) if name else "/"
    if _escapes(name):
        return "../" + n.lstrip("/")
    return n.lstrip("/") or "."


def _escapes(name: str) -> bool:
    depth = 0
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


class Source:
    """Common interface: ``files()``, ``exists``, ``size``, ``open``, ``read``."""

    label: str = ""

    def __init__(self, limits: Limits, findings: Findings, strict: bool) -> None:
        self.limits = limits
        self.findings = findings
        self.strict = strict

    def _member(self, path: str) -> _Member | None:
        raise NotImplementedError

    def files(self) -> list[str]:
        raise NotImplementedError

    def _open_member(self, m: _Member, path: str) -> BinaryIO:
        raise NotImplementedError

    def resolve(self, name: str) -> tuple[str, _Member | None]:
        """Resolve ``name`` inside the root: returns (clean path, member or None)."""
        if "\x00" in name:
            raise PathEscape(f"{self.label}: NUL byte in member path {name!r}")
        if _escapes(name):
            if self.strict:
                raise PathEscape(f"{self.label}: path {name!r} leaves the archive")
            self.findings.add(
                "manifest-path-escape", f"path {name!r} clamped at the archive root", name
            )
        todo = [p for p in name.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            cur = "/".join([*done, part])
            m = self._member(cur)
            if m is not None and m.kind == "symlink":
                hops += 1
                if hops > self.limits.max_symlink_hops:
                    raise SymlinkLoop(f"{self.label}: too many symlinks resolving {name!r}")
                tgt = m.target
                if tgt.startswith("/"):
                    done = []
                elif _escapes("/".join(done) + "/" + tgt if done else tgt):
                    if self.strict:
                        raise PathEscape(
                            f"{self.label}: symlink {cur!r} -> {tgt!r} leaves the archive"
                        )
                    self.findings.add("symlink-escape", f"symlink target {tgt!r} clamped", cur)
                todo = [p for p in tgt.split("/") if p not in ("", ".")] + todo
                continue
            done.append(part)
        path = "/".join(done)
        return path, self._member(path) if path else None

    def exists(self, name: str) -> bool:
        _, m = self.resolve(name)  # an escaping or looping name is an error, not "missing"
        return m is not None and m.kind == "file"

    def size(self, name: str) -> int:
        return self._file(name).size

    def _file(self, name: str) -> _Member:
        _, m = self.resolve(name)
        if m is None:
            raise MissingMember(f"{self.label}: missing member {name!r}", name) from None
        if m.kind != "file":
            raise UnsupportedMediaType(f"{self.label}: member {name!r} is not a regular file")
        return m

    def open(self, name: str) -> BinaryIO:
        path, _ = self.resolve(name)
        return self._open_member(self._file(name), path)

    def read(self, name: str, max_bytes: int, what: str) -> bytes:
        m = self._file(name)
        check(m.size, max_bytes, f"{what} ({name})")
        with self.open(name) as f:
            data = f.read()
        if len(data) != m.size:
            raise Truncated(f"{self.label}: member {name!r} is truncated")
        return data

    def close(self) -> None:
        pass


class TarSource(Source):
    """An outer tar (docker save, oci-archive), indexed once; gzip/zstd outer tars are inflated."""

    def __init__(self, path: str, limits: Limits, findings: Findings, strict: bool = True) -> None:
        super().__init__(limits, findings, strict)
        self.label = os.path.basename(path)
        self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._buf: memoryview | None = None
        self._members: dict[str, _Member] = {}
        try:
            self._index(path)
        except BaseException:
            self.close()
            raise

    def _index(self, path: str) -> None:
        lim = self.limits
        with open(path, "rb") as raw:
            _, dec = open_stream(raw, lim, lim.max_archive_bytes, self.label)
            if dec.kind != "none":
                self.findings.add(
                    "outer-compressed", f"outer archive is {dec.kind}-compressed", level="info"
                )
                data = dec.read()
                self._buf = memoryview(data)
                stream: io.BufferedIOBase | BinaryIO = io.BytesIO(data)
            else:
                raw.seek(0)
                stream = raw
            reader = tr.TarReader(
                stream, lim.but(max_entries=lim.max_archive_members), what=self.label
            )
            try:
                first = reader.next()
            except BadHeader:
                raise NotATar(f"{self.label}: not a tar archive or an image directory") from None
            for h in itertools.chain([first] if first else [], reader):
                name = clean(h.name)
                if h.typeflag == tr.XGLOBAL:
                    continue
                if name in self._members and h.typeflag != tr.DIR:
                    self.findings.add(
                        "duplicate-member", "member appears twice; the last one wins", name
                    )
                if h.typeflag in (tr.REG, tr.CONT):
                    if h.sparse is not None:
                        raise UnsupportedMediaType(
                            f"{self.label}: sparse member {name!r} in an image archive"
                        )
                    self._members[name] = _Member("file", h.data_offset, h.size)
                elif h.typeflag == tr.DIR:
                    self._members.setdefault(name, _Member("dir"))
                elif h.typeflag == tr.SYMLINK:
                    self._members[name] = _Member("symlink", target=h.linkname)
                elif h.typeflag == tr.LINK:
                    tgt = self._members.get(clean(h.linkname))
                    if tgt is None or tgt.kind != "file":
                        raise UnsupportedMediaType(
                            f"{self.label}: hard link {name!r} to a missing member"
                        )
                    self._members[name] = tgt
                else:
                    self.findings.add("odd-member", f"member of type {h.typeflag!r} ignored", name)
            reader.finish()
            if reader.trailing_nonzero:
                self.findings.add(
                    "trailing-garbage", f"{reader.trailing} bytes after the end of the archive"
                )

    def _member(self, path: str) -> _Member | None:
        return self._members.get(path)

    def files(self) -> list[str]:
        return sorted(k for k, m in self._members.items() if m.kind == "file")

    def _open_member(self, m: _Member, path: str) -> BinaryIO:
        raw = _Slice(self._fd if self._buf is None else None, self._buf, m.offset, m.size)
        return io.BufferedReader(raw, 1 << 20)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class DirSource(Source):
    """A directory on the real disk (OCI layout, extracted docker save), read without escaping."""

    def __init__(self, root: str, limits: Limits, findings: Findings, strict: bool = True) -> None:
        super().__init__(limits, findings, strict)
        self.root = os.path.abspath(root)
        self.label = os.path.basename(self.root.rstrip("/")) or self.root

    def _member(self, path: str) -> _Member | None:
        try:
            st = os.lstat(os.path.join(self.root, path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return _Member("symlink", target=os.readlink(os.path.join(self.root, path)))
        if stat.S_ISDIR(st.st_mode):
            return _Member("dir")
        if stat.S_ISREG(st.st_mode):
            return _Member("file", 0, st.st_size)
        return _Member("other")

    def files(self) -> list[str]:
        out = []
        for d, _dirs, names in os.walk(self.root):
            for n in names:
                p = os.path.relpath(os.path.join(d, n), self.root)
                if os.path.isfile(os.path.join(d, n)) and not os.path.islink(os.path.join(d, n)):
                    out.append(p)
        return sorted(out)

    def _open_member(self, m: _Member, path: str) -> BinaryIO:
        fd = os.open(os.path.join(self.root, path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return os.fdopen(fd, "rb", buffering=1 << 20)
