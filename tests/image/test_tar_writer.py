"""The writer emits Go's bytes: USTAR when it fits, PaxHeaders.0 otherwise, two end blocks."""

from __future__ import annotations

import io
import tarfile

import pytest

from overlaysim.image.compress import open_stream
from overlaysim.image.limits import Limits
from overlaysim.image.tar_reader import TarReader
from overlaysim.image.tar_writer import (
    Header,
    TarWriter,
    encode_header,
    pax_record,
    pax_time,
    split_ustar_path,
)
from tests.image.conftest import open_fixture


def write(*items: tuple[Header, bytes]) -> bytes:
    buf = io.BytesIO()
    w = TarWriter(buf)
    for h, d in items:
        w.add(h, d)
    w.close()
    return buf.getvalue()


def test_rewriting_parsed_docker_layers_gives_the_same_bytes() -> None:
    arch, src = open_fixture("dive/test-docker-image.tar")
    try:
        for ref in arch.images[0].layers:
            with src.open(ref.path) as raw:
                orig = raw.read()
            r = TarReader(io.BytesIO(orig), Limits())
            items = []
            for h in r:
                data = r.read_data()
                tf = (
                    "\x00"
                    if h.name.rsplit("/", 1)[-1].startswith(".wh.") and h.mode == 0
                    else h.typeflag
                )
                items.append(
                    (
                        Header(
                            h.name,
                            tf,
                            h.mode,
                            h.uid,
                            h.gid,
                            0 if tf in "12" else h.size,
                            h.mtime_ns,
                            h.linkname,
                        ),
                        data,
                    )
                )
            assert write(*items) == orig, ref.path
    finally:
        src.close()


def test_long_ascii_names_split_into_prefix_without_pax() -> None:
    name = "a" * 60 + "/" + "b" * 60
    blk = encode_header(Header(name))
    assert len(blk) == 512 and blk[345:405] == b"a" * 60 and blk[0:60] == b"b" * 60
    assert split_ustar_path(name.encode()) == (b"a" * 60, b"b" * 60)


@pytest.mark.parametrize("name", ["x" * 101, "d/" + "é" * 10, "a/" + "b" * 120])
def test_unsplittable_or_non_ascii_names_get_a_pax_header(name: str) -> None:
    out = write((Header(name, size=1), b"z"))
    assert out[156:157] == b"x" and b"PaxHeaders.0" in out[0:100]
    assert out[0:100].rstrip(b"\x00").isascii()  # Go drops non-ASCII bytes from this name
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        assert t.getnames() == [name]


def test_pax_record_counts_its_own_length() -> None:
    rec = pax_record("path", "x" * 93)
    assert rec.startswith(b"103 ") and len(rec) == 103
    rec = pax_record("path", "x" * 94)  # 101 bytes of body + 3 digits
    assert rec.startswith(b"104 ") and len(rec) == 104
    assert pax_record("a", "b") == b"6 a=b\n"


def test_pax_time_formats() -> None:
    assert pax_time(1_500_000_000 * 10**9) == "1500000000"
    assert pax_time(1_500_000_000 * 10**9 + 1000) == "1500000000.000001"
    assert pax_time(-1) == "-0.000000001"


def test_big_uid_and_xattrs_force_pax_and_read_back() -> None:
    h = Header(
        "f", uid=3_000_000, pax={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}, size=0
    )
    out = write((h, b""))
    r = TarReader(io.BytesIO(out), Limits())
    got = next(iter(r))
    assert got.uid == 3_000_000 and got.xattrs == {"security.capability": "\x01\x00\x00\x02"}


def test_zero_mtime_header_is_written_as_epoch_without_pax() -> None:
    out = write((Header("d/.wh..wh..opq", mtime_ns=None, want_pax=False), b""))
    assert out[136:148] == b"00000000000\x00" and out[156:157] == b"0"


def test_archive_ends_with_exactly_two_zero_blocks() -> None:
    out = write((Header("f", size=3), b"abc"))
    assert len(out) == 512 + 512 + 1024 and out.endswith(b"\x00" * 1024)
    _, dec = open_stream(io.BytesIO(out), Limits(), 1 << 20)
    assert dec.read() == out
