"""Shared fixtures for image tests: the third-party fixture archives and fresh filesystems."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overlaysim.image.formats import open_archive
from tests.image import tarbuild as tb


def _find_fixtures() -> Path:
    """$OVERLAYSIM_FIXTURES, else ``../shared/fixtures`` beside the checkout, else /work/shared."""
    if "OVERLAYSIM_FIXTURES" in os.environ:
        return Path(os.environ["OVERLAYSIM_FIXTURES"])
    beside = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
    workplace = Path("/work/shared/fixtures")
    return beside if beside.is_dir() or not workplace.is_dir() else workplace


FIXTURES = _find_fixtures()


def fixture_path(rel: str) -> str:
    p = FIXTURES / rel
    if not p.exists():
        pytest.skip(f"fixture {rel} not found under {FIXTURES} (set OVERLAYSIM_FIXTURES)")
    return str(p)


ALL_FIXTURES = [
    "dive/test-docker-image.tar",
    "dive/test-kaniko-image.tar",
    "dive/test-oci-uncompressed-image.tar",
    "dive/test-oci-gzip-image.tar",
    "dive/test-oci-zstd-image.tar",
    "ggcr/hello-world-v25.tar",
    "ggcr/test_link.tar",
    "ggcr/test_bundle.tar",
    "ggcr/test_image_1.tar",
    "ggcr/whiteout_image.tar",
    "ggcr/whiteout_dir.tar",
    "ggcr/overwritten_file.tar",
    "ggcr/layout-test_index",
    "moby/emptyLayer.tar",
]


@pytest.fixture
def tmpdir_root() -> Iterator[str]:
    """A real temporary directory (removed afterwards)."""
    d = tempfile.mkdtemp(prefix="ovs-image-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: layers create device nodes, chown and trusted.* xattrs")


def image_archive(
    tmp: str,
    layers: list[bytes],
    *,
    name: str = "img.tar",
    compress: bool = False,
    config_extra: dict[str, Any] | None = None,
    diff_ids: list[str] | None = None,
    tags: list[str] | None = None,
) -> str:
    """A docker-save-v1.2-shaped archive around raw layer tars (diff_ids computed unless given)."""
    import hashlib

    ids = diff_ids or ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}}
    cfg.update(config_extra or {})
    cbytes = json.dumps(cfg).encode()
    chex = hashlib.sha256(cbytes).hexdigest()
    members = [tb.member(f"{chex}.json", cbytes)]
    paths = []
    for i, layer in enumerate(layers):
        data = tb.gz(layer) if compress else layer
        p = f"l{i}/layer.tar"
        members.append(tb.member(p, data))
        paths.append(p)
    man = [
        {
            "Config": f"{chex}.json",
            "RepoTags": tags if tags is not None else ["t:latest"],
            "Layers": paths,
        }
    ]
    members.append(tb.member("manifest.json", json.dumps(man).encode()))
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(tb.tar(*members))
    return path


def open_fixture(rel: str, strict: bool = True) -> tuple[Any, Any]:
    return open_archive(fixture_path(rel), strict=strict)


def layer_bytes(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
