"""Export: Docker's native Diff encoding, docker export, docker diff, byte-exact round trips."""

from __future__ import annotations

import hashlib
import io
import os
import stat

import pytest

from overlaysim import HostFS
from overlaysim.image.export import changes, layer_tar, rootfs_tar
from overlaysim.image.importer import import_image
from overlaysim.image.layer import parse_layer
from overlaysim.image.limits import Limits
from overlaysim.image.tar_reader import TarReader
from overlaysim.image.tree import snapshot
from tests.image.conftest import ALL_FIXTURES, open_fixture


def _tar_of(o: object, root: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    layer_tar(o, root, buf, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def _headers(data: bytes) -> list[tuple[str, str, int, int, str]]:
    r = TarReader(io.BytesIO(data), Limits())
    return [(h.name, h.typeflag, h.mode, h.mtime_ns // 10**9, h.linkname) for h in r]


@pytest.mark.parametrize("rel", ALL_FIXTURES)
def test_import_then_reassemble_gives_byte_identical_layers(rel: str) -> None:
    arch, src = open_fixture(rel)
    try:
        for im in arch.images:
            o = HostFS().os
            res = import_image(o, src, im, "/img", how="native")
            for layer in res.layers:
                assert layer.tarsplit is not None
                data = layer.tarsplit.assemble(o, layer.diff_id)
                assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.diff_id
    finally:
        src.close()


def test_native_diff_encoding_reproduces_docker_1809_layers() -> None:
    arch, src = open_fixture("dive/test-docker-image.tar")
    try:
        im = arch.images[0]
        o = HostFS().os
        res = import_image(o, src, im, "/img", how="native")
        same = [
            "sha256:" + hashlib.sha256(_tar_of(o, d, legacy_mode_bits=True)).hexdigest()
            == ref.diff_id
            for d, ref in zip(res.layer_dirs, im.layers, strict=True)
        ]
    finally:
        src.close()
    # the two layers that differ were written by Docker's *naive* differ (whiteout mode 0)
    assert [i for i, ok in enumerate(same) if not ok] == [7, 9]


def test_whiteouts_opaque_dirs_and_hardlinks_are_encoded_like_go_archive() -> None:
    fs = HostFS()
    o = fs.os
    o.makedirs("/u/d/sub")
    o.setxattr("/u/d", "trusted.overlay.opaque", b"y")
    o.chmod("/u/d", 0o750)
    o.mknod("/u/gone", stat.S_IFCHR, os.makedev(0, 0))
    o.link("/u/gone", "/u/d/gone2")  # the kernel shares one inode between whiteouts
    with fs.open("/u/f", "w") as f:
        f.write("data")
    o.link("/u/f", "/u/f2")
    o.utime("/u/f", ns=(0, 1_700_000_000_900_000_000))
    hs = _headers(_tar_of(o, "/u"))
    names = [h[0] for h in hs]
    assert names == ["d/", "d/.wh..wh..opq", "d/.wh.gone2", "d/sub/", "f", "f2", ".wh.gone"]
    by = {h[0]: h for h in hs}
    assert by["d/.wh..wh..opq"][1:4] == ("0", 0o750, 0)
    assert by["d/.wh.gone2"][1:3] == ("0", 0o600)
    assert by[".wh.gone"][1] == "0" and by[".wh.gone"][4] == "d/gone2"  # Go keeps the link name
    assert by["f"][3] == 1_700_000_000 and by["f2"][1] == "1" and by["f2"][4] == "f"


def test_security_capability_v3_is_written_as_v2() -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/u")
    with fs.open("/u/ping", "w") as f:
        f.write("x")
    v3 = bytes([0, 0, 0, 3]) + bytes(16) + (1000).to_bytes(4, "little")
    o.setxattr("/u/ping", "security.capability", v3)
    data = _tar_of(o, "/u")
    r = TarReader(io.BytesIO(data), Limits())
    h = next(iter(r))
    cap = h.xattrs["security.capability"].encode("latin-1")
    assert len(cap) == 20 and cap[3] == 2


def test_docker_export_keeps_devices_and_has_no_root_entry() -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/r")
    o.mknod("/r/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    buf = io.BytesIO()
    rootfs_tar(o, "/r", buf)
    r = TarReader(io.BytesIO(buf.getvalue()), Limits())
    (h,) = list(r)
    assert (h.name, h.typeflag, h.devmajor, h.devminor) == ("null", "3", 1, 3)


def test_exported_layer_reimports_to_the_same_tree() -> None:
    arch, src = open_fixture("dive/test-kaniko-image.tar")
    try:
        o = HostFS().os
        res = import_image(o, src, arch.images[0], "/img", how="native")
    finally:
        src.close()
    for d in res.layer_dirs:
        data = _tar_of(o, d)
        plan = parse_layer(io.BytesIO(data), Limits())
        assert _tar_of(o, d) == data  # deterministic
        o2 = HostFS().os
        o2.mkdir("/x")
        from overlaysim.image.apply import Applier
        from overlaysim.image.findings import Findings

        Applier(o2, "/x", "native", Findings()).apply(plan)
        a = {
            p: (n.kind, n.mode, n.uid, n.gid, n.digest, n.link, n.rdev)
            for p, n in snapshot(o, d).items()
        }
        b = {
            p: (n.kind, n.mode, n.uid, n.gid, n.digest, n.link, n.rdev)
            for p, n in snapshot(o2, "/x").items()
        }
        a.pop("")
        b.pop("")
        assert a == b


def _tree(fs: HostFS, root: str, files: dict[str, str | None]) -> None:
    o = fs.os
    o.makedirs(root, exist_ok=True)
    for p, content in files.items():
        full = f"{root}/{p}"
        if content is None:
            o.makedirs(full, exist_ok=True)
        else:
            o.makedirs(os.path.dirname(full), exist_ok=True)
            with fs.open(full, "w") as f:
                f.write(content)
            o.utime(full, ns=(10**18, 10**18))


def test_docker_diff_rules() -> None:
    fs = HostFS()
    _tree(
        fs,
        "/old",
        {
            "etc": None,
            "etc/hosts": "a",
            "etc/gone": "x",
            "var": None,
            "var/log": None,
            "var/log/x": "1",
            "keep": "k",
        },
    )
    _tree(
        fs,
        "/new",
        {
            "etc": None,
            "etc/hosts": "ab",
            "var": None,
            "var/log": None,
            "var/log/x": "1",
            "keep": "k",
            "new": None,
            "new/deep": "n",
        },
    )
    o = fs.os
    o.chmod("/new/keep", 0o600)
    got = [str(c) for c in changes(snapshot(o, "/old"), snapshot(o, "/new"))]
    assert got == ["C /etc", "D /etc/gone", "C /etc/hosts", "C /keep", "A /new", "A /new/deep"]


def test_docker_diff_whole_second_mtimes_are_equal() -> None:
    fs = HostFS()
    _tree(fs, "/a", {"f": "x"})
    _tree(fs, "/b", {"f": "x"})
    o = fs.os
    o.utime("/a/f", ns=(5 * 10**9, 5 * 10**9))
    o.utime("/b/f", ns=(5 * 10**9 + 123, 5 * 10**9 + 123))
    assert changes(snapshot(o, "/a"), snapshot(o, "/b")) == []
    o.utime("/a/f", ns=(5 * 10**9 + 1, 5 * 10**9 + 1))
    assert [str(c) for c in changes(snapshot(o, "/a"), snapshot(o, "/b"))] == ["C /f"]


def test_tarsplit_storage_round_trip() -> None:
    from overlaysim.image.tarsplit import TarSplit

    arch, src = open_fixture("ggcr/test_link.tar")
    try:
        o = HostFS().os
        res = import_image(o, src, arch.images[1], "/img", how="native")
    finally:
        src.close()
    for layer in res.layers:
        ts = layer.tarsplit
        assert ts is not None
        paths = {f.name: f.path for f in ts.files()}
        again = TarSplit.from_json_gz(ts.to_json_gz(), paths)
        assert again.assemble(o, layer.diff_id) == ts.assemble(o)
