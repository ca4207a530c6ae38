"""Every generation of archive is recognised; IDs, ChainIDs and v1 IDs are Docker's."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from overlaysim.errors import DigestMismatch, ImageError
from overlaysim.image import digest as dg
from overlaysim.image.formats import open_archive, select
from overlaysim.image.v1compat import legacy_layer_ids
from overlaysim.image.verify import verify_image
from tests.image.conftest import ALL_FIXTURES, fixture_path, open_fixture

EXPECTED_FORMAT = {
    "dive/test-docker-image.tar": ("docker-save-v1.2", 1, [14]),
    "dive/test-kaniko-image.tar": ("docker-save-v1.2", 1, [14]),
    "dive/test-oci-uncompressed-image.tar": ("oci-archive", 1, [1]),
    "dive/test-oci-gzip-image.tar": ("oci-archive", 1, [1]),
    "dive/test-oci-zstd-image.tar": ("oci-archive", 1, [1]),
    "ggcr/hello-world-v25.tar": ("docker-save-v25", 1, [1]),
    "ggcr/test_link.tar": ("docker-save-v1.2", 2, [1, 2]),
    "ggcr/test_bundle.tar": ("docker-save-v1.2", 2, [1, 1]),
    "ggcr/test_image_1.tar": ("docker-save-v1.2", 1, [1]),
    "ggcr/whiteout_image.tar": ("docker-save-v1.2", 1, [3]),
    "ggcr/whiteout_dir.tar": ("docker-save-v1.2", 1, [4]),
    "ggcr/overwritten_file.tar": ("docker-save-v1.2", 1, [3]),
    "ggcr/layout-test_index": ("oci-layout", 3, [1, 1, 1]),
    "moby/emptyLayer.tar": ("docker-legacy", 1, [3]),
}


@pytest.mark.parametrize("rel", ALL_FIXTURES)
def test_every_fixture_opens_and_verifies(rel: str) -> None:
    fmt, n_images, n_layers = EXPECTED_FORMAT[rel]
    arch, src = open_fixture(rel)
    try:
        assert arch.format == fmt
        assert len(arch.images) == n_images
        assert [len(im.layers) for im in arch.images] == n_layers
        for im in arch.images:
            assert im.image_id == dg.image_id(im.config_bytes)
            checks = verify_image(src, im, src.limits)
            assert [c.diff_id for c in checks] == im.diff_ids
    finally:
        src.close()


def test_image_ids_and_chain_ids_match_docker() -> None:
    cases = {
        "dive/test-docker-image.tar": ("sha256:75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a",
                                       "sha256:a1c47b1903e5c10581a02d31a80056a7534202ba4d4a352f5c737747d0db4ca7"),
        "dive/test-kaniko-image.tar": (None, "sha256:d6439033223acdf54869a09c732a7d80f43dab37a013925bb02805d6c4d5ba9d"),
        "ggcr/whiteout_dir.tar": (None, "sha256:24b943d0ba9bef5d2363e2fda247cb84e3783eb7177df4934d6dd3ee4ceff9e2"),
        "ggcr/whiteout_image.tar": (None, "sha256:652d3150776547cf040a2aa054026699ba17627a2d22a9f210a68d0f246bb004"),
    }  # fmt: skip
    for rel, (iid, top_chain) in cases.items():
        arch, src = open_fixture(rel)
        src.close()
        im = arch.images[0]
        if iid:
            assert im.image_id == iid
        assert dg.chain_ids(im.diff_ids)[-1] == top_chain
    arch, src = open_fixture("ggcr/test_link.tar")
    src.close()
    im3 = select(arch, "bazel/v1/tarball:test_image_3")
    assert (
        dg.chain_ids(im3.diff_ids)[-1]
        == "sha256:e10430d6eeebc50796f4c7435259699ea3bde509b50ca259d82abe9d6fbd99bd"
    )
    assert im3.parent == select(arch, "bazel/v1/tarball:test_image_1").image_id


@pytest.mark.parametrize(
    ("rel", "tz"), [("dive/test-docker-image.tar", -5 * 3600), ("ggcr/test_link.tar", 0)]
)
def test_v1_layer_ids_and_json_reproduce_real_saves(rel: str, tz: int) -> None:
    arch, src = open_fixture(rel)
    try:
        with tarfile.open(fixture_path(rel)) as t:
            for im in arch.images:
                ids = legacy_layer_ids(im.config, dg.chain_ids(im.diff_ids), tz)
                assert [v for v, _ in ids] == [layer.v1_id for layer in im.layers]
                for vid, js in ids:
                    assert t.extractfile(f"{vid}/json").read() == js  # type: ignore[union-attr]
    finally:
        src.close()


def test_kaniko_config_member_named_by_digest_is_checked(tmpdir_root: str) -> None:
    arch, src = open_fixture("dive/test-kaniko-image.tar")
    src.close()
    assert arch.images[0].config_path.startswith("sha256:")
    # same archive with a config whose name claims another digest
    with tarfile.open(fixture_path("dive/test-kaniko-image.tar")) as t:
        names = t.getnames()
        out = os.path.join(tmpdir_root, "bad.tar")
        with tarfile.open(out, "w") as o:
            for m in t.getmembers():
                data = t.extractfile(m).read()  # type: ignore[union-attr]
                if m.name.startswith("sha256:"):
                    data = data.replace(b'"os":"linux"', b'"os":"Linux"')
                    m.size = len(data)
                o.addfile(m, __import__("io").BytesIO(data))
    assert names
    with pytest.raises(DigestMismatch):
        open_archive(out)


def test_oci_layout_walks_nested_indexes_and_skips_unknown_descriptors() -> None:
    arch, src = open_fixture("ggcr/layout-test_index")
    src.close()
    assert sorted(im.ref_name or "" for im in arch.images) == ["1", "1", "4"]
    assert "unknown-descriptor" in arch.findings.codes()
    assert all(im.manifest_media_type for im in arch.images)


def test_platform_selection() -> None:
    arch, src = open_fixture("dive/test-oci-gzip-image.tar")
    src.close()
    assert select(arch, platform="linux/arm64").platform == "linux/arm64"
    with pytest.raises(ImageError, match="available: linux/arm64"):
        select(arch, platform="linux/amd64")


def test_docker_25_untagged_save() -> None:
    arch, src = open_fixture("ggcr/hello-world-v25.tar")
    src.close()
    im = arch.images[0]
    assert im.repo_tags == [] and im.layers[0].digest == im.layers[0].diff_id
    assert im.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar"


def test_legacy_parent_chain_orders_layers() -> None:
    arch, src = open_fixture("moby/emptyLayer.tar")
    src.close()
    im = arch.images[0]
    assert [layer.v1_id[:8] for layer in im.layers] == ["17d1436e", "9c7cb910", "25445a0f"]  # type: ignore[index]
    assert im.repo_tags == ["matthughes/library-centos:6-2015.03.20"]
    cfg = json.loads(im.config_bytes)
    assert (
        cfg["rootfs"]["diff_ids"][1]
        == "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert len(cfg["history"]) == 3
