"""Streaming decompression (gzip, zstd, bzip2, xz, none) with bomb limits.

Docker's loader sniffs magic bytes rather than trusting media types, so we do the same and let
the caller compare the result with the declared type. Every decoder is driven with a bounded
output size per call, so a 1 KiB zstd frame that claims 10 GiB costs at most one read buffer
before the byte or ratio limit stops it.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import zlib
from typing import Any, BinaryIO, Literal, Protocol, cast

import zstandard

from overlaysim.errors import ImageError, LimitExceeded, Truncated
from overlaysim.image.errors import CorruptData
from overlaysim.image.limits import Limits

Kind = Literal["none", "gzip", "zstd", "bzip2", "xz"]

_GZIP = b"\x1f\x8b\x08"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def sniff(head: bytes) -> Kind:
    """The compression of a stream from its first bytes, as Docker's DecompressStream decides."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    if len(head) >= 4 and int.from_bytes(head[:4], "little") & 0xFFFFFFF0 == 0x184D2A50:
        return "zstd"  # a skippable frame starts the stream
    if head.startswith(_BZIP2):
        return "bzip2"
    if head.startswith(_XZ):
        return "xz"
    return "none"


class HashingReader:
    """Reads a raw blob, hashing and counting every byte, with a peek buffer."""

    def __init__(self, raw: Readable, max_bytes: int | None = None, what: str = "blob") -> None:
        self._raw = raw
        self._buf = b""
        self._boff = 0  # bytes of _buf already consumed
        self.sha256 = hashlib.sha256()
        self.count = 0
        self._max = max_bytes
        self._what = what

    def peek(self, n: int) -> bytes:
        # read a whole chunk: later reads then stay aligned with the source's own buffer
        # (a 6-byte read would make every following chunk straddle two of its buffers)
        while len(self._buf) - self._boff < n:
            more = self._raw.read(max(n, CHUNK))
            if not more:
                break
            self._buf = self._buf[self._boff :] + more if self._buf else more
            self._boff = 0
        return self._buf[self._boff : self._boff + n]

    def read(self, n: int = -1, /) -> bytes:
        buf, off = self._buf, self._boff
        if off < len(buf):
            if n < 0 or n >= len(buf) - off:
                data = buf[off:] if off else buf
                self._buf, self._boff = b"", 0
                if n < 0:
                    data += self._raw.read()
            else:
                data = buf[off : off + n]
                self._boff = off + n
        else:
            data = self._raw.read(n)
        self.count += len(data)
        if self._max is not None and self.count > self._max:
            raise LimitExceeded(f"{self._what}: more than {self._max} bytes")
        self.sha256.update(data)
        return data

    def drain(self) -> int:
        """Read to the end (so the digest covers everything); returns the bytes drained."""
        n = 0
        while True:
            data = self.read(CHUNK)
            if not data:
                return n
            n += len(data)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class Decompressor:
    """A file-like ``read(n)`` over a compressed stream, enforcing byte and ratio limits."""

    def __init__(
        self,
        raw: HashingReader,
        kind: Kind,
        limits: Limits,
        max_bytes: int,
        what: str = "layer",
    ) -> None:
        self.kind = kind
        self._raw = raw
        self._limits = limits
        self._max = max_bytes
        self._what = what
        self.out_count = 0
        self._eof = False
        self._pending = b""
        self._zr: zstandard.ZstdDecompressionReader | None = None
        self._obj: Any = None
        if kind == "zstd":
            dctx = zstandard.ZstdDecompressor(max_window_size=limits.max_zstd_window)
            self._zr = dctx.stream_reader(cast(Any, raw), read_size=CHUNK, read_across_frames=True)
        elif kind != "none":
            self._obj = self._new_obj()

    def _new_obj(self) -> object:
        if self.kind == "gzip":
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def _account(self, data: bytes) -> bytes:
        self.out_count += len(data)
        if self.out_count > self._max:
            raise LimitExceeded(
                f"{self._what}: decompressed size exceeds the limit of {self._max} bytes"
            )
        lim = self._limits
        if (
            lim.max_ratio
            and self.kind != "none"
            and self.out_count > lim.ratio_grace_bytes
            and self.out_count > lim.max_ratio * max(self._raw.count, 1)
        ):
            raise LimitExceeded(
                f"{self._what}: compression ratio above {lim.max_ratio}:1 (a decompression bomb?)"
            )
        return data

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            parts: list[bytes] = []
            while True:
                part = self.read(CHUNK)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        if n == 0 or self._eof:
            return b""
        n = min(n, CHUNK)  # bounded output per call: a bomb costs one buffer, not its size
        if self.kind == "none":
            return self._account(self._raw.read(n))
        if self._zr is not None:
            try:
                data = self._zr.read(n)
            except zstandard.ZstdError as exc:
                raise _zstd_error(exc, self._what) from None
            if not data:
                self._eof = True
            return self._account(data)
        return self._account(self._read_stdlib(n))

    def _read_stdlib(self, n: int) -> bytes:
        while True:
            obj = self._obj
            if _at_member_end(obj):
                rest = getattr(obj, "unused_data", b"") + self._pending
                self._pending = b""
                if not rest:
                    rest = self._raw.read(CHUNK)
                if not rest:
                    self._eof = True
                    return b""
                if len(rest) < 6:
                    rest += self._raw.read(6 - len(rest))
                if sniff(rest) != self.kind:
                    # Go's readers are multistream: what follows must be another member
                    raise CorruptData(
                        f"{self._what}: garbage after the end of the {self.kind} stream"
                    )
                self._obj = self._new_obj()
                self._pending = rest
                continue
            if self._pending:
                src, self._pending = self._pending, b""
            elif _has_buffered(obj):
                src = b""
            else:
                src = self._raw.read(CHUNK)
                if not src:
                    raise Truncated(f"{self._what}: {self.kind} stream ends early")
            try:
                data = _feed(obj, src, n)
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
                raise CorruptData(f"{self._what}: corrupt {self.kind} data ({exc})") from None
            if data:
                return data


def _feed(obj: Any, src: bytes, n: int) -> bytes:
    if isinstance(obj, bz2.BZ2Decompressor | lzma.LZMADecompressor):
        return obj.decompress(src, n)
    tail: bytes = obj.unconsumed_tail
    out: bytes = obj.decompress(tail + src if tail else src, n)
    return out


def _at_member_end(obj: object) -> bool:
    return bool(getattr(obj, "eof", False))


def _has_buffered(obj: Any) -> bool:
    if isinstance(obj, bz2.BZ2Decompressor | lzma.LZMADecompressor):
        return not obj.needs_input
    return bool(obj.unconsumed_tail)


def _zstd_error(exc: Exception, what: str) -> ImageError:
    text = str(exc)
    if "window" in text.lower() or "memory" in text.lower():
        return LimitExceeded(f"{what}: zstd frame needs more memory than allowed ({text})")
    if "truncated" in text.lower() or "incomplete" in text.lower():
        return Truncated(f"{what}: zstd stream ends early")
    return CorruptData(f"{what}: corrupt zstd data ({text})")


def open_stream(
    raw: BinaryIO | Readable,
    limits: Limits,
    max_bytes: int,
    what: str = "layer",
    max_raw_bytes: int | None = None,
) -> tuple[HashingReader, Decompressor]:
    """Wrap a raw blob: (hashing reader of the raw bytes, decompressed stream)."""
    hr = HashingReader(raw, max_raw_bytes, what)
    kind = sniff(hr.peek(6))
    return hr, Decompressor(hr, kind, limits, max_bytes, what)


def gzip_compress(data_iter: list[bytes] | tuple[bytes, ...], level: int = 6) -> bytes:
    """Deterministic gzip (mtime 0, no name, OS byte 255) as Go's gzip writer emits by default."""
    co = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = 0
    size = 0
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"]
    for chunk in data_iter:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        out.append(co.compress(chunk))
    out.append(co.flush())
    out.append(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    return b"".join(out)
