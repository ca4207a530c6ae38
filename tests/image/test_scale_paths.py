"""The shortcuts that let a 1,000,000-entry layer import and flatten (issue 11) change nothing.

The plain-header writer must give Go's bytes exactly as the general writer does; the tar-split
of a layer of mostly empty files must still re-assemble it byte for byte; export must keep
Go's byte order of names and still find file capabilities; applied times and owners (shared
int objects) stay exact; parsing and applying leave the garbage collector as they found it.
"""

from __future__ import annotations

import gc
import io
import os
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim import HostFS
from overlaysim.errors import ImageError
from overlaysim.image.apply import Applier
from overlaysim.image.export import layer_tar, walk
from overlaysim.image.findings import Findings
from overlaysim.image.layer import parse_layer
from overlaysim.image.limits import Limits
from overlaysim.image.tar_writer import Header, encode_header, encode_header_general
from tests.image import tarbuild as tb

FAST = settings(
    max_examples=int(os.environ.get("OVS_FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

_text = st.one_of(
    st.text(alphabet="abc/._-", max_size=110),
    st.text(max_size=40),
    st.sampled_from(["", "a" * 100, "a" * 101, "é", "dir/", "x" * 32, "x" * 33]),
)
_num = st.one_of(
    st.integers(0, 0o7777),
    st.integers(0, 1 << 40),
    st.sampled_from([(1 << 21) - 1, 1 << 21, (1 << 33) - 1, 1 << 33, -1]),
)
_mtime = st.one_of(
    st.none(),
    st.integers(0, 1 << 34).map(lambda s: s * 1_000_000_000),
    st.integers(-(1 << 40), 1 << 62),
    st.sampled_from([((1 << 33) - 1) * 10**9, (1 << 33) * 10**9, -(10**9)]),
)


@st.composite
def _headers(draw: st.DrawFn) -> Header:
    return Header(
        name=draw(_text),
        typeflag=draw(st.sampled_from(["0", "1", "2", "3", "4", "5", "6", "x", "7"])),
        mode=draw(_num),
        uid=draw(_num),
        gid=draw(_num),
        size=draw(_num),
        mtime_ns=draw(_mtime),
        linkname=draw(_text),
        uname=draw(_text),
        gname=draw(_text),
        devmajor=draw(_num),
        devminor=draw(_num),
        pax=draw(st.sampled_from([{}, {"SCHILY.xattr.security.capability": "\x01"}])),
        want_pax=draw(st.booleans()),
    )


@FAST
@given(_headers())
def test_plain_header_writer_agrees_with_the_general_one(h: Header) -> None:
    assert encode_header(h) == encode_header_general(h)


def test_plain_header_writer_matches_a_byte_by_byte_header() -> None:
    """The test suite's own byte-level tar builder (Go's field layout) is a second judge."""
    for name, kind, mode, size, link in (("a/b", "0", 0o644, 5, ""), ("d/", "5", 0o755, 0, ""),
                                         ("l", "2", 0o777, 0, "t/u")):  # fmt: skip
        want = tb.header(name, typeflag=kind.encode(), mode=mode, uid=1000, gid=100, size=size,
                         mtime=1_700_000_000, linkname=link)  # fmt: skip
        h = Header(name, kind, mode, 1000, 100, size, 1_700_000_000 * 10**9, link)
        assert encode_header(h) == want


def _layer(n_empty: int) -> bytes:
    members = [tb.dir_("d/")]
    for i in range(n_empty):
        members.append(tb.member(f"d/e{i:05d}"))
        if i % 3000 == 1500:  # data between long runs of empty files
            members.append(tb.member(f"d/data{i}", b"x" * (i % 700 + 1)))
    return tb.tar(*members)


def test_tarsplit_of_long_runs_of_empty_files_reassembles_the_layer() -> None:
    """Thousands of data-less headers in a row, with file data between some of them."""
    raw = _layer(9_000)
    plan = parse_layer(io.BytesIO(raw), Limits(), capture=True)
    fs = HostFS()
    fs.os.mkdir("/l")
    Applier(fs.os, "/l", "native", Findings()).apply(plan)
    assert plan.tarsplit is not None
    assert plan.tarsplit.assemble(fs.os, plan.diff_id) == raw
    again = plan.tarsplit.from_json_gz(plan.tarsplit.to_json_gz(), {
        r.name: r.path for r in plan.tarsplit.files()})  # fmt: skip
    assert again.assemble(fs.os) == raw


def test_applied_times_and_owners_are_the_headers_ones() -> None:
    """Times are shared between inodes (one int per value): each file still has its own."""
    members = [tb.dir_("d/")]
    for i in range(50):
        members.append(tb.member(f"d/f{i}", uid=1000 + i % 3, gid=2000, mtime=1_600_000_000 + i % 4))
    plan = parse_layer(io.BytesIO(tb.tar(*members)), Limits())
    fs = HostFS()
    fs.os.mkdir("/l")
    Applier(fs.os, "/l", "native", Findings()).apply(plan)
    for i in range(50):
        s = fs.os.lstat(f"/l/d/f{i}")
        assert (s.st_uid, s.st_gid) == (1000 + i % 3, 2000)
        assert s.st_mtime_ns == s.st_atime_ns == (1_600_000_000 + i % 4) * 10**9
    fs.os.utime("/l/d/f0", ns=(5, 6))
    assert fs.os.lstat("/l/d/f4").st_mtime_ns == 1_600_000_000 * 10**9


def test_export_orders_names_by_bytes_and_finds_capabilities() -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/r")
    names = ["b", "a", "\udcff", "\ue000", "Z", "é"]  # surrogateescape and BMP sort differently
    for n in names:
        o.close(o.open(f"/r/{n}", os.O_CREAT | os.O_WRONLY, 0o644))
    o.setxattr("/r/a", "security.capability", b"\x01\x00\x00\x02" + bytes(16))
    got = [rel for rel, _p, _s in walk(o, "/r")]
    assert got == sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape"))
    buf = io.BytesIO()
    layer_tar(o, "/r", buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf, encoding="utf-8", errors="surrogateescape") as t:
        caps = {m.name: m.pax_headers.get("SCHILY.xattr.security.capability") for m in t}
    assert caps.pop("a") is not None
    assert set(caps.values()) == {None}


def test_parse_and_apply_leave_the_collector_as_they_found_it() -> None:
    raw = _layer(10)
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            plan = parse_layer(io.BytesIO(raw), Limits())
            assert gc.isenabled() is enabled
            fs = HostFS()
            fs.os.mkdir("/l")
            Applier(fs.os, "/l", "native", Findings()).apply(plan)
            assert gc.isenabled() is enabled
            with pytest.raises(ImageError):
                parse_layer(io.BytesIO(b"\x01" * 1024), Limits())
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
