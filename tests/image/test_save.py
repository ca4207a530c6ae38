"""Writers: docker save v1.2 and >= 25 byte-identical to real saves; OCI layouts re-import."""

from __future__ import annotations

import io
import os

import pytest

from overlaysim.image.compress import open_stream
from overlaysim.image.formats import open_archive
from overlaysim.image.model import ImageRef
from overlaysim.image.save import (
    SaveOptions,
    oci_archive,
    oci_layout_files,
    save_v12,
    save_v25,
    write_oci_dir,
)
from overlaysim.image.source import Source
from overlaysim.image.verify import verify_image
from tests.image.conftest import ALL_FIXTURES, fixture_path, open_fixture


def _layer_bytes(src: Source):  # type: ignore[no-untyped-def]
    def get(im: ImageRef, i: int) -> bytes:
        with src.open(im.layers[i].path) as raw:
            return open_stream(raw, src.limits, src.limits.max_layer_bytes)[1].read()

    return get


@pytest.mark.parametrize(
    ("rel", "writer", "opts"),
    [
        (
            "dive/test-docker-image.tar",
            save_v12,
            SaveOptions(legacy_mode_bits=True, tz_offset_seconds=-5 * 3600),
        ),
        ("ggcr/test_link.tar", save_v12, SaveOptions(legacy_mode_bits=True, now=1618972038)),
        (
            "ggcr/hello-world-v25.tar",
            save_v25,
            SaveOptions(now=1706548216, null_untagged_index=True),
        ),
    ],
)
def test_real_docker_saves_are_reproduced_byte_for_byte(
    rel: str, writer, opts: SaveOptions
) -> None:  # type: ignore[no-untyped-def]
    arch, src = open_fixture(rel)
    try:
        buf = io.BytesIO()
        writer(arch.images, _layer_bytes(src), buf, opts)
    finally:
        src.close()
    with open(fixture_path(rel), "rb") as f:
        assert buf.getvalue() == f.read()


@pytest.mark.parametrize("rel", ALL_FIXTURES)
@pytest.mark.parametrize("fmt", ["v1.2", "v25", "oci-archive", "oci-dir"])
def test_convert_round_trip_keeps_ids_and_layers(rel: str, fmt: str, tmpdir_root: str) -> None:
    arch, src = open_fixture(rel)
    try:
        images = arch.images
        lb = _layer_bytes(src)
        out = os.path.join(tmpdir_root, "out")
        if fmt == "oci-dir":
            write_oci_dir(out, *oci_layout_files(images, lb))
        else:
            with open(out, "wb") as f:
                if fmt == "v1.2":
                    save_v12(images, lb, f)
                elif fmt == "v25":
                    save_v25(images, lb, f)
                else:
                    oci_archive(*oci_layout_files(images, lb), f)
    finally:
        src.close()
    arch2, src2 = open_archive(out)
    try:
        got = sorted({(im.image_id, tuple(im.diff_ids)) for im in arch2.images})
        assert got == sorted({(im.image_id, tuple(im.diff_ids)) for im in images})
        for im in arch2.images:
            verify_image(src2, im, src2.limits)
    finally:
        src2.close()


def test_skopeo_style_layout_has_gzip_layers_and_compact_json(tmpdir_root: str) -> None:
    arch, src = open_fixture("dive/test-oci-zstd-image.tar")
    try:
        out = os.path.join(tmpdir_root, "layout")
        write_oci_dir(out, *oci_layout_files(arch.images, _layer_bytes(src)))
    finally:
        src.close()
    with open(os.path.join(out, "oci-layout"), "rb") as f:
        assert f.read() == b'{"imageLayoutVersion":"1.0.0"}'
    with open(os.path.join(out, "index.json"), "rb") as f:
        idx = f.read()
    assert idx.startswith(
        b'{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json"'
    )
    arch2, src2 = open_archive(out)
    src2.close()
    assert arch2.images[0].layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
