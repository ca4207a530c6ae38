"""Tar header fields as Go's archive/tar parses them: numbers, checksums, PAX records.

Split from the reader so each rule (octal with NUL/space trimming, base-256, signed and
unsigned checksums, PAX record syntax, an empty PAX value keeping the header's field) sits
next to its neighbours and can be tested alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from zlib import adler32

from overlaysim.image.errors import BadHeader

if TYPE_CHECKING:
    from overlaysim.image.tar_reader import TarHeader

BLOCK = 512


def decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def cstr(b: bytes) -> bytes:
    """Go's parseString: up to the first NUL."""
    i = b.find(b"\x00")
    return b if i < 0 else b[:i]


_DIGITS = b"01234567"
# fast path: fields written the common way parse identically with Go's rules
CANON = re.compile(
    rb"([0-7]{7})[\x00 ]([0-7]{7})[\x00 ]([0-7]{7})[\x00 ]([0-7]{11})[\x00 ]([0-7]{11})[\x00 ]"
)
CANON_DEV = re.compile(rb"([0-7]{7})[\x00 ]([0-7]{7})[\x00 ]")
CANON_SUM = re.compile(rb"([0-7]{6})\x00 ")


def parse_numeric(b: bytes) -> int:
    """Go's parseNumeric (base-256 or octal); raises ValueError where Go sets ErrHeader."""
    if b[0] & 0x80:
        inv = 0xFF if b[0] & 0x40 else 0
        x = (b[0] ^ inv) & 0x7F
        for c in b[1:]:
            if x >> 56:
                raise ValueError("base-256 overflow")
            x = (x << 8) | (c ^ inv)
        if x >> 63:
            raise ValueError("base-256 overflow")
        return ~x if inv else x
    s = b.strip(b" \x00")  # Go trims NULs and spaces on both sides, then stops at a NUL
    if not s:
        return 0
    i = s.find(0)
    if i >= 0:
        s = s[:i]
    if s.translate(None, _DIGITS):  # int() would also accept '_', '0o' and signs
        raise ValueError("not octal")
    v = int(s, 8)
    if v >= 1 << 64:
        raise ValueError("octal overflow")
    return v if v < 1 << 63 else v - (1 << 64)


class NumParser:
    """Numeric field parsing with Go's sticky error (for the sparse-map fields)."""

    def __init__(self) -> None:
        self.err = False

    def numeric(self, b: bytes) -> int:
        try:
            return parse_numeric(b)
        except ValueError:
            self.err = True
            return 0

    def octal(self, b: bytes) -> int:
        """Go's parseOctal: no base-256 form (used for the checksum field)."""
        if b and b[0] & 0x80:
            self.err = True
            return 0
        return self.numeric(b)


_HIGH = bytes(range(0x80, 0x100))


def header_sums(blk: bytes) -> tuple[int, int]:
    """Unsigned and signed (int8) sums with the checksum field read as spaces.

    The byte sum comes from Adler-32 (computed in C; ``sum`` boxes 512 ints, ~2.6 µs a
    header): its low half is 1 + the byte sum mod 65521, which is the sum itself while that
    stays below 65521: always for ASCII blocks (at most 512 * 127), else per 256-byte half.
    """
    field = blk[148:156]
    if len(blk) != BLOCK:
        total = sum(blk)
    elif blk.isascii():  # no byte above 0x7f: both sums agree
        u = (adler32(blk) & 0xFFFF) - 1 - sum(field) + 8 * 32
        return u, u
    else:
        total = (adler32(blk[:256]) & 0xFFFF) + (adler32(blk[256:]) & 0xFFFF) - 2
    unsigned = total - sum(field) + 8 * 32
    high = BLOCK - len(blk.translate(None, _HIGH)) - (8 - len(field.translate(None, _HIGH)))
    return unsigned, unsigned - 256 * high


def block_format(blk: bytes) -> str:
    """Go's getFormat: "unknown" when the checksum fails, else star/ustar/gnu/v7."""
    m = CANON_SUM.fullmatch(blk, 148, 156)
    if m is not None:
        value = int(m.group(1), 8)
    else:
        p = NumParser()
        value = p.octal(blk[148:156])
        if p.err:
            return "unknown"
    u, s = header_sums(blk)
    if value != u and value != s:
        return "unknown"
    if blk.startswith(b"ustar\x00", 257):
        return "star" if blk.startswith(b"tar\x00", 508) else "ustar"
    if blk.startswith(b"ustar  \x00", 257):
        return "gnu"
    return "v7"


def parse_pax_records(data: bytes) -> dict[str, str]:
    """Records ``"%d %s=%s\\n"``; GNU sparse 0.0 offset/numbytes pairs join into GNU.sparse.map."""
    out: dict[str, str] = {}
    sparse: list[str] = []
    s = data
    while s:
        sp = s.find(b" ")
        if sp < 0:
            raise BadHeader("PAX record without a length")
        try:
            n = go_parse_int(s[:sp])
        except ValueError:
            raise BadHeader("PAX record length is not a number") from None
        if n < 5 or n > len(s) or n - (sp + 1) <= 0:
            raise BadHeader("PAX record length out of range")
        rec, nl, s = s[sp + 1 : n - 1], s[n - 1 : n], s[n:]
        if nl != b"\n":
            raise BadHeader("PAX record not terminated by a newline")
        eq = rec.find(b"=")
        if eq < 0:
            raise BadHeader("PAX record without '='")
        k, v = decode(rec[:eq]), decode(rec[eq + 1 :])
        if not _valid_pax_record(k, v):
            raise BadHeader(f"invalid PAX record {k!r}")
        if k in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
            want = "GNU.sparse.offset" if len(sparse) % 2 == 0 else "GNU.sparse.numbytes"
            if k != want or "," in v:
                raise BadHeader("GNU sparse 0.0 records out of order")
            sparse.append(v)
        else:
            out[k] = v
    if sparse:
        out["GNU.sparse.map"] = ",".join(sparse)
    return out


def _valid_pax_record(k: str, v: str) -> bool:
    if not k or "=" in k:
        return False
    if k in ("path", "linkpath", "uname", "gname"):
        return "\x00" not in v
    return "\x00" not in k


def go_parse_int(b: bytes | str) -> int:
    """strconv.ParseInt(s, 10, 64): optional sign, decimal digits only, 64-bit range."""
    s = b.decode("ascii", "replace") if isinstance(b, bytes) else b
    body = s[1:] if s[:1] in "+-" else s
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(s)
    v = int(s)
    if not -(1 << 63) <= v < (1 << 63):
        raise ValueError(s)
    return v


def parse_pax_time(v: str) -> int:
    """PAX time "secs[.frac]" to nanoseconds, truncating beyond 9 digits as Go does."""
    ss, dot, sn = v.partition(".")
    secs = go_parse_int(ss)
    if not dot or not sn:
        return secs * 1_000_000_000
    if not sn.isascii() or not sn.isdigit():
        raise ValueError(v)
    nsec = int((sn + "000000000")[:9])
    if ss.startswith("-"):
        return secs * 1_000_000_000 - nsec
    return secs * 1_000_000_000 + nsec


def merge_pax(hdr: TarHeader, pax: dict[str, str], what: str) -> None:
    try:
        for k, v in pax.items():
            if v == "":
                continue  # keep the USTAR value, as Go does
            if k == "path":
                hdr.name = v
            elif k == "linkpath":
                hdr.linkname = v
            elif k == "uname":
                hdr.uname = v
            elif k == "gname":
                hdr.gname = v
            elif k == "uid":
                hdr.uid = go_parse_int(v)
            elif k == "gid":
                hdr.gid = go_parse_int(v)
            elif k == "atime":
                hdr.atime_ns = parse_pax_time(v)
            elif k == "mtime":
                hdr.mtime_ns = parse_pax_time(v)
            elif k == "ctime":
                hdr.ctime_ns = parse_pax_time(v)
            elif k == "size":
                hdr.size = go_parse_int(v)
    except ValueError:
        raise BadHeader(f"{what}: invalid number in a PAX record of {hdr.name!r}") from None
    hdr.pax = pax
    if pax:
        hdr.format = "pax"
