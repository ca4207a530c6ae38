"""Build tar archives byte by byte, including ones no honest tool would write."""

from __future__ import annotations

import gzip
import io
import tarfile

BLOCK = 512


def _b(v: bytes | str) -> bytes:
    return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v


def octal(n: int, size: int) -> bytes:
    s = format(n, "o").encode()
    return (b"0" * (size - 1 - len(s)) + s + b"\x00")[-size:] if len(s) < size else s[:size]


def header(
    name: bytes | str,
    *,
    typeflag: bytes = b"0",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 1_600_000_000,
    linkname: bytes | str = b"",
    uname: bytes = b"",
    gname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
    prefix: bytes = b"",
    magic: bytes = b"ustar\x0000",
    chksum: int | None = None,
    patch: dict[int, bytes] | None = None,
) -> bytes:
    blk = bytearray(BLOCK)
    blk[0:100] = _b(name)[:100].ljust(100, b"\x00")
    blk[100:108] = octal(mode, 8)
    blk[108:116] = octal(uid, 8)
    blk[116:124] = octal(gid, 8)
    blk[124:136] = octal(size, 12)
    blk[136:148] = octal(mtime, 12)
    blk[156:157] = typeflag
    blk[157:257] = _b(linkname)[:100].ljust(100, b"\x00")
    blk[257:265] = magic
    blk[265:297] = uname.ljust(32, b"\x00")
    blk[297:329] = gname.ljust(32, b"\x00")
    blk[329:337] = octal(devmajor, 8)
    blk[337:345] = octal(devminor, 8)
    blk[345:500] = prefix.ljust(155, b"\x00")
    for off, val in (patch or {}).items():
        blk[off : off + len(val)] = val
    blk[148:156] = b" " * 8
    s = sum(blk) if chksum is None else chksum
    blk[148:156] = octal(s, 7) + b" "
    return bytes(blk)


def pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % BLOCK)


def member(name: bytes | str, data: bytes = b"", **kw: object) -> bytes:
    kw.setdefault("size", len(data))
    return header(name, **kw) + pad(data)  # type: ignore[arg-type]


def dir_(name: str, mode: int = 0o755, **kw: object) -> bytes:
    return header(name, typeflag=b"5", mode=mode, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str, **kw: object) -> bytes:
    return header(name, typeflag=b"2", linkname=target, mode=0o777, **kw)  # type: ignore[arg-type]


def hardlink(name: str, target: str, **kw: object) -> bytes:
    return header(name, typeflag=b"1", linkname=target, **kw)  # type: ignore[arg-type]


def pax_record(k: str | bytes, v: str | bytes) -> bytes:
    body = b" " + _b(k) + b"=" + _b(v) + b"\n"
    n = len(body) + len(str(len(body)))
    if len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def pax(
    records: dict[str, str | bytes] | bytes, typeflag: bytes = b"x", name: str = "PaxHeaders.0/x"
) -> bytes:
    data = (
        records
        if isinstance(records, bytes)
        else b"".join(pax_record(k, v) for k, v in records.items())
    )
    return header(name, typeflag=typeflag, size=len(data), mode=0) + pad(data)


def gnu_long(value: bytes | str, typeflag: bytes = b"L") -> bytes:
    data = _b(value) + b"\x00"
    return header("././@LongLink", typeflag=typeflag, size=len(data), magic=b"ustar  \x00") + pad(
        data
    )


def end() -> bytes:
    return b"\x00" * (2 * BLOCK)


def tar(*members: bytes, eof: bool = True) -> bytes:
    return b"".join(members) + (end() if eof else b"")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def pytar(entries: list[tuple[str, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar written by Python's tarfile: (name, data) or (name/, None) for directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
