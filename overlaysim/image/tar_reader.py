"""A tar reader that reads archives the way Go's ``archive/tar`` does.

Docker, containerd and Podman all unpack layers with Go's reader, so "what is in this layer"
means what *that* parser sees: the checksum accepted signed or unsigned, numbers in octal or
base-256, PAX records replacing header fields (an empty value keeps the header's), GNU long
names winning over PAX paths, type NUL promoted by a trailing slash, header-only types carrying
no data whatever their size field says, global headers returned as entries, and the archive
ending at two zero blocks *or* at a clean EOF. Everything is streamed with limits; raw header
bytes can be captured so an exact copy of the stream can be re-assembled (tar-split).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from zlib import adler32

from overlaysim.errors import LimitExceeded, Truncated
from overlaysim.image.compress import Readable
from overlaysim.image.errors import BadHeader
from overlaysim.image.limits import Limits, check
from overlaysim.image.tar_fields import (
    CANON,
    CANON_DEV,
    NumParser,
    block_format,
    cstr,
    decode,
    header_sums,
    merge_pax,
    parse_numeric,
    parse_pax_records,
)
from overlaysim.image.tar_sparse import SparseMap, parse_old_gnu, parse_pax_sparse, read_map_1x0

BLOCK = 512
_READAHEAD = 1 << 20
ZERO_BLOCK = bytes(BLOCK)
_NO_DEV = b"0000000\x000000000\x00"
# Bytes 100-512 of a header as nearly every writer makes them: mode, uid, gid, size, mtime
# and checksum in canonical octal (the fields CANON reads, grouped as mode-uid-gid, size,
# mtime, checksum), any type and link name, USTAR magic (any version), any owner names,
# zero device numbers, no name prefix and no star trailer ("tar\0" at 508).
_PLAIN = re.compile(
    rb"([0-7]{7}[\x00 ][0-7]{7}[\x00 ][0-7]{7})[\x00 ]([0-7]{11})[\x00 ]([0-7]{11})[\x00 ]"
    rb"([0-7]{6})\x00 .{101}ustar\x00.{66}" + re.escape(_NO_DEV) + rb"\x00.{166}(?<!tar\x00)",
    re.DOTALL,
)  # fmt: skip
# Field bytes -> value, for the fields a layer repeats (owners and modes, mtimes, checksums):
# a lookup costs less than int(), and equal times share one int object. Bounded: cleared
# when full (a layer of distinct values just parses them).
_IDS: dict[bytes, tuple[int, int, int]] = {}
_MTIMES: dict[bytes, int] = {}
_SUMS: dict[bytes, tuple[int, int]] = {}  # checksum field -> (value, byte sum of the field)
_CACHE_MAX = 4096

REG, REGA, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO, CONT = (
    "0",
    "\x00",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
)
XHEADER, XGLOBAL, GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE = "x", "g", "L", "K", "S"
HEADER_ONLY = frozenset({LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO})
# member types whose header nothing before or after changes (no meta header, REGA or sparse)
_ORDINARY = frozenset({REG, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO, CONT})
SCHILY_XATTR = "SCHILY.xattr."


@dataclass(slots=True)
class TarHeader:
    """One entry as Go's ``tar.Reader.Next`` returns it (names decoded UTF-8/surrogateescape)."""

    name: str
    typeflag: str
    linkname: str = ""
    size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int | None = None
    ctime_ns: int | None = None
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    format: str = "ustar"
    pax: dict[str, str] = field(default_factory=dict)
    #: the ustar/v7 name before PAX/GNU overrides (to spot disagreements)
    header_name: str = ""
    gnu_long_name: bool = False
    nul_in_name: bool = False
    sparse: SparseMap | None = None
    #: offset of the first block belonging to this entry (meta headers included)
    offset: int = 0
    #: offset of the entry's data in the uncompressed stream
    data_offset: int = 0
    #: physical data bytes in the archive (differs from ``size`` for sparse files)
    physical_size: int = 0
    index: int = 0

    @property
    def xattrs(self) -> dict[str, str]:
        return {
            k[len(SCHILY_XATTR) :]: v for k, v in self.pax.items() if k.startswith(SCHILY_XATTR)
        }

    def is_dir(self) -> bool:
        return self.typeflag == DIR


def _plain_ustar(blk: bytes) -> TarHeader | None:
    """The header as the general path below would parse it, for the most common shape only
    (``_PLAIN``); None for anything else, a bad checksum included (the general path reports
    it). One regular expression checks the whole layout at once."""
    m = _PLAIN.fullmatch(blk, 100)
    if m is None:
        return None
    ids, size, mtime, chk = m.groups()
    c = _SUMS.get(chk)
    if c is None:
        if len(_SUMS) >= _CACHE_MAX:
            _SUMS.clear()
        c = _SUMS[chk] = (int(chk, 8), sum(chk) + 32)  # the field ends in NUL and space
    if blk.isascii():  # header_sums, inlined: both sums agree and Adler-32 cannot wrap
        if c[0] != (adler32(blk) & 0xFFFF) + 8 * 32 - 1 - c[1]:
            return None
    else:
        u, s = header_sums(blk)
        if c[0] != u and c[0] != s:
            return None
    owner = _IDS.get(ids)
    if owner is None:
        if len(_IDS) >= _CACHE_MAX:
            _IDS.clear()
        owner = _IDS[ids] = (int(ids[:7], 8), int(ids[8:15], 8), int(ids[16:], 8))
    mtime_ns = _MTIMES.get(mtime)
    if mtime_ns is None:
        if len(_MTIMES) >= _CACHE_MAX:
            _MTIMES.clear()
        mtime_ns = _MTIMES[mtime] = int(mtime, 8) * 1_000_000_000
    i = blk.find(0, 0, 100)
    name = (blk[:i] if i >= 0 else blk[:100]).decode("utf-8", "surrogateescape")
    hdr = TarHeader(
        name,
        chr(blk[156]),
        decode(cstr(blk[157:257])) if blk[157] else "",
        int(size, 8),
        owner[0],
        owner[1],
        owner[2],
        mtime_ns,
        header_name=name,
    )
    if blk[265]:
        hdr.uname = decode(cstr(blk[265:297]))
    if blk[297]:
        hdr.gname = decode(cstr(blk[297:329]))
    return hdr


class TarReader:
    """Iterate headers of a tar stream; read or skip each entry's data before the next."""

    def __init__(
        self,
        stream: Readable,
        limits: Limits,
        *,
        capture_raw: bool = False,
        what: str = "tar",
    ) -> None:
        self._r = stream
        self._buf = b""
        self._off = 0
        self._lim = limits
        self._what = what
        self._pos = 0
        self._remaining = 0  # physical data bytes of the current entry not yet consumed
        self._pad = 0
        self._sparse: SparseMap | None = None
        self._cur: TarHeader | None = None
        self.capture_raw = capture_raw
        self.raw: list[bytes] = []  # non-data bytes since the last data section
        # captured blocks in a row are one span of the read-ahead buffer, _buf[_cap:_off]
        # (-1: none), put in ``raw`` as one slice before anything else is read: so ``raw``
        # is complete once data was read (read_data, take_raw, finish), when callers look
        self._cap = -1
        self.entries = 0
        self.end: str = ""  # "markers", "eof", "eof-after-one-marker"
        self.trailing = 0
        self.trailing_nonzero = False
        self._done = False
        # a seekable stream (an outer archive being indexed) lets skipped data be seeked over
        self._base, self._end = -1, -1
        seekable = getattr(stream, "seekable", None)
        if seekable is not None and seekable():
            seek = stream.seek  # type: ignore[attr-defined]
            self._base = seek(0, 1)
            self._end = seek(0, 2)
            seek(self._base)

    # --- low-level I/O ---------------------------------------------------------------------
    def _flush_raw(self) -> None:
        self.raw.append(self._buf[self._cap : self._off])
        self._cap = -1

    def _read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at EOF), served from a 1 MiB read-ahead buffer."""
        if self._cap >= 0:
            self._flush_raw()
        buf, off = self._buf, self._off
        if len(buf) - off >= n:
            self._off = off + n
            self._pos += n
            return buf[off : off + n]
        parts = [buf[off:]] if off < len(buf) else []
        got = len(buf) - off
        self._buf, self._off = b"", 0
        while got < n:
            b = self._r.read(max(n - got, _READAHEAD))
            if not b:
                break
            if got + len(b) > n:
                keep = n - got
                parts.append(b[:keep])
                self._buf, self._off = b, keep
                got = n
                break
            parts.append(b)
            got += len(b)
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def _read_raw(self, n: int) -> bytes:
        data = self._read(n)
        if self.capture_raw:
            self.raw.append(data)
        return data

    def _block(self) -> bytes | None:
        """One header block; None at a clean EOF; Truncated for a partial block."""
        buf, off = self._buf, self._off
        if len(buf) - off >= BLOCK:  # the hot path of _read_raw, inlined
            self._off = off + BLOCK
            self._pos += BLOCK
            if self.capture_raw and self._cap < 0:
                self._cap = off
            return buf[off : off + BLOCK]
        b = self._read_raw(BLOCK)
        if not b:
            return None
        if len(b) < BLOCK:
            raise Truncated(f"{self._what}: archive ends inside a header (offset {self._pos})")
        return b

    def _skip_current(self) -> None:
        if not self._remaining and not self._pad:
            return
        ahead = len(self._buf) - self._off
        if self._remaining > ahead + _READAHEAD and self._base >= 0 and not self.capture_raw:
            # jump over the data instead of reading it; running past the end is still caught
            target = self._pos + self._remaining
            if self._base + target > self._end:
                raise Truncated(f"{self._what}: archive ends inside the data of an entry")
            self._r.seek(self._base + target)  # type: ignore[attr-defined]
            self._buf, self._off, self._pos, self._remaining = b"", 0, target, 0
        while self._remaining:
            n = min(self._remaining, 1 << 20)
            b = self._read(n)
            if self.capture_raw and self._cur is not None and self._cur.sparse is not None:
                self.raw.append(b)
            if len(b) < n:
                raise Truncated(f"{self._what}: archive ends inside the data of an entry")
            self._remaining -= n
        if self._pad:
            self._read_raw(self._pad)  # EOF inside padding is tolerated, as in Go
            self._pad = 0

    def _special_file(self, size: int, kind: str) -> bytes:
        """Data of a PAX or GNU long-name header (Go caps these at 1 MiB)."""
        if size < 0:
            raise BadHeader(f"{kind} header with a negative size")
        check(size, self._lim.max_pax_bytes, f"{self._what}: {kind} header size")
        data = self._read_raw(size)
        if len(data) < size:
            raise Truncated(f"{self._what}: archive ends inside a {kind} header")
        pad = -size % BLOCK
        if pad:
            self._read_raw(pad)
        return data

    # --- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[TarHeader]:
        while True:
            hdr = self.next()
            if hdr is None:
                return
            yield hdr

    def next(self) -> TarHeader | None:
        if self._done:
            return None
        if self._remaining or self._pad:
            self._skip_current()
        self._cur = None
        self._sparse = None
        buf, off = self._buf, self._off
        if len(buf) - off >= BLOCK:
            # the common case: a plain header of an ordinary member, already read ahead;
            # what the loop and _finish below do for it, without their general cases
            hdr = _plain_ustar(buf[off : off + BLOCK])
            if hdr is not None and hdr.typeflag in _ORDINARY:
                hdr.offset = start = self._pos
                self._off = off + BLOCK
                self._pos = pos = start + BLOCK
                if self.capture_raw and self._cap < 0:
                    self._cap = off
                n = self.entries = self.entries + 1
                if n > self._lim.max_entries:
                    check(n, self._lim.max_entries, f"{self._what}: entries")
                physical = 0 if hdr.typeflag in HEADER_ONLY else hdr.size
                hdr.physical_size = self._remaining = physical
                self._pad = -physical % BLOCK
                hdr.data_offset = pos
                hdr.index = n
                self._cur = hdr
                return hdr
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        nul_cut = False
        start = self._pos
        while True:
            blk = self._block()
            if blk is None:
                self.end = "eof"
                self._done = True
                return None
            if blk == ZERO_BLOCK:
                nxt = self._block()
                if nxt is None:
                    self.end = "eof-after-one-marker"
                    self._done = True
                    return None
                if nxt != ZERO_BLOCK:
                    raise BadHeader(f"{self._what}: a zero block followed by a header")
                self.end = "markers"
                self._done = True
                return None
            self.entries += 1
            if self.entries > self._lim.max_entries:
                check(self.entries, self._lim.max_entries, f"{self._what}: entries")
            hdr = self._parse_header(blk)
            hdr.offset = start
            tf = hdr.typeflag
            if tf in (XHEADER, XGLOBAL):
                records = parse_pax_records(self._special_file(hdr.size, "PAX"))
                if tf == XGLOBAL:
                    g = TarHeader(name=hdr.name, typeflag=XGLOBAL, pax=records, format="pax")
                    g.offset = start
                    g.data_offset = self._pos
                    g.index = self.entries
                    self._cur = g
                    return g
                pax = records  # a later 'x' replaces an earlier one, as in Go
                continue
            if tf in (GNU_LONGNAME, GNU_LONGLINK):
                raw = self._special_file(hdr.size, "GNU long name")
                value = decode(cstr(raw))
                if b"\x00" in raw.rstrip(b"\x00"):
                    nul_cut = True  # Go stops at the first NUL; other readers may not
                if tf == GNU_LONGNAME:
                    long_name = value
                else:
                    long_link = value
                continue
            out = self._finish(hdr, blk, pax, long_name, long_link)
            out.nul_in_name = nul_cut
            return out

    def _parse_header(self, blk: bytes) -> TarHeader:
        return _plain_ustar(blk) or self._parse_header_general(blk)

    def _parse_header_general(self, blk: bytes) -> TarHeader:
        fmt = block_format(blk)
        if fmt == "unknown":
            raise BadHeader(
                f"{self._what}: invalid tar header (checksum) at offset {self._pos - BLOCK}"
            )
        name_b = cstr(blk[0:100])
        try:
            m = CANON.fullmatch(blk, 100, 148)  # the usual zero-padded octal fields
            if m is not None:
                g = m.groups()
                mode, uid, gid = int(g[0], 8), int(g[1], 8), int(g[2], 8)
                size, mtime = int(g[3], 8), int(g[4], 8)
            else:
                mode, uid, gid = (
                    parse_numeric(blk[100:108]),
                    parse_numeric(blk[108:116]),
                    parse_numeric(blk[116:124]),
                )
                size, mtime = parse_numeric(blk[124:136]), parse_numeric(blk[136:148])
            hdr = TarHeader(
                name="",
                typeflag=chr(blk[156]),
                # (an empty field, the common case, needs no slicing and decoding)
                linkname=decode(cstr(blk[157:257])) if blk[157] else "",
                size=size,
                mode=mode,
                uid=uid,
                gid=gid,
                mtime_ns=mtime * 1_000_000_000,
                format=fmt,
            )
            if fmt != "v7":
                if blk[265]:
                    hdr.uname = decode(cstr(blk[265:297]))
                if blk[297]:
                    hdr.gname = decode(cstr(blk[297:329]))
                if blk.startswith(_NO_DEV, 329):
                    pass  # devmajor and devminor written as zeros (the common case)
                elif (d := CANON_DEV.fullmatch(blk, 329, 345)) is not None:
                    hdr.devmajor, hdr.devminor = int(d.group(1), 8), int(d.group(2), 8)
                else:
                    hdr.devmajor, hdr.devminor = (
                        parse_numeric(blk[329:337]),
                        parse_numeric(blk[337:345]),
                    )
                prefix = b""
                if fmt == "ustar":
                    if blk[345]:
                        prefix = cstr(blk[345:500])
                elif fmt == "star":
                    prefix = cstr(blk[345:476])
                    hdr.atime_ns = parse_numeric(blk[476:488]) * 1_000_000_000
                    hdr.ctime_ns = parse_numeric(blk[488:500]) * 1_000_000_000
                else:  # gnu
                    p2 = NumParser()
                    if blk[345]:
                        hdr.atime_ns = p2.numeric(blk[345:357]) * 1_000_000_000
                    if blk[357]:
                        hdr.ctime_ns = p2.numeric(blk[357:369]) * 1_000_000_000
                    if p2.err:  # pre-Go1.8 writers put a USTAR prefix here
                        hdr.atime_ns = hdr.ctime_ns = None
                        pre = cstr(blk[345:500])
                        if pre.isascii():
                            prefix = pre
                        hdr.format = "unknown"
                if prefix:
                    name_b = prefix + b"/" + name_b
        except ValueError:
            raise BadHeader(
                f"{self._what}: invalid number in tar header at offset {self._pos - BLOCK}"
            ) from None
        hdr.name = decode(name_b)
        hdr.header_name = hdr.name
        return hdr

    def _finish(
        self,
        hdr: TarHeader,
        blk: bytes,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> TarHeader:
        if pax:
            merge_pax(hdr, pax, self._what)
        if long_name:
            hdr.name = long_name
            hdr.gnu_long_name = True
        if long_link:
            hdr.linkname = long_link
        if hdr.typeflag == REGA:
            hdr.typeflag = DIR if hdr.name.endswith("/") else REG
        if hdr.size < 0:
            raise BadHeader(f"{self._what}: negative size for {hdr.name!r}")
        physical = 0 if hdr.typeflag in HEADER_ONLY else hdr.size
        sparse: SparseMap | None = None
        if hdr.typeflag == GNU_SPARSE:
            sparse, realsize, extended = parse_old_gnu(blk, self._lim)
            while extended:
                ext = self._read_raw(BLOCK)
                if len(ext) < BLOCK:
                    raise Truncated(f"{self._what}: archive ends inside a sparse header")
                extended = sparse.add_extension(ext, self._lim)
            hdr.size = realsize
        elif pax:  # sparse formats 0.x and 1.0 are announced by PAX records
            kind = parse_pax_sparse(hdr, pax)
            if kind == "1.0":
                check(physical, self._lim.max_layer_bytes, f"{self._what}: sparse data")
                sparse, used = read_map_1x0(self, physical, self._lim)
                physical -= used
            elif kind in ("0.0", "0.1"):
                sparse = SparseMap.from_pax_0x(pax, self._lim)
        if sparse is not None:
            if hdr.typeflag in HEADER_ONLY or not sparse.valid_for(hdr.size):
                raise BadHeader(f"{self._what}: invalid sparse map for {hdr.name!r}")
            if sparse.data_bytes() != physical:
                raise BadHeader(f"{self._what}: sparse map does not match the data of {hdr.name!r}")
            hdr.sparse = sparse
            if hdr.typeflag == GNU_SPARSE:
                hdr.typeflag = REG
        hdr.physical_size = physical
        hdr.data_offset = self._pos
        hdr.index = self.entries
        self._remaining = physical
        self._pad = -physical % BLOCK
        self._cur = hdr
        return hdr

    # --- data ---------------------------------------------------------------------------------
    def read_data(self, max_bytes: int | None = None) -> bytes:
        """The logical content of the current entry (sparse holes filled with zeros)."""
        hdr = self._cur
        if hdr is None:
            return b""
        if max_bytes is not None:
            check(hdr.size, max_bytes, f"{self._what}: size of {hdr.name!r}")
        n = self._remaining
        check(n, self._lim.max_layer_bytes, f"{self._what}: size of {hdr.name!r}")
        if self._cap >= 0:
            self._flush_raw()
        buf, off = self._buf, self._off
        if len(buf) - off >= n and hdr.sparse is None:  # the hot path of _read, inlined
            self._off = off + n
            self._pos += n
            self._remaining = 0
            return buf[off : off + n]
        data = self._read(n)
        if len(data) < n:
            raise Truncated(f"{self._what}: archive ends inside the data of {hdr.name!r}")
        if self.capture_raw and hdr.sparse is not None:
            self.raw.append(data)
        self._remaining = 0
        if hdr.sparse is not None:
            check(hdr.size, self._lim.max_layer_bytes, f"{self._what}: sparse file {hdr.name!r}")
            return hdr.sparse.expand(data, hdr.size)
        return data

    def take_raw(self) -> bytes:
        """The captured non-data bytes since the last call (headers, padding, markers)."""
        if self._cap >= 0:
            self._flush_raw()
        raw = self.raw
        if not raw:
            return b""
        data = raw[0] if len(raw) == 1 else b"".join(raw)
        raw.clear()  # the same list object throughout: a caller may hold on to it
        return data

    def finish(self) -> None:
        """Consume everything after the end of the archive, counting trailing bytes."""
        if not self._done:
            while self.next() is not None:
                pass
        while True:
            b = self._read(1 << 20)
            if not b:
                return
            if self.capture_raw:
                self.raw.append(b)
            self.trailing += len(b)
            if b.count(0) != len(b):
                self.trailing_nonzero = True

    @property
    def position(self) -> int:
        return self._pos

    def read_physical(self, n: int) -> bytes:
        """For the sparse 1.0 map reader: n bytes of the current entry's data section."""
        data = self._read(n)
        if self.capture_raw:
            self.raw.append(data)
        if len(data) < n:
            raise Truncated(f"{self._what}: archive ends inside a sparse map")
        return data


__all__ = [
    "BLOCK",
    "BadHeader",
    "LimitExceeded",
    "TarHeader",
    "TarReader",
    "block_format",
    "parse_pax_records",
]
