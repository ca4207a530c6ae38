"""The import's bulk paths (issue 11, 1M-entry layers) give what the ordinary calls give.

Two shortcuts are checked against the code they bypass: regular files made in one call
(``overlaysim.vfs.bulk.file_maker``, used by the applier's lane for runs of files in one
directory) instead of open/write/chown/chmod/utime/close, and header blocks captured for
tar-split as spans of the read-ahead buffer instead of one object per block.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim import HostFS
from overlaysim.image import apply as apply_mod
from overlaysim.image import tar_reader as tr
from overlaysim.image.apply import Applier
from overlaysim.image.findings import Findings
from overlaysim.image.layer import parse_layer
from overlaysim.image.limits import Limits
from overlaysim.image.tarsplit import TarSplit
from overlaysim.vfs.bulk import file_maker
from tests.image import tarbuild as tb
from tests.image.helpers import import_both

FAST = settings(
    max_examples=int(os.environ.get("OVS_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _observe(o: Any, root: str, since: int) -> dict[str, tuple[Any, ...]]:
    """Everything a user can read of each path below ``root`` but its ctime; a time from
    ``since`` on reads "now" (when exactly depends on how many calls were made)."""
    out: dict[str, tuple[Any, ...]] = {}

    def when(t: int) -> int | str:
        return "now" if t >= since else t

    stack = [""]
    while stack:
        rel = stack.pop()
        p = f"{root}/{rel}" if rel else root
        s = o.lstat(p)
        xattrs = tuple(sorted((k, o.getxattr(p, k, follow_symlinks=False))
                              for k in o.listxattr(p, follow_symlinks=False)))  # fmt: skip
        extra: Any = None
        if stat.S_ISREG(s.st_mode):
            with o.fdopen(o.open(p, os.O_RDONLY), "rb") as f:
                extra = f.read()
        elif stat.S_ISLNK(s.st_mode):
            extra = o.readlink(p)
        elif stat.S_ISDIR(s.st_mode):
            stack.extend(f"{rel}/{n}" if rel else n for n in o.listdir(p))
        out[rel] = (s.st_mode, s.st_uid, s.st_gid, s.st_size, s.st_nlink, s.st_ino, s.st_rdev,
                    when(s.st_atime_ns), when(s.st_mtime_ns), xattrs, extra)  # fmt: skip
    return out


def _layers(markers: bool = True) -> list[bytes]:
    """Runs of files the lane takes, broken by everything it must leave to the general code.
    ``markers=False``: no whiteouts or opaque markers (an overlay refuses to store them)."""
    return [_lower(markers), _upper(markers)]


def _lower(markers: bool) -> bytes:
    return tb.tar(
        tb.member("top", b"t"),
        tb.member("top-empty"),
        tb.dir_("d/"),
        *(tb.member(f"d/f{i}", b"x" * i, mode=0o600 + i, uid=i, gid=2 * i) for i in range(8)),
        tb.member("d/suid", b"s", mode=0o4755, uid=7),
        tb.member("d/group-w", mode=0o664),
        tb.member("d/sticky", mode=0o1644),
        tb.member("d/big-ids", uid=70000, gid=4_000_000),
        tb.pax({"SCHILY.xattr.user.k": "v"}),
        tb.member("d/xattr", b"x"),
        tb.member("d/after-xattr"),
        tb.hardlink("d/hard", "d/f3"),
        tb.member("d/after-link"),
        tb.symlink("d/sym", "f1"),
        tb.dir_("sg/", mode=0o2775, gid=50),
        tb.member("sg/a"),
        tb.member("sg/b", gid=9),
        tb.dir_("e/"),
        tb.member("e/.wh.gone" if markers else "e/not-gone"),
        tb.member("e/after-whiteout"),
        tb.symlink("via", "d"),
        tb.member("via/through", b"y"),  # through a symlink: the lane never takes these
        tb.member("via/through2"),
        tb.member("d/back", b"z"),
        tb.member("d/f2", b"again"),  # a name given twice (lenient): replaced
    )


def _upper(markers: bool) -> bytes:
    return tb.tar(
        tb.member("d/f1", b"upper"),  # replaces a file of the lower layer
        tb.member("d/new"),
        tb.member("top", b"T", mtime=1_700_000_000),
        tb.member("sg/c"),
        tb.dir_("e/"),
        *([tb.member("e/.wh..wh..opq")] if markers else []),
        tb.member("e/fresh"),
    )


LAYERS = _layers()


def test_the_lane_builds_the_tree_the_ordinary_calls_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t0 = time.time_ns()
    o1, res1 = import_both(LAYERS, strict=False)
    monkeypatch.setattr(apply_mod, "file_maker", lambda o: None)
    o2, res2 = import_both(LAYERS, strict=False)
    fast, slow = _observe(o1, "/img", t0), _observe(o2, "/img", t0)
    assert fast == slow
    assert len(fast) > 50
    assert res1.findings.items == res2.findings.items
    for res, o in ((res1, o1), (res2, o2)):
        for layer, raw in zip(res.layers, LAYERS, strict=True):
            assert layer.tarsplit is not None
            assert layer.tarsplit.assemble(o, layer.diff_id) == raw


def test_files_made_in_bulk_get_a_current_ctime_and_touch_their_directory() -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/d")
    before = o.lstat("/d")
    t0 = fs.clock()
    make = file_maker(o)
    assert make is not None
    dfd = o.open("/d", os.O_PATH | os.O_DIRECTORY)
    try:
        assert make(dfd, "f", 0o4750, 5, 6, b"data", 11, 22)
    finally:
        o.close(dfd)
    s, d = o.lstat("/d/f"), o.lstat("/d")
    assert (s.st_mode, s.st_uid, s.st_gid, s.st_size, s.st_nlink) == (
        stat.S_IFREG | 0o4750, 5, 6, 4, 1,
    )  # fmt: skip
    assert (s.st_atime_ns, s.st_mtime_ns) == (11, 22)
    assert t0 <= s.st_ctime_ns <= fs.clock()
    assert d.st_mtime_ns == d.st_ctime_ns >= t0 > before.st_mtime_ns - 1
    assert d.st_size == before.st_size + 20  # tmpfs: 20 bytes a directory entry
    with o.fdopen(o.open("/d/f", os.O_RDONLY), "rb") as f:
        assert f.read() == b"data"


def test_the_bulk_maker_declines_whatever_the_calls_would_refuse() -> None:
    """Each case gets False (the caller then makes the calls, which raise the errno)."""
    assert file_maker(os) is None  # the real os module: ordinary calls only
    fs = HostFS()
    o = fs.os
    for p in ("/d", "/ro", "/l", "/u", "/w", "/m", "/gone"):
        o.mkdir(p)
    o.close(o.open("/d/taken", os.O_CREAT | os.O_WRONLY, 0o644))
    fs.mount("tmpfs", "/ro", "tmpfs", "ro")
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    make = file_maker(o)
    assert make is not None

    def attempt(dir_path: str, name: str, maker: Any = make) -> bool:
        dfd = o.open(dir_path, os.O_PATH | os.O_DIRECTORY)
        try:
            return bool(maker(dfd, name, 0o644, 0, 0, b"", 1, 1))
        finally:
            o.close(dfd)

    assert not attempt("/d", "taken")  # EEXIST
    for bad in ("", ".", "..", "a/b", "a\0b", "x" * 256):
        assert not attempt("/d", bad)
    assert not attempt("/ro", "f")  # EROFS
    assert not attempt("/m", "f")  # an overlay directory: its own create (copy-up, events)
    dfd = o.open("/gone", os.O_PATH | os.O_DIRECTORY)
    o.rmdir("/gone")
    assert not make(dfd, "f", 0o644, 0, 0, b"", 1, 1)  # ENOENT
    o.close(dfd)
    assert not make(999, "f", 0o644, 0, 0, b"", 1, 1)  # EBADF
    o.chmod("/d", 0o777)
    user = fs.as_user(uid=1000, gid=1000).os
    umake = file_maker(user)
    assert umake is not None
    udfd = user.open("/d", os.O_PATH | os.O_DIRECTORY)
    assert not umake(udfd, "mine", 0o644, 1000, 1000, b"", 1, 1)  # not root: chown may fail
    user.close(udfd)
    assert not attempt("/d", "f", lambda *a: make(*a[:3], -1, *a[4:]))
    assert o.listdir("/d") == ["taken"] and o.listdir("/ro") == [] and o.listdir("/m") == []
    with pytest.raises(OSError) as info:  # what the caller's ordinary calls then report
        o.open("/ro/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    assert info.value.errno == errno.EROFS


def test_an_import_into_an_overlay_directory_still_works() -> None:
    fs = HostFS()
    o = fs.os
    for p in ("/l", "/u", "/w", "/m"):
        o.mkdir(p)
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    t0 = time.time_ns()
    layers = _layers(markers=False)
    o, _ = import_both(layers, strict=False, o=o, target="/m/img")
    ref_o, _ = import_both(layers, strict=False)
    got = {k: v[:5] + v[6:] for k, v in _observe(o, "/m/img", t0).items()}  # not st_ino
    want = {k: v[:5] + v[6:] for k, v in _observe(ref_o, "/img", t0).items()}
    assert got == want
    assert sorted(o.listdir("/u/img/layers/000/d"))[:3] == ["after-link", "after-xattr", "back"]


# --- tar-split capture as spans of the read-ahead buffer --------------------------------------
_members = st.lists(
    st.one_of(
        st.integers(0, 2000).map(lambda n: ("file", n)),
        st.just(("empty", 0)),
        st.just(("dir", 0)),
        st.integers(100, 240).map(lambda n: ("pax", n)),  # a meta header, then the member
        st.integers(100, 240).map(lambda n: ("gnu", n)),
        st.integers(0, 3).map(lambda n: ("again", n)),  # an earlier file's name, replaced
    ),
    min_size=1,
    max_size=40,
)


def _layer(kinds: list[tuple[str, int]], eof: bool) -> bytes:
    parts: list[bytes] = []
    for i, (kind, n) in enumerate(kinds):
        if kind == "file":
            parts.append(tb.member(f"f{i}", bytes([i % 251 + 1]) * n))
        elif kind == "empty":
            parts.append(tb.member(f"e{i}"))
        elif kind == "dir":
            parts.append(tb.dir_(f"d{i}/"))
        elif kind == "pax":
            parts.append(tb.pax({"path": "p" * n + str(i)}) + tb.member(f"x{i}", b"pax"))
        elif kind == "gnu":
            parts.append(tb.gnu_long("g" * n + str(i)) + tb.member(f"y{i}"))
        else:  # the name of the first member, as a file with or without data, or a dir
            first = f"f{0}" if kinds[0][0] == "file" else f"e{0}"
            what = (tb.member(first, b"new" * n), tb.member(first), tb.dir_(first + "/"))
            parts.append(what[n % 3])
    return tb.tar(*parts, eof=eof) + (b"\0" * 1000 if eof and len(kinds) % 3 == 0 else b"")


@FAST
@given(_members, st.sampled_from([512, 700, 1024, 1536, 4096]), st.booleans())
def test_captured_spans_and_data_give_back_every_byte_in_order(
    kinds: list[tuple[str, int]], readahead: int, eof: bool
) -> None:
    raw = _layer(kinds, eof)
    saved = tr._READAHEAD
    tr._READAHEAD = readahead  # buffer edges fall inside and between header runs
    try:
        rd = tr.TarReader(io.BytesIO(raw), Limits(), capture_raw=True)
        out: list[bytes] = []
        while rd.next() is not None:
            data = rd.read_data()
            out.append(rd.take_raw())
            out.append(data)
        rd.finish()
        out.append(rd.take_raw())
        assert b"".join(out) == raw
        plan = parse_layer(io.BytesIO(raw), Limits(), strict=False)
    finally:
        tr._READAHEAD = saved
    ts = plan.tarsplit
    assert ts is not None
    fs = HostFS()
    fs.os.mkdir("/t")
    Applier(fs.os, "/t", "native", Findings()).apply(plan)
    assert ts.assemble(fs.os) == raw


# --- field caches of the plain-header parser ------------------------------------------------
@FAST
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0o644, 0o755, 0o4755]),
            st.sampled_from([0, 1000, 2**21 - 1]),
            st.integers(0, 5),
            st.sampled_from([0, 1_600_000_000, 8**11 - 1]),
            st.text(alphabet="abé/", min_size=1, max_size=20),
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 4),
)
def test_the_field_caches_never_change_a_parsed_header(
    fields: list[tuple[int, int, int, int, str]], cache_max: int
) -> None:
    """Hits, misses and a cache cleared when full all parse as the general path does."""
    saved = tr._CACHE_MAX
    tr._CACHE_MAX = cache_max
    for cache in (tr._IDS, tr._MTIMES, tr._SUMS):
        cache.clear()  # (a cache is only cut back when it misses)
    try:
        for mode, uid, size, mtime, name in fields * 2:  # the second round hits
            blk = tb.header(name, mode=mode, uid=uid, gid=uid // 2, size=size, mtime=mtime)
            fast = tr._plain_ustar(blk)
            general = tr.TarReader(io.BytesIO(b""), Limits())._parse_header_general(blk)
            assert fast == general
            assert fast is not None and fast.mtime_ns == mtime * 10**9
            assert all(len(c) <= cache_max for c in (tr._IDS, tr._MTIMES, tr._SUMS))
    finally:
        tr._CACHE_MAX = saved


def test_a_long_run_of_headers_is_kept_without_a_copy_and_still_assembles() -> None:
    """3,000 empty files (1.5 MB of headers, over the 1 MiB merge limit) between files with
    data, one of which a later entry replaces (its data goes into the raw record)."""
    raw = tb.tar(
        tb.member("data0", b"a" * 700),
        *(tb.member(f"e{i:04d}") for i in range(3000)),
        tb.member("data1", b"b" * 5),
        *(tb.member(f"g{i:04d}") for i in range(3000)),
        tb.member("data0"),  # replaces data0: its 700 bytes cannot be read back
    )
    plan = parse_layer(io.BytesIO(raw), Limits(), strict=False)
    ts = plan.tarsplit
    assert ts is not None
    assert [s.name for s in ts.files()] == ["data1"]
    assert max(len(s) for s in ts.segments if isinstance(s, bytes)) <= 1 << 20
    fs = HostFS()
    fs.os.mkdir("/t")
    Applier(fs.os, "/t", "native", Findings()).apply(plan)
    assert ts.assemble(fs.os, plan.diff_id) == raw
    again = TarSplit.from_json_gz(ts.to_json_gz(), {"data1": "/t/data1"})
    assert again.assemble(fs.os, plan.diff_id) == raw
