"""The import's fast paths give exactly what the general paths give, and keep every check.

Each shortcut taken for speed (checksum via Adler-32, the plain-USTAR header parser, the plain
entry classifier, the clean-name test, chunked peeking, seeking over outer-archive members,
descriptor-relative creation and skipped no-op chowns) is compared here with the general
code on generated input, and the cases a shortcut could get wrong are imported for real.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim import HostFS
from overlaysim.errors import Truncated
from overlaysim.image import entry as em
from overlaysim.image import names as nm
from overlaysim.image import tar_reader as tr
from overlaysim.image.compress import HashingReader
from overlaysim.image.formats import open_archive
from overlaysim.image.importer import import_image
from overlaysim.image.limits import Limits
from overlaysim.image.tar_fields import header_sums
from overlaysim.image.tar_sparse import SparseMap
from overlaysim.image.tree import snapshot
from tests.image import tarbuild as tb
from tests.image.conftest import image_archive
from tests.image.helpers import image_of, import_both

FAST = settings(
    max_examples=int(os.environ.get("OVS_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- tar header checksums and the plain-USTAR parser -----------------------------------------
def _naive_sums(blk: bytes) -> tuple[int, int]:
    body = blk[:148] + b" " * 8 + blk[156:]
    return sum(body), sum(c - 256 if c >= 0x80 else c for c in body)


_blocks = st.one_of(
    st.binary(min_size=512, max_size=512),
    st.binary(min_size=512, max_size=512).map(lambda b: bytes(c & 0x7F for c in b)),
    st.tuples(st.integers(0, 511), st.integers(0, 512)).map(
        lambda t: b"\xff" * t[0] + b"\x80" * (512 - t[0])
    ),
)


@FAST
@given(_blocks)
def test_checksums_equal_the_plain_byte_sums(blk: bytes) -> None:
    assert header_sums(blk) == _naive_sums(blk)


def test_checksums_of_extreme_blocks() -> None:
    for blk in (bytes(512), b"\xff" * 512, b"\x7f" * 512, b"\x80" * 512):
        assert header_sums(blk) == _naive_sums(blk)


_names = st.text(alphabet="ab./\\é-", min_size=0, max_size=99)


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    kw: dict[str, object] = {
        "typeflag": draw(st.sampled_from([b"0", b"5", b"2", b"1", b"3", b"x", b"\x00", b"7"])),
        "mode": draw(st.sampled_from([0o644, 0o755, 0o4755, 0o7777, 0])),
        "uid": draw(st.sampled_from([0, 1000, 65535, 65536, 2**21 - 1])),
        "gid": draw(st.sampled_from([0, 50, 2**21 - 1])),
        "size": draw(st.sampled_from([0, 5, 8**11 - 1])),
        "mtime": draw(st.sampled_from([0, 1_700_000_000, 8**11 - 1])),
        "linkname": draw(st.sampled_from(["", "target", "é"])),
        "uname": draw(st.sampled_from([b"", b"root", b"\xff"])),
        "devmajor": draw(st.sampled_from([0, 0, 8])),
        "prefix": draw(st.sampled_from([b"", b"", b"pre/fix"])),
        "magic": draw(st.sampled_from([b"ustar\x0000", b"ustar  \x00", b"ustar\x00xx", bytes(8)])),
    }
    patches: dict[int, bytes] = {}
    if draw(st.booleans()):  # numbers as some writers format them: spaces, base-256
        patches[draw(st.sampled_from([100, 108, 124, 136]))] = draw(
            st.sampled_from([b"    644 ", b"\x80\x00\x00\x00\x00\x00\x00\x05", b"0000644 "])
        )
    if draw(st.booleans()):
        patches[508] = b"tar\x00"  # star trailer
    blk = tb.header(draw(_names), patch=patches, **kw)  # type: ignore[arg-type]
    if draw(st.booleans()):  # a bad checksum
        blk = blk[:148] + b"000000\x00 " + blk[156:]
    return blk


def _general(blk: bytes) -> object:
    r = tr.TarReader(io.BytesIO(b""), Limits())
    try:
        return r._parse_header_general(blk)
    except Exception as exc:  # the comparison is about which error, if any
        return type(exc)


@FAST
@given(_headers())
def test_plain_ustar_parser_agrees_with_the_general_one(blk: bytes) -> None:
    fast = tr._plain_ustar(blk)
    if fast is not None:
        assert fast == _general(blk)


_HEADER_VARIANTS = {
    "plain": {},
    "link": {"typeflag": b"2", "linkname": "target"},
    "owner names": {"uname": b"root", "gname": b"wheel"},
    "utf-8 name": {"name": "é/ü"},
    "prefix": {"prefix": b"usr/lib"},
    "devices": {"typeflag": b"3", "devmajor": 1, "devminor": 3},
    "gnu": {"magic": b"ustar  \x00"},
    "v7": {"magic": bytes(8)},
    "odd version": {"magic": b"ustar\x00xx"},
    "star": {"patch": {508: b"tar\x00"}},
    "spaces": {"patch": {100: b"    644 "}},
    "base-256 size": {"patch": {124: b"\x80" + bytes(10) + b"\x05"}},
    "bad checksum": {"chksum": 1},
    "signed checksum": {"name": "é" * 10, "signed": True},
}


@pytest.mark.parametrize("variant", sorted(_HEADER_VARIANTS))
def test_plain_ustar_parser_agrees_on_each_header_shape(variant: str) -> None:
    kw = dict(_HEADER_VARIANTS[variant])
    name = kw.pop("name", "usr/lib/x.py")
    signed = kw.pop("signed", False)
    blk = tb.header(name, size=5, **kw)  # type: ignore[arg-type]
    if signed:  # re-checksum the block the int8 way, as some old writers did
        body = blk[:148] + b" " * 8 + blk[156:]
        value = sum(c - 256 if c >= 0x80 else c for c in body)
        blk = tb.header(name, size=5, chksum=value)
    fast = tr._plain_ustar(blk)
    if fast is not None:
        assert fast == _general(blk)
    plain = variant in (
        "plain",
        "link",
        "owner names",
        "utf-8 name",
        "odd version",
        "signed checksum",
    )
    assert (fast is not None) == plain


def test_plain_ustar_parser_takes_the_common_header() -> None:
    blk = tb.header("usr/lib/x.py", size=5, uname=b"root")
    fast = tr._plain_ustar(blk)
    assert fast is not None and fast == _general(blk)
    assert tr._plain_ustar(tb.header("x", prefix=b"usr")) is None  # the general path joins it
    bad = blk[:148] + b"000000\x00 " + blk[156:]
    assert tr._plain_ustar(bad) is None and _general(bad) is tr.BadHeader


# --- entry classification and names ------------------------------------------------------------
_TWEAKS = {
    "setuid": lambda h: setattr(h, "mode", h.mode | 0o4000),
    "setgid": lambda h: setattr(h, "mode", h.mode | 0o2000),
    "sticky": lambda h: setattr(h, "mode", h.mode | 0o1000),
    "uid-big": lambda h: setattr(h, "uid", 65536),
    "uid-neg": lambda h: setattr(h, "uid", -1),
    "gid-big": lambda h: setattr(h, "gid", 2**32),
    "gid-neg": lambda h: setattr(h, "gid", -1),
    "sparse": lambda h: setattr(h, "sparse", SparseMap()),
    "mtime-neg": lambda h: setattr(h, "mtime_ns", -(10**9)),
    "mtime-0": lambda h: setattr(h, "mtime_ns", 0),
    "atime-old": lambda h: setattr(h, "atime_ns", 5),
    "atime-0": lambda h: setattr(h, "atime_ns", 0),
    "atime-new": lambda h: setattr(h, "atime_ns", 2 * 10**18),
    "pax-xattr": lambda h: setattr(h, "pax", {"SCHILY.xattr.user.k": "v"}),
    "pax-path": lambda h: setattr(h, "pax", {"path": h.name}),
    "gnu-name": lambda h: setattr(h, "gnu_long_name", True),
    "nul-name": lambda h: setattr(h, "nul_in_name", True),
    "symlink": lambda h: setattr(h, "typeflag", tr.SYMLINK),
    "type-7": lambda h: setattr(h, "typeflag", tr.CONT),
    "global": lambda h: setattr(h, "typeflag", tr.XGLOBAL),
}
_ODD_NAMES = [
    "x" * 300,
    "é" * 200,
    "a/.wh.b",
    ".wh.c",
    "/abs",
    "a\\b",
    "é/x",
    "a//b",
    "./a",
    "a/../b",
    "",
    "/",
]
for _n in _ODD_NAMES:
    _TWEAKS[f"name {_n[:8]!r}"] = lambda h, n=_n: setattr(h, "name", n)


@st.composite
def _tar_headers(draw: st.DrawFn) -> tuple[tr.TarHeader, bytes]:
    """A plain file or directory header, then none, one or two things that make it unusual."""
    tf = draw(st.sampled_from([tr.REG, tr.DIR]))
    name = draw(st.sampled_from(["a/b/c", "a/", "usr/lib/x.py", "d", "a/b-c/", "a..b"]))
    h = tr.TarHeader(
        name=name,
        typeflag=tf,
        mode=draw(st.sampled_from([0o644, 0o755, 0o600])),
        uid=draw(st.sampled_from([0, 1000, 65535])),
        gid=draw(st.sampled_from([0, 50])),
        mtime_ns=10**18,
        header_name=name,
        index=draw(st.integers(1, 9)),
    )
    data = b"data" if tf == tr.REG else b""
    tweaks = st.sampled_from(["none", *sorted(_TWEAKS)])
    for tweak in (draw(tweaks), draw(tweaks) if draw(st.booleans()) else "none"):
        _TWEAKS.get(tweak, lambda h: None)(h)
    if draw(st.integers(0, 7)) == 0:
        h.name = draw(_names)
    h.header_name = h.name
    if draw(st.integers(0, 7)) == 0:
        data = b"" if data else b"stray"
    return h, data


def _same_entry(h: tr.TarHeader, data: bytes) -> None:
    fast = em.classify_plain(em.Ctx(Limits(), True, 0, "t"), h, data)
    if fast is None:
        return
    ctx = em.Ctx(Limits(), True, 0, "t")
    assert em.classify_general(ctx, h, data, {}) == fast
    assert not ctx.f.items  # the plain path never skips a finding


@settings(FAST, max_examples=4 * FAST.max_examples)  # one example is a few microseconds
@given(_tar_headers())
def test_plain_classifier_agrees_with_the_general_one(hd: tuple[tr.TarHeader, bytes]) -> None:
    _same_entry(*hd)


@pytest.mark.parametrize("typeflag", [tr.REG, tr.DIR])
@pytest.mark.parametrize("tweak", sorted(_TWEAKS))
def test_plain_classifier_agrees_on_each_unusual_feature(typeflag: str, tweak: str) -> None:
    """Every feature alone, on a plain file and a plain directory (the sampling above mixes)."""
    for data in (b"", b"data"):
        for name in ("usr/lib/x.py", "a/b/"):
            h = tr.TarHeader(name=name, typeflag=typeflag, mode=0o644, mtime_ns=10**18, index=1)
            _TWEAKS[tweak](h)
            h.header_name = h.name
            _same_entry(h, data)


def test_plain_classifier_takes_the_common_entries() -> None:
    ctx = em.Ctx(Limits(), True, 0, "t")
    for tf, data, name in ((tr.REG, b"x", "usr/lib/x"), (tr.DIR, b"", "usr/lib/")):
        h = tr.TarHeader(name=name, typeflag=tf, mode=0o755, mtime_ns=10**18)
        assert em.classify_plain(ctx, h, data) is not None
    h = tr.TarHeader(name="usr/lib/", typeflag=tr.REG)  # a file named like a dir: general
    assert em.classify_plain(ctx, h, b"x") is None
    h = tr.TarHeader(name="usr/.wh.x", typeflag=tr.REG)
    assert em.classify_plain(ctx, h, b"") is None


@FAST
@given(st.text(alphabet="ab./", max_size=12))
def test_go_clean_quick_test_agrees_with_the_general_case(p: str) -> None:
    assert nm.go_clean(p) == nm._go_clean(p)


# --- reading ---------------------------------------------------------------------------------
@FAST
@given(
    st.binary(max_size=3000),
    st.integers(0, 40),
    st.lists(st.integers(-1, 700), min_size=1, max_size=30),
)
def test_hashing_reader_peek_then_reads_return_every_byte_once(
    data: bytes, peek: int, sizes: list[int]
) -> None:
    hr = HashingReader(io.BytesIO(data))
    assert hr.peek(peek) == data[:peek]
    out = b""
    for n in sizes:
        out += hr.read(n)
        if n < 0:
            break
    hr.drain()
    out += b"" if len(out) == len(data) else data[len(out) :]  # drain() consumed the rest
    assert out == data
    assert hr.count == len(data) and hr.hexdigest() == hashlib.sha256(data).hexdigest()


def test_outer_archive_members_are_seeked_over_and_a_cut_one_is_still_caught(
    tmpdir_root: str,
) -> None:
    big = os.urandom(3 << 20)  # larger than the 1 MiB read-ahead, so it is seeked over
    layer = tb.tar(tb.member("big", big), tb.member("after", b"x"))
    path = image_archive(tmpdir_root, [layer])
    arch, src = open_archive(path)
    try:
        res = import_image(HostFS().os, src, arch.images[0], "/img")
        assert res.layers[0].stats["files"] == 2
    finally:
        src.close()
    with open(path, "rb") as f:
        whole = f.read()
    cut = os.path.join(tmpdir_root, "cut.tar")
    with open(cut, "wb") as f:
        f.write(whole[: whole.index(big[:64]) + len(big) // 2])
    with pytest.raises(Truncated):
        open_archive(cut)


# --- applying --------------------------------------------------------------------------------
def test_opaque_marker_before_its_directory_entries() -> None:
    layer = tb.tar(
        tb.member("a/b/.wh..wh..opq"), tb.dir_("a/"), tb.dir_("a/b/"), tb.member("a/b/f", b"x")
    )
    o, res = import_both([layer], strict=True)
    d = res.layer_dirs[0]
    assert o.getxattr(f"{d}/a/b", "trusted.overlay.opaque") == b"y"
    assert o.listdir(f"{d}/a/b") == ["f"]
    assert o.listdir(f"{res.rootfs}/a/b") == ["f"]


def _owners(o: object, root: str) -> dict[str, tuple[int, int, int]]:
    return {
        p: (n.uid, n.gid, n.mode) for p, n in snapshot(o, root).items() if p and n.kind == "file"
    }


OWNERS_LAYERS = [
    tb.tar(
        tb.dir_("d/"),
        tb.member("d/a", b"1"),
        tb.member("d/b", b"2", uid=1000, gid=1000),
        tb.member("d/c", b"3"),
        tb.member("d/e", b"4", uid=5),
        tb.dir_("s/", mode=0o2775, gid=50),
        tb.member("s/root", b"5"),
        tb.member("s/fifty", b"6", gid=50),
        tb.dir_("t/"),
        tb.member("t/before", b"7"),
        tb.dir_("t/", mode=0o2755, gid=60),  # listed again: new files now inherit gid 60
        tb.member("t/after", b"8"),
        tb.member("t/suid", b"9", mode=0o4755, uid=7),
        tb.member("top", b"c"),
        tb.dir_("./", mode=0o2755, gid=70),  # flattened: the root's new files now get gid 70
        tb.member("top2", b"d"),
    ),
    tb.tar(tb.member("d/later", b"a", gid=9), tb.member("s/later", b"b")),
]
OWNERS = {
    "d/a": (0, 0, 0o644),
    "d/b": (1000, 1000, 0o644),
    "d/c": (0, 0, 0o644),
    "d/e": (5, 0, 0o644),
    "s/root": (0, 0, 0o644),
    "s/fifty": (0, 50, 0o644),
    "t/before": (0, 0, 0o644),
    "t/after": (0, 0, 0o644),
    "t/suid": (7, 0, 0o4755),
    "top": (0, 0, 0o644),
    "top2": (0, 0, 0o644),
    "d/later": (0, 9, 0o644),
    "s/later": (0, 0, 0o644),
}


def test_every_file_gets_the_owner_its_header_names() -> None:
    # lenient: a directory listed twice with other attributes is refused by a strict import
    o, res = import_both(OWNERS_LAYERS, strict=False)
    assert _owners(o, res.rootfs) == OWNERS  # type: ignore[arg-type]
    merged = {
        **_owners(o, res.layer_dirs[0]),
        **_owners(o, res.layer_dirs[1]),
    }
    assert merged == OWNERS


def test_owners_on_the_real_disk_match(tmpdir_root: str, need_root: None) -> None:
    src, im = image_of(OWNERS_LAYERS)
    res = import_image(os, src, im, os.path.join(tmpdir_root, "img"), how="both", strict=False)
    assert _owners(os, res.rootfs) == OWNERS  # type: ignore[arg-type]


def test_a_failed_creation_names_the_whole_path_and_rolls_back() -> None:
    fs = HostFS()
    fs.os.mkdir("/u")
    fs.os.chown("/u", 1000, 1000)
    user = fs.as_user(uid=1000, gid=1000).os
    layer = tb.tar(
        tb.dir_("ro/", mode=0o555, uid=1000, gid=1000),
        tb.member("ro/f", b"x", uid=1000, gid=1000),
    )
    src, im = image_of([layer])
    with pytest.raises(PermissionError) as info:
        import_image(user, src, im, "/u/img")
    assert info.value.filename == "/u/img/layers/000/ro/f"
    assert fs.os.listdir("/u") == []


def test_new_file_mode_is_exact_without_chmod_and_set_with_it() -> None:
    layer = tb.tar(
        tb.member("plain", b"x", mode=0o640),
        tb.member("group-w", b"x", mode=0o664),  # umask 022 would clear g+w: chmod needed
        tb.member("sticky", b"x", mode=0o1644),
    )
    o, res = import_both([layer], strict=True)
    for root in (res.layer_dirs[0], res.rootfs):
        modes = {p: stat.S_IMODE(o.lstat(f"{root}/{p}").st_mode) for p in o.listdir(root)}
        assert modes == {"plain": 0o640, "group-w": 0o664, "sticky": 0o1644}
