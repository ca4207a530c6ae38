"""The tar reader reads archives the way Go's archive/tar does (and differs from tarfile where Go does)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

from overlaysim.errors import LimitExceeded, Truncated
from overlaysim.image.errors import BadHeader
from overlaysim.image.limits import Limits
from overlaysim.image.tar_fields import block_format, parse_pax_records
from overlaysim.image.tar_reader import TarReader
from tests.image import tarbuild as tb


def entries(data: bytes, limits: Limits | None = None) -> list[tuple[str, str, int, bytes]]:
    r = TarReader(io.BytesIO(data), limits or Limits())
    out = []
    for h in r:
        out.append((h.name, h.typeflag, h.size, r.read_data()))
    r.finish()
    return out


def test_plain_ustar_members_and_data() -> None:
    data = tb.tar(tb.dir_("d/"), tb.member("d/f", b"hello"), tb.symlink("d/l", "f"))
    assert entries(data) == [("d/", "5", 0, b""), ("d/f", "0", 5, b"hello"), ("d/l", "2", 0, b"")]


def test_checksum_signed_and_unsigned_are_both_accepted() -> None:
    blk = bytearray(tb.header("é" * 10, size=0))
    unsigned = sum(blk[:148]) + 256 + sum(blk[156:])
    signed = unsigned - 256 * sum(1 for c in bytes(blk[:148]) + bytes(blk[156:]) if c >= 0x80)
    assert signed != unsigned
    for value in (unsigned, signed):
        h = tb.header("é" * 10, chksum=value)
        assert block_format(h) == "ustar"
    with pytest.raises(BadHeader):
        entries(tb.tar(tb.header("x", chksum=unsigned + 1)))


def test_base256_numbers_and_large_uid() -> None:
    big = (1 << 40).to_bytes(8, "big")
    big = bytes([big[0] | 0x80]) + big[1:]
    data = tb.tar(tb.header("f", patch={108: big}))
    r = TarReader(io.BytesIO(data), Limits())
    h = next(iter(r))
    assert h.uid == 1 << 40


def test_pax_path_overrides_and_empty_value_keeps_ustar_name() -> None:
    data = tb.tar(tb.pax({"path": "long/" + "n" * 150}), tb.member("short", b"x"))
    assert entries(data)[0][0] == "long/" + "n" * 150
    data = tb.tar(tb.pax({"path": ""}), tb.member("kept", b"x"))
    assert entries(data)[0][0] == "kept"


def test_later_pax_header_replaces_earlier_one() -> None:
    data = tb.tar(
        tb.pax({"path": "first", "uid": "7"}), tb.pax({"path": "second"}), tb.member("u", b"")
    )
    r = TarReader(io.BytesIO(data), Limits())
    h = next(iter(r))
    assert (h.name, h.uid) == ("second", 0)


def test_gnu_long_name_wins_over_pax_path() -> None:
    data = tb.tar(tb.pax({"path": "from-pax"}), tb.gnu_long("from-gnu"), tb.member("ustar", b""))
    assert entries(data)[0][0] == "from-gnu"


def test_typeflag_nul_with_trailing_slash_is_a_directory() -> None:
    data = tb.tar(tb.header("d/", typeflag=b"\x00"), tb.header("f", typeflag=b"\x00", size=0))
    assert [e[1] for e in entries(data)] == ["5", "0"]


def test_header_only_types_carry_no_data_whatever_their_size() -> None:
    # Go skips no data for a symlink with size 3: the next header starts right after it
    data = tb.tar(tb.header("l", typeflag=b"2", linkname="t", size=3), tb.member("f", b"ok"))
    assert [(e[0], e[3]) for e in entries(data)] == [("l", b""), ("f", b"ok")]


def test_global_header_is_returned_as_an_entry() -> None:
    data = tb.tar(
        tb.pax({"comment": "hi"}, typeflag=b"g", name="pax_global_header"), tb.member("f", b"")
    )
    assert [e[1] for e in entries(data)] == ["g", "0"]


@pytest.mark.parametrize(
    ("tail", "end"),
    [(b"", "eof"), (b"\x00" * 512, "eof-after-one-marker"), (b"\x00" * 1024, "markers")],
)
def test_archive_may_end_at_eof_or_one_or_two_zero_blocks(tail: bytes, end: str) -> None:
    r = TarReader(io.BytesIO(tb.member("f", b"x") + tail), Limits())
    assert [h.name for h in r] == ["f"]
    assert r.end == end


def test_zero_block_followed_by_a_header_is_an_error() -> None:
    with pytest.raises(BadHeader):
        entries(tb.member("a", b"") + b"\x00" * 512 + tb.member("b", b""))


def test_trailing_garbage_is_counted_not_parsed() -> None:
    r = TarReader(io.BytesIO(tb.tar(tb.member("f", b"x")) + b"GARBAGE"), Limits())
    assert [h.name for h in r] == ["f"]
    r.finish()
    assert r.trailing == 7 and r.trailing_nonzero


@pytest.mark.parametrize("cut", [100, 512 + 3, 1030])
def test_truncation_is_reported(cut: int) -> None:
    data = tb.tar(tb.member("f", b"x" * 600))
    with pytest.raises(Truncated):
        entries(data[:cut])


@pytest.mark.parametrize(
    "records",
    [b"5 a=b", b"x a=b\n", b"100 a=b\n", b"6 ab\n", b"8 =abc\n", b"13 path=a\x00b\n"],
)
def test_malformed_pax_records_are_rejected(records: bytes) -> None:
    with pytest.raises(BadHeader):
        parse_pax_records(records)


def test_pax_numbers_must_parse() -> None:
    with pytest.raises(BadHeader):
        entries(tb.tar(tb.pax({"uid": "12x"}), tb.member("f", b"")))
    with pytest.raises(BadHeader):
        entries(tb.tar(tb.pax({"mtime": "1.2e3"}), tb.member("f", b"")))


def test_pax_mtime_keeps_nanoseconds_truncated_to_nine_digits() -> None:
    data = tb.tar(tb.pax({"mtime": "1.1234567891"}), tb.member("f", b""))
    h = next(iter(TarReader(io.BytesIO(data), Limits())))
    assert h.mtime_ns == 1_123_456_789


def test_limits_pax_size_and_entries() -> None:
    big = tb.pax({"comment": "x" * 5000})
    with pytest.raises(LimitExceeded):
        entries(tb.tar(big, tb.member("f", b"")), Limits(max_pax_bytes=4096))
    many = tb.tar(*[tb.member(f"f{i}", b"") for i in range(20)])
    with pytest.raises(LimitExceeded):
        entries(many, Limits(max_entries=10))


def _gnu_tar(tmp: str, fmt: str) -> bytes:
    path = os.path.join(tmp, "sparse")
    with open(path, "wb") as f:
        f.seek(1 << 20)
        f.write(b"tail")
        f.seek(4096)
        f.write(b"head")
    out = os.path.join(tmp, "s.tar")
    subprocess.run(
        ["tar", "--sparse", f"--format={fmt}", "-C", tmp, "-cf", out, "sparse"], check=True
    )
    with open(out, "rb") as f:
        return f.read()


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_gnu_tar_sparse_files_expand_like_go(tmpdir_root: str, fmt: str) -> None:
    if not os.path.exists("/usr/bin/tar") and not os.path.exists("/bin/tar"):
        pytest.skip("GNU tar not installed")
    data = _gnu_tar(tmpdir_root, fmt)
    ((name, tf, size, content),) = entries(data)
    assert name.endswith("sparse") and tf == "0" and size == (1 << 20) + 4
    assert (
        content[4096:4100] == b"head" and content[-4:] == b"tail" and content.count(0) == size - 8
    )


def test_python_tarfile_agrees_on_ordinary_archives() -> None:
    data = tb.pytar([("d/", None), ("d/" + "x" * 120, b"long"), ("é/ü", b"utf8")])
    ours = [(n, s, d) for n, _t, s, d in entries(data)]
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        theirs = [
            (
                m.name + ("/" if m.isdir() else ""),
                m.size,
                t.extractfile(m).read() if m.isfile() else b"",
            )
            for m in t
        ]  # type: ignore[union-attr]
    assert ours == theirs


def test_python_tarfile_differentials_are_reported() -> None:
    from overlaysim.image.differential import tarfile_differential

    glob = tb.tar(
        tb.pax({"path": "elsewhere"}, typeflag=b"g", name="pax_global_header"), tb.member("f", b"x")
    )
    assert tarfile_differential(glob, Limits()).codes() == {"parser-differential"}
    both = tb.tar(tb.pax({"path": "from-pax"}), tb.gnu_long("from-gnu"), tb.member("x", b""))
    assert tarfile_differential(both, Limits()).codes() == {"parser-differential"}
    bad_second = tb.member("a", b"") + tb.header("b", chksum=5) + tb.end()
    assert tarfile_differential(bad_second, Limits()).codes() == {"parser-refuses"}
    assert len(tarfile_differential(tb.pytar([("d/", None), ("d/f", b"x")]), Limits())) == 0
