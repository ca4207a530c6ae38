"""GNU sparse files in tar (old GNU 'S' headers and PAX 0.0/0.1/1.0), read as Go reads them.

OCI says layers SHOULD NOT hold sparse files, but Go's reader expands them, so Docker extracts
them as ordinary files full of zeros: a tiny archive can describe a huge file. We parse the
maps with Go's validation rules, bound them by ``max_sparse_entries`` and the byte budget, and
expand them only on request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from overlaysim.errors import ImageError
from overlaysim.image.errors import BadHeader
from overlaysim.image.limits import Limits, check
from overlaysim.image.tar_fields import NumParser, block_format, go_parse_int

if TYPE_CHECKING:
    from overlaysim.image.tar_reader import TarHeader


def _bad(msg: str) -> ImageError:
    return BadHeader(msg)


def _int(s: str | bytes) -> int:
    try:
        return go_parse_int(s)
    except ValueError:
        raise _bad(f"invalid number {s!r} in a sparse map") from None


class SparseMap:
    """Data fragments (offset, length) of a sparse file; everything else reads as zeros."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int]] = []

    def add(self, offset: int, length: int, limits: Limits) -> None:
        self.entries.append((offset, length))
        check(len(self.entries), limits.max_sparse_entries, "sparse map entries")

    def add_extension(self, blk: bytes, limits: Limits) -> bool:
        """Parse an old-GNU extension block (21 entries); True when another one follows."""
        _entries(blk, 0, 21, self, limits)
        return blk[504] > 0

    @classmethod
    def from_pax_0x(cls, pax: dict[str, str], limits: Limits) -> SparseMap:
        n = _int(pax.get("GNU.sparse.numblocks", ""))
        if n < 0:
            raise _bad("negative sparse entry count")
        check(n, limits.max_sparse_entries, "sparse map entries")
        raw = pax.get("GNU.sparse.map", "")
        parts = [] if raw == "" else raw.split(",")
        if len(parts) != 2 * n:
            raise _bad("sparse map length does not match GNU.sparse.numblocks")
        sm = cls()
        for i in range(0, len(parts), 2):
            sm.add(_int(parts[i]), _int(parts[i + 1]), limits)
        return sm

    def valid_for(self, size: int) -> bool:
        """Go's validateSparseEntries: non-negative, in order, non-overlapping, inside size."""
        if size < 0:
            return False
        pre_end = 0
        for off, length in self.entries:
            if off < 0 or length < 0 or off > (1 << 63) - 1 - length:
                return False
            if off + length > size or pre_end > off:
                return False
            pre_end = off + length
        return True

    def data_bytes(self) -> int:
        return sum(length for _, length in self.entries)

    def expand(self, data: bytes, size: int) -> bytes:
        out = bytearray(size)
        pos = 0
        for off, length in self.entries:
            out[off : off + length] = data[pos : pos + length]
            pos += length
        return bytes(out)


def _entries(blk: bytes, start: int, count: int, sm: SparseMap, limits: Limits) -> None:
    p = NumParser()
    for i in range(count):
        base = start + 24 * i
        if blk[base] == 0:
            break  # same termination rule as GNU and BSD tar
        off = p.numeric(blk[base : base + 12])
        length = p.numeric(blk[base + 12 : base + 24])
        if p.err:
            raise _bad("invalid number in an old GNU sparse map")
        sm.add(off, length, limits)


def parse_old_gnu(blk: bytes, limits: Limits) -> tuple[SparseMap, int, bool]:
    """Map in the main header, the real (logical) size, and whether extension blocks follow."""
    if block_format(blk) != "gnu":
        raise _bad("old GNU sparse entry in a non-GNU header")
    p = NumParser()
    realsize = p.numeric(blk[483:495])
    if p.err:
        raise _bad("invalid real size in an old GNU sparse header")
    sm = SparseMap()
    _entries(blk, 386, 4, sm, limits)
    return sm, realsize, blk[482] > 0


def parse_pax_sparse(hdr: TarHeader, pax: dict[str, str]) -> str | None:
    """Which PAX sparse format applies ("0.0", "0.1", "1.0" or None); renames/resizes hdr."""
    major, minor = pax.get("GNU.sparse.major", ""), pax.get("GNU.sparse.minor", "")
    if major == "0" and minor in ("0", "1"):
        kind = "0." + minor
    elif major == "1" and minor == "0":
        kind = "1.0"
    elif major or minor:
        return None  # unknown version: Go treats the entry as a regular file
    elif pax.get("GNU.sparse.map", ""):
        kind = "0.1"
    else:
        return None
    name = pax.get("GNU.sparse.name", "")
    if name:
        hdr.name = name
    size = pax.get("GNU.sparse.size", "") or pax.get("GNU.sparse.realsize", "")
    if size:
        hdr.size = _int(size)
    return kind


class _PhysicalReader(Protocol):
    def read_physical(self, n: int) -> bytes: ...


def read_map_1x0(r: _PhysicalReader, physical: int, limits: Limits) -> tuple[SparseMap, int]:
    """The 1.0 map at the start of the data: count, then offset/length lines, block-padded."""
    buf = b""
    used = 0

    def feed(newlines: int) -> None:
        nonlocal buf, used
        while buf.count(b"\n") < newlines:
            if used + 512 > physical:
                raise _bad("sparse map runs past the entry's data")
            buf += r.read_physical(512)
            used += 512
            check(used, limits.max_pax_bytes, "sparse map size")

    feed(1)
    line, _, buf = buf.partition(b"\n")
    n = _int(line)
    if n < 0:
        raise _bad("negative sparse entry count")
    check(n, limits.max_sparse_entries, "sparse map entries")
    feed(2 * n)
    sm = SparseMap()
    for _ in range(n):
        a, _, buf = buf.partition(b"\n")
        b, _, buf = buf.partition(b"\n")
        sm.add(_int(a), _int(b), limits)
    return sm, used
