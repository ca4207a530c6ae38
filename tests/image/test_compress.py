"""Decompression: formats sniffed like Docker, multistream like Go, bombs stopped by limits."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma

import pytest
import zstandard

from overlaysim.errors import LimitExceeded, Truncated
from overlaysim.image.compress import gzip_compress, open_stream, sniff
from overlaysim.image.errors import CorruptData
from overlaysim.image.limits import Limits

DATA = b"layer bytes " * 5000


def inflate(
    blob: bytes, limits: Limits | None = None, max_bytes: int = 1 << 30
) -> tuple[str, bytes, str]:
    lim = limits or Limits()
    hr, dec = open_stream(io.BytesIO(blob), lim, max_bytes)
    out = dec.read()
    hr.drain()
    return dec.kind, out, hr.hexdigest()


@pytest.mark.parametrize(
    ("kind", "blob"),
    [
        ("gzip", gzip.compress(DATA)),
        ("zstd", zstandard.ZstdCompressor().compress(DATA)),
        ("bzip2", bz2.compress(DATA)),
        ("xz", lzma.compress(DATA)),
        ("none", DATA),
    ],
)
def test_every_format_round_trips_and_hashes_the_raw_blob(kind: str, blob: bytes) -> None:
    got_kind, out, raw_hex = inflate(blob)
    assert (got_kind, out) == (kind, DATA)
    assert raw_hex == hashlib.sha256(blob).hexdigest()


def test_sniff_knows_zstd_skippable_frames() -> None:
    assert sniff(b"\x50\x2a\x4d\x18\x00\x00") == "zstd"
    assert sniff(b"ustar") == "none"


def test_gzip_and_zstd_are_multistream() -> None:
    assert inflate(gzip.compress(b"ab") + gzip.compress(b"cd"))[1] == b"abcd"
    z = zstandard.ZstdCompressor()
    assert inflate(z.compress(b"ab") + z.compress(b"cd"))[1] == b"abcd"


def test_garbage_after_a_gzip_member_is_corrupt_as_in_go() -> None:
    with pytest.raises(CorruptData):
        inflate(gzip.compress(b"ab") + b"\x00\x00\x00\x00\x00\x00\x00\x00")


@pytest.mark.parametrize(
    "blob", [gzip.compress(DATA)[:-10], lzma.compress(DATA)[:-8], bz2.compress(DATA)[:-5]]
)
def test_truncated_streams(blob: bytes) -> None:
    with pytest.raises((Truncated, CorruptData)):
        inflate(blob)


def test_corrupt_gzip_crc() -> None:
    blob = bytearray(gzip.compress(DATA))
    blob[-6] ^= 0xFF
    with pytest.raises(CorruptData):
        inflate(bytes(blob))


def test_byte_limit_stops_a_gzip_bomb_early() -> None:
    bomb = gzip.compress(b"\x00" * (8 << 20))
    with pytest.raises(LimitExceeded):
        inflate(bomb, max_bytes=1 << 20)


def test_ratio_limit_stops_a_zstd_bomb() -> None:
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\x00" * (32 << 20))
    assert len(bomb) < 8192
    with pytest.raises(LimitExceeded):
        inflate(bomb, Limits(max_ratio=100, ratio_grace_bytes=1 << 20))


def test_zstd_window_limit() -> None:
    params = zstandard.ZstdCompressionParameters(window_log=26, enable_ldm=True)
    blob = zstandard.ZstdCompressor(compression_params=params).compress(DATA * 40)
    with pytest.raises(LimitExceeded):
        inflate(blob, Limits(max_zstd_window=1 << 20))


def test_gzip_compress_is_deterministic_and_valid() -> None:
    a, b = gzip_compress([DATA]), gzip_compress([DATA])
    assert a == b and gzip.decompress(a) == DATA
