"""A tar writer that produces the bytes Go's ``archive/tar`` Writer produces for Docker.

Docker asks for "PAX" but Go still writes a plain USTAR header whenever every field fits
(splitting long ASCII names into prefix/name); only names that cannot be split, non-ASCII
strings, big ids/sizes, sub-second or negative times and explicit records (xattrs) cause a
``PaxHeaders.0`` extended header, whose records are sorted by key. The archive ends with
exactly two zero blocks, without padding to a 10 KiB record. Getting these details right is
what makes an exported layer hash to the same diff_id as Docker's.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Protocol
from zlib import adler32

BLOCK = 512
NAME_SIZE, PREFIX_SIZE = 100, 155
BASIC_PAX = frozenset(
    {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime"}
)

# Go's c_IS* type bits, which Docker <= 22 (fillGo18FileTypeBits) added to the mode field.
C_ISDIR, C_ISFIFO, C_ISREG, C_ISLNK, C_ISBLK, C_ISCHR = (
    0o40000,
    0o10000,
    0o100000,
    0o120000,
    0o60000,
    0o20000,
)


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass
class Header:
    """What Docker puts in ``tar.Header`` before ``WriteHeader`` (see go-archive FileInfoHeader)."""

    name: str
    typeflag: str = "0"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int | None = 0  # None: Go's zero time.Time (written as 0, never as a PAX record)
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)
    #: Go's FormatPAX requested (Docker) vs FormatUnknown (mtime rounded to the second)
    want_pax: bool = True


def _fits_octal(n: int, x: int) -> bool:
    return x >= 0 and (n >= 22 or x < 1 << ((n - 1) * 3))


def _fmt_octal(n: int, x: int) -> bytes:
    if not _fits_octal(n, x):
        x = 0
    s = format(x, "o")
    pad = n - len(s) - 1
    if pad > 0:
        s = "0" * pad + s
    return _fmt_str(n, s.encode())


def _fmt_str(n: int, b: bytes) -> bytes:
    b = b[:n]
    return b + b"\x00" * (n - len(b))


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _to_ascii(b: bytes) -> bytes:
    return bytes(c for c in b if c < 0x80)


def split_ustar_path(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's splitUSTARPath: (prefix, suffix) for long ASCII names, else None."""
    length = len(name)
    if length <= NAME_SIZE or not name.isascii():
        return None
    if length > PREFIX_SIZE + 1:
        length = PREFIX_SIZE + 1
    elif name[length - 1 : length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    nlen = len(name) - i - 1
    if i <= 0 or nlen > NAME_SIZE or nlen == 0 or i > PREFIX_SIZE:
        return None
    return name[:i], name[i + 1 :]


def pax_record(k: str, v: str) -> bytes:
    """One ``"%d %s=%s\\n"`` record whose length counts its own digits."""
    body = b" " + _enc(k) + b"=" + _enc(v) + b"\n"
    size = len(body) + len(str(len(body)))
    rec = str(size).encode() + body
    if len(rec) != size:
        size = len(rec)
        rec = str(size).encode() + body
    return rec


def pax_time(ns: int) -> str:
    secs, nsec = divmod(ns, 1_000_000_000)
    if nsec == 0:
        return str(secs)
    if secs < 0:
        secs, nsec = -(secs + 1), 1_000_000_000 - nsec
        return f"-{secs}.{nsec:09d}".rstrip("0")
    return f"{secs}.{nsec:09d}".rstrip("0")


def _checksum_into(blk: bytearray) -> None:
    blk[148:156] = b" " * 8
    s = sum(blk)
    blk[148:156] = _fmt_octal(7, s) + b" "


def _template(
    h: Header, name: bytes, link: bytes, uname: bytes, gname: bytes, mtime: int
) -> bytearray:
    blk = bytearray(BLOCK)
    blk[156] = ord(h.typeflag)
    blk[0:100] = _fmt_str(100, name)
    blk[157:257] = _fmt_str(100, link)
    blk[100:108] = _fmt_octal(8, h.mode)
    blk[108:116] = _fmt_octal(8, h.uid)
    blk[116:124] = _fmt_octal(8, h.gid)
    blk[124:136] = _fmt_octal(12, h.size)
    blk[136:148] = _fmt_octal(12, mtime)
    blk[265:297] = _fmt_str(32, uname)
    blk[297:329] = _fmt_str(32, gname)
    blk[329:337] = _fmt_octal(8, h.devmajor)
    blk[337:345] = _fmt_octal(8, h.devminor)
    blk[257:263] = b"ustar\x00"
    blk[263:265] = b"00"
    return blk


# Header blocks split in three: the name (bytes 0-100), the numbers (100-148) and the rest
# (156-512); the last two repeat across the entries of a tree, so they are made once each
# with their byte sums, and a plain header costs a join and a checksum of its name only.
_NUMBERS: dict[tuple[int, int, int, int, int], tuple[bytes, int]] = {}
_TAILS: dict[tuple[str, str, str, str, int, int], tuple[bytes, int]] = {}
_CACHE_MAX = 4096
_OCTAL7, _OCTAL11 = 1 << 21, 1 << 33  # the largest values + 1 of 7 and 11 octal digits


def _plain_header(h: Header) -> bytes | None:
    """The single USTAR block ``encode_header`` makes of the most common header (short ASCII
    strings, numbers that fit, whole-second mtime, no PAX record); None for anything else."""
    mtime_ns = h.mtime_ns
    if h.pax or mtime_ns is None or mtime_ns % 1_000_000_000:
        return None
    name = h.name
    if len(name) > NAME_SIZE or not name.isascii():
        return None
    mtime = mtime_ns // 1_000_000_000
    key = (h.mode, h.uid, h.gid, h.size, mtime)
    numbers = _NUMBERS.get(key)
    if numbers is None:
        if not (
            0 <= h.mode < _OCTAL7
            and 0 <= h.uid < _OCTAL7
            and 0 <= h.gid < _OCTAL7
            and 0 <= h.size < _OCTAL11
            and 0 <= mtime < _OCTAL11
        ):
            return None
        blk = b"%07o\x00%07o\x00%07o\x00%011o\x00%011o\x00" % key
        if len(_NUMBERS) >= _CACHE_MAX:
            _NUMBERS.clear()
        numbers = _NUMBERS[key] = (blk, sum(blk))
    tkey = (h.typeflag, h.linkname, h.uname, h.gname, h.devmajor, h.devminor)
    tail = _TAILS.get(tkey)
    if tail is None:
        tail = _plain_tail(h)
        if tail is None:
            return None
        if len(_TAILS) >= _CACHE_MAX:
            _TAILS.clear()
        _TAILS[tkey] = tail
    nb = name.encode()
    # the byte sum of an ASCII name of at most 100 bytes is below 65521: Adler-32's low half
    chk = (adler32(nb) & 0xFFFF) - 1 + numbers[1] + tail[1] + 8 * 32
    return b"".join((nb, bytes(NAME_SIZE - len(nb)), numbers[0], b"%06o\x00 " % chk, tail[0]))


def _plain_tail(h: Header) -> tuple[bytes, int] | None:
    link, uname, gname = h.linkname, h.uname, h.gname
    if not (
        len(h.typeflag) == 1
        and h.typeflag.isascii()
        and len(link) <= NAME_SIZE
        and link.isascii()
        and len(uname) <= 32
        and uname.isascii()
        and len(gname) <= 32
        and gname.isascii()
        and 0 <= h.devmajor < _OCTAL7
        and 0 <= h.devminor < _OCTAL7
    ):
        return None
    blk = b"".join((
        h.typeflag.encode(), _fmt_str(100, link.encode()), b"ustar\x0000",
        _fmt_str(32, uname.encode()), _fmt_str(32, gname.encode()),
        _fmt_octal(8, h.devmajor), _fmt_octal(8, h.devminor), bytes(BLOCK - 345),
    ))  # fmt: skip
    return blk, sum(blk)


def encode_header(h: Header) -> bytes:
    """The header block(s) Go writes for ``h`` (a PAX extended header first when needed)."""
    plain = _plain_header(h)
    if plain is not None:
        return plain
    return encode_header_general(h)


def encode_header_general(h: Header) -> bytes:
    """``encode_header`` without the shortcut for plain headers (tests hold them to one answer)."""
    name, link, uname, gname = _enc(h.name), _enc(h.linkname), _enc(h.uname), _enc(h.gname)
    if h.mtime_ns is None:
        mtime_ns: int | None = None
    elif not h.want_pax:
        mtime_ns = (h.mtime_ns + 500_000_000) // 1_000_000_000 * 1_000_000_000
    else:
        mtime_ns = h.mtime_ns
    paxh: dict[str, str] = {}
    ustar_ok = True
    prefer_pax = False
    split = None

    def string_field(b: bytes, size: int, key: str) -> None:
        nonlocal ustar_ok, split
        if not b.isascii() or len(b) > size:
            if key == "path":
                split = split_ustar_path(b)
            if key != "path" or split is None:
                ustar_ok = False
            paxh[key] = b.decode("utf-8", "surrogateescape")

    string_field(name, NAME_SIZE, "path")
    string_field(link, NAME_SIZE, "linkpath")
    string_field(uname, 32, "uname")
    string_field(gname, 32, "gname")
    for key, value, size in (("uid", h.uid, 8), ("gid", h.gid, 8), ("size", h.size, 12)):
        if not _fits_octal(size, value):
            ustar_ok = False
            paxh[key] = str(value)
    if mtime_ns is not None:
        secs, nsec = divmod(mtime_ns, 1_000_000_000)
        fits = _fits_octal(12, secs)
        if not fits:
            ustar_ok = False
        if not fits or nsec:
            prefer_pax = True
            paxh["mtime"] = pax_time(mtime_ns)
    if h.pax:
        for k, v in h.pax.items():
            if k in paxh:
                continue
            if k not in BASIC_PAX and not k.startswith("GNU.sparse"):
                paxh[k] = v
        ustar_ok = False
    if h.want_pax and prefer_pax:
        ustar_ok = False
    mtime = 0 if mtime_ns is None else mtime_ns // 1_000_000_000
    if ustar_ok:
        prefix = b""
        if split is not None:
            prefix, name = split
        blk = _template(h, name, link, uname, gname, mtime)
        blk[345:500] = _fmt_str(155, prefix)
        _checksum_into(blk)
        return bytes(blk)
    out = b""
    if paxh:
        data = b"".join(pax_record(k, paxh[k]) for k in sorted(paxh, key=_enc))
        d, f = posixpath.split(h.name)
        xname = _to_ascii(_enc(posixpath.join(d, "PaxHeaders.0", f)))[:NAME_SIZE].rstrip(b"/")
        x = bytearray(BLOCK)
        x[0:100] = _fmt_str(100, xname)
        x[100:108] = _fmt_octal(8, 0)
        x[108:116] = _fmt_octal(8, 0)
        x[116:124] = _fmt_octal(8, 0)
        x[124:136] = _fmt_octal(12, len(data))
        x[136:148] = _fmt_octal(12, 0)
        x[156] = ord("x")
        x[257:263] = b"ustar\x00"
        x[263:265] = b"00"
        _checksum_into(x)
        out = bytes(x) + data + b"\x00" * (-len(data) % BLOCK)
    blk = _template(h, _to_ascii(name), _to_ascii(link), _to_ascii(uname), _to_ascii(gname), mtime)
    _checksum_into(blk)
    return out + bytes(blk)


class TarWriter:
    """Sequential writer: ``add(header, data)`` then ``close()`` (two zero blocks)."""

    def __init__(self, out: Writable) -> None:
        self._out = out
        self.bytes_written = 0

    def _w(self, b: bytes) -> None:
        self._out.write(b)
        self.bytes_written += len(b)

    def add(self, h: Header, data: bytes = b"") -> None:
        self._w(encode_header(h))
        if h.typeflag in ("1", "2", "3", "4", "5", "6"):
            return
        if len(data) != h.size:
            raise ValueError(f"tar entry {h.name!r}: {len(data)} data bytes for size {h.size}")
        if data:
            self._w(data)
            pad = -len(data) % BLOCK
            if pad:
                self._w(b"\x00" * pad)

    def add_raw(self, raw: bytes) -> None:
        self._w(raw)

    def close(self) -> None:
        self._w(b"\x00" * (2 * BLOCK))
