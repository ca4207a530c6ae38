"""Every fixture archive loaded on both machines: load output, images, image inspect, history
and the overlay2 tree must match the real dockerd's."""

from __future__ import annotations

import pytest

from overlaysim.testing.dockerd.compare import IMAGE_FIELDS, Pair
from tests.docker_oracle.conftest import fixture_path

pytestmark = pytest.mark.dockerd

ARCHIVES = [
    "dive/test-docker-image.tar", "dive/test-kaniko-image.tar",
    "dive/test-oci-uncompressed-image.tar", "dive/test-oci-gzip-image.tar",
    "dive/test-oci-zstd-image.tar", "ggcr/hello-world-v25.tar", "ggcr/test_link.tar",
    "ggcr/test_bundle.tar", "ggcr/test_image_1.tar", "ggcr/whiteout_image.tar",
    "ggcr/whiteout_dir.tar", "ggcr/overwritten_file.tar", "moby/emptyLayer.tar",
]  # fmt: skip


def loaded(text: str) -> list[str]:
    """The references ``docker load`` printed (tags, or image ids of untagged images)."""
    out = []
    for line in text.splitlines():
        for prefix in ("Loaded image: ", "Loaded image ID: "):
            if line.startswith(prefix):
                out.append(line[len(prefix):].strip())
    return out


@pytest.mark.parametrize("archive", ARCHIVES)
def test_load_matches_dockerd(pair: Pair, archive: str) -> None:
    path = fixture_path(archive)
    real, _ = pair.run("load", "-i", path)
    pair.run("images")
    pair.run("images", "-a", "--no-trunc")
    for ref in loaded(real.text):
        pair.run("image", "inspect", ref, how="json", fields=IMAGE_FIELDS)
        pair.run("history", ref)
        pair.run("history", "--no-trunc", ref)
    pair.check_tree("after load")
    for ref in loaded(real.text):
        pair.run("save", ref, how="save")
    pair.check_tree("after save")
    for ref in loaded(real.text):
        pair.run("rmi", ref)
    pair.check_tree("after rmi")
    pair.assert_same()


def test_load_twice_and_from_stdin(pair: Pair) -> None:
    path = fixture_path("dive/test-docker-image.tar")
    pair.run("load", "-i", path)
    with open(path, "rb") as f:
        pair.run("load", stdin=f.read())
    pair.run("images")
    pair.check_tree()
    pair.assert_same()
