"""Applying layers: Docker's native overlay2 format, flattening, and where they disagree."""

from __future__ import annotations

import os
import stat

import pytest

from overlaysim import HostFS
from overlaysim.image.formats import select
from overlaysim.image.importer import divergence, import_image, merged_view
from overlaysim.image.tree import snapshot
from tests.image import tarbuild as tb
from tests.image.conftest import ALL_FIXTURES, open_fixture
from tests.image.helpers import import_both

BUSYBOX_FREE = {
    "somefile.txt",
    "root/saved.txt",
    "root/.saved.txt",
    "root/.data/tag.sh",
    "root/.data/saved.again2.txt",
    "tmp/saved.again1.txt",
}


def _import_fixture(rel: str, how: str = "both", ref: str | None = None) -> tuple[object, object]:
    arch, src = open_fixture(rel)
    try:
        im = select(arch, ref) if ref else arch.images[0]
        o = HostFS().os
        return o, import_image(o, src, im, "/img", how=how)  # type: ignore[arg-type]
    finally:
        src.close()


@pytest.mark.parametrize("rel", ["dive/test-docker-image.tar", "dive/test-kaniko-image.tar"])
def test_dive_merged_tree_matches_the_dockerfile(rel: str) -> None:
    o, res = _import_fixture(rel)
    merged = merged_view(o, res)  # type: ignore[arg-type]
    files = {
        p
        for p, n in merged.items()
        if not p.startswith(("bin", "usr", "etc", "var", "home", "dev")) and n.kind == "file"
    }
    script = "root/.data/test.sh" if "docker" in rel else "root/.data/test-coverage.sh"
    assert files == BUSYBOX_FREE | {script}
    assert merged["root/saved.txt"].mode == 0o755
    assert "root/example" not in merged
    assert divergence(o, res) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("ggcr/whiteout_dir.tar", {"a", "a/baz", "b", "b/bar"}),
        ("ggcr/whiteout_image.tar", {"bar.txt"}),
        ("ggcr/overwritten_file.tar", {"bar.txt", "foo.txt"}),
    ],
)
def test_ggcr_whiteout_fixtures(rel: str, expected: set[str]) -> None:
    o, res = _import_fixture(rel)
    merged = merged_view(o, res)  # type: ignore[arg-type]
    assert set(merged) - {""} == expected
    assert divergence(o, res) == []  # type: ignore[arg-type]
    if rel.endswith("overwritten_file.tar"):
        assert merged["foo.txt"].kind == "symlink" and merged["foo.txt"].link == "bar.txt"


@pytest.mark.parametrize("rel", ALL_FIXTURES)
def test_every_fixture_imports_both_ways_without_divergence(rel: str) -> None:
    o, res = _import_fixture(rel)
    assert divergence(o, res) == []  # type: ignore[arg-type]


def test_native_layer_dirs_hold_overlay_whiteouts() -> None:
    o, res = _import_fixture("dive/test-docker-image.tar", how="native")
    layer9 = res.layer_dirs[9]  # type: ignore[attr-defined]
    st = o.lstat(layer9 + "/root/example")  # type: ignore[attr-defined]
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and stat.S_IMODE(st.st_mode) == 0


def test_opaque_marker_becomes_xattr_natively_and_deletes_when_flat() -> None:
    lower = tb.tar(tb.dir_("d/"), tb.member("d/old", b"1"), tb.member("d/keep", b"1"))
    upper = tb.tar(tb.dir_("d/"), tb.member("d/new", b"2"), tb.member("d/.wh..wh..opq"))
    o, res = import_both([lower, upper], strict=True)
    assert o.getxattr(res.layer_dirs[1] + "/d", "trusted.overlay.opaque") == b"y"
    assert sorted(o.listdir(res.rootfs + "/d")) == ["new"]
    assert set(merged_view(o, res)) == {"", "d", "d/new"}
    assert divergence(o, res) == []


def test_symlinked_parent_diverges() -> None:
    l1 = tb.tar(tb.dir_("etc/"), tb.symlink("a", "/etc"))
    l2 = tb.tar(tb.member("a/passwd", b"pw"))
    o, res = import_both([l1, l2], strict=True)
    divs = {d.path: d for d in divergence(o, res)}
    assert set(divs) == {"a", "a/passwd", "etc/passwd"}
    assert divs["a"].native.kind == "dir" and divs["a"].flat.kind == "symlink"  # type: ignore[union-attr]
    assert "through-symlink" in res.findings.codes()


@pytest.mark.parametrize("order", ["whiteout-first", "file-first"])
def test_whiteout_beside_file_in_one_layer_diverges(order: str) -> None:
    lower = tb.tar(tb.member("f", b"lower"))
    pair = [tb.member(".wh.f"), tb.member("f", b"upper")]
    if order == "file-first":
        pair.reverse()
    o, res = import_both([lower, tb.tar(*pair)], strict=False)
    assert "same-layer-conflict" in res.findings.codes()
    merged = merged_view(o, res)
    assert merged["f"].size == 5  # overlay2 keeps the layer's own file either way
    flat = snapshot(o, res.rootfs)
    assert ("f" in flat) == (order == "whiteout-first")  # the flattener applies in archive order
    assert bool(divergence(o, res)) == (order == "file-first")


def test_char_0_0_device_is_a_whiteout_only_for_overlay() -> None:
    lower = tb.tar(tb.member("f", b"data"))
    upper = tb.tar(tb.header("f", typeflag=b"3", mode=0o600))
    o, res = import_both([lower, upper], strict=True)
    assert "char-0-0" in res.findings.codes()
    (d,) = divergence(o, res)
    assert d.path == "f" and d.native is None and d.flat.kind == "char"  # type: ignore[union-attr]


def test_hardlink_to_a_lower_file_works_only_flattened() -> None:
    lower = tb.tar(tb.member("f", b"data"))
    upper = tb.tar(tb.hardlink("g", "f"))
    o, res = import_both([lower, upper], strict=False)
    assert "dangling-hardlink" in res.findings.codes()
    assert [d.path for d in divergence(o, res)] == ["g"]


def test_root_opaque_marker_diverges() -> None:
    lower = tb.tar(tb.member("old", b"1"))
    upper = tb.tar(tb.member(".wh..wh..opq"), tb.member("new", b"2"))
    o, res = import_both([lower, upper], strict=True)
    assert "opaque-root" in res.findings.codes()
    assert [d.path for d in divergence(o, res)] == ["old"]


def test_failed_import_leaves_the_filesystem_unchanged() -> None:
    good = tb.tar(tb.member("a", b"1"))
    bad = tb.tar(tb.member("../escape", b"x"))
    fs = HostFS()
    o = fs.os
    o.mkdir("/keep")
    before = snapshot(o, "/")
    from overlaysim.errors import PathEscape

    with pytest.raises(PathEscape):
        import_both([good, bad], strict=True, o=o)
    assert snapshot(o, "/") == before


def test_real_disk_and_hostfs_give_the_same_trees(tmpdir_root: str, need_root: None) -> None:
    arch, src = open_fixture("dive/test-docker-image.tar")
    try:
        im = arch.images[0]
        o = HostFS().os
        a = import_image(o, src, im, "/img", how="both")
        b = import_image(os, src, im, os.path.join(tmpdir_root, "img"), how="both")
    finally:
        src.close()

    def comparable(tree: dict) -> dict:  # type: ignore[type-arg]
        # directory times and whiteout times come from the clock, not from the layer
        return {
            p: (
                n.kind,
                n.mode,
                n.uid,
                n.gid,
                n.size,
                n.digest,
                n.link,
                n.rdev,
                n.xattrs,
                None if n.kind == "dir" or n.is_whiteout else n.mtime_ns,
            )
            for p, n in tree.items()
        }

    for da, db in zip(a.layer_dirs, b.layer_dirs, strict=True):
        assert comparable(snapshot(o, da)) == comparable(snapshot(os, db))
    assert comparable(snapshot(o, a.rootfs)) == comparable(snapshot(os, b.rootfs))  # type: ignore[arg-type]


MERGED = {
    "dive/test-oci-uncompressed-image.tar": [{"README.md"}],
    "dive/test-oci-gzip-image.tar": [{"README.md"}],
    "dive/test-oci-zstd-image.tar": [{"README.md"}],
    "ggcr/hello-world-v25.tar": [{"hello"}],
    "ggcr/test_link.tar": [{"bar", "foo"}, {"bar", "foo", "test"}],
    "ggcr/test_bundle.tar": [{"bat", "baz"}, {"bar", "foo"}],
    "ggcr/test_image_1.tar": [{"bar", "foo"}],
    "ggcr/layout-test_index": [{"bar", "foo"}] * 3,
    "moby/emptyLayer.tar": [{"tmp", "tmp/foo"}],
}


@pytest.mark.parametrize("rel", sorted(MERGED))
def test_small_fixture_merged_trees_match_their_listings(rel: str) -> None:
    arch, src = open_fixture(rel)
    try:
        got = []
        for im in arch.images:
            o = HostFS().os
            got.append(set(merged_view(o, import_image(o, src, im, "/img"))) - {""})
    finally:
        src.close()
    assert got == MERGED[rel]
