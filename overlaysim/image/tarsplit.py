"""Re-assemble a layer tar byte for byte from its headers and the files of an applied tree.

Docker keeps ``tar-split.json.gz`` next to every pulled layer: the raw header and padding
bytes, and for each file only its name and size. ``docker save``/``push`` then replays the
headers and reads file contents back from ``diff/``, so the layer keeps its digest. We record
the same two kinds of segment while parsing and replay them through an os-like module.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import DigestMismatch, Truncated

_MERGE_MAX = 1 << 20  # raw segments up to this size are merged into one


@dataclass
class FileRef:
    """Data of one regular file, to be read back from ``path`` (an absolute path in the tree)."""

    name: str  # the tar member name, for messages and the JSON form
    size: int
    path: str = ""  # filled in when the layer is applied


@dataclass
class TarSplit:
    """Raw segments and file references, in stream order (raw bytes may take several
    segments in a row)."""

    segments: list[bytes | FileRef] = field(default_factory=list)

    def raw(self, data: bytes) -> None:
        if not data:
            return
        segs = self.segments
        last = segs[-1] if segs else None
        # merge with the raw segment before, unless that copies a lot (then keep both)
        if isinstance(last, bytes) and len(last) + len(data) <= _MERGE_MAX:
            segs[-1] = last + data
        else:
            segs.append(data)

    def raws(self, parts: list[bytes]) -> None:
        """``raw(b"".join(parts))`` without the copy when the parts are big: the headers of
        a million empty files are 512 MB, read in 1 MiB buffers kept as they are."""
        if sum(map(len, parts)) <= _MERGE_MAX:
            self.raw(b"".join(parts))
        else:
            self.segments.extend(p for p in parts if p)

    def file(self, ref: FileRef) -> None:
        self.segments.append(ref)

    def files(self) -> list[FileRef]:
        return [s for s in self.segments if isinstance(s, FileRef)]

    def assemble(self, o: Any, expect_diff_id: str | None = None) -> bytes:
        """The original uncompressed layer, reading file data through the os-like module ``o``."""
        out = bytearray()
        for seg in self.segments:
            if isinstance(seg, bytes):
                out += seg
                continue
            if not seg.size:
                continue
            if not seg.path:
                raise Truncated(f"tar-split: no file in the tree for {seg.name!r}")
            fd = o.open(seg.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                got = bytearray()
                while len(got) < seg.size:
                    chunk = o.read(fd, seg.size - len(got))
                    if not chunk:
                        break
                    got += chunk
            finally:
                o.close(fd)
            if len(got) != seg.size:
                raise Truncated(
                    f"tar-split: {seg.name!r} has {len(got)} bytes, expected {seg.size}"
                )
            out += got
        data = bytes(out)
        if expect_diff_id is not None:
            got_id = "sha256:" + hashlib.sha256(data).hexdigest()
            if got_id != expect_diff_id:
                raise DigestMismatch(
                    f"re-assembled layer hashes to {got_id}, expected {expect_diff_id}"
                )
        return data

    def to_json_gz(self) -> bytes:
        """vbatts/tar-split storage: one JSON object per line (type 1 file, type 2 segment).

        Files carry no ``payload`` (tar-split's CRC-64 of the content): computing it in pure
        Python would cost more than the import, and re-assembly checks the diff_id instead.
        """
        lines: list[dict[str, Any]] = []
        for pos, seg in enumerate(self.segments):
            if isinstance(seg, bytes):
                lines.append(
                    {"type": 2, "payload": base64.b64encode(seg).decode(), "position": pos}
                )
            else:
                lines.append({"type": 1, "name": seg.name, "size": seg.size, "position": pos})
        body = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
        # Go's default level, as tar-split writes it (Python's 9 is ~6x slower for ~15% less)
        return gzip.compress(body.encode(), compresslevel=6, mtime=0)

    @classmethod
    def from_json_gz(cls, data: bytes, paths: dict[str, str] | None = None) -> TarSplit:
        """Read the storage form back; ``paths`` maps member names to files in the tree."""
        ts = cls()
        for line in gzip.decompress(data).decode().splitlines():
            rec = json.loads(line)
            if rec.get("type") == 2:
                ts.raw(base64.b64decode(rec["payload"]))
            else:
                name = str(rec["name"])
                ts.file(FileRef(name, int(rec["size"]), path=(paths or {}).get(name, "")))
        return ts
