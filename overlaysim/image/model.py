"""What an image archive holds, independent of its on-disk format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overlaysim.image.findings import Findings

# layer media types and their declared compression
LAYER_TYPES: dict[str, str] = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


@dataclass
class LayerRef:
    """One layer of one image: where its blob is and what it must hash to."""

    index: int
    path: str
    diff_id: str
    media_type: str = OCI_LAYER
    digest: str | None = None  # declared digest of the (possibly compressed) blob
    size: int | None = None  # declared size of the blob
    v1_id: str | None = None
    urls: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "diffID": self.diff_id,
            "v1ID": self.v1_id,
        }


@dataclass
class ImageRef:
    """One image found in an archive or layout."""

    format: str
    config_path: str
    config_bytes: bytes
    config: dict[str, Any]
    image_id: str
    layers: list[LayerRef]
    repo_tags: list[str] = field(default_factory=list)
    ref_name: str | None = None
    manifest_digest: str | None = None
    manifest_media_type: str | None = None
    parent: str | None = None
    #: platform from the index descriptor, if any (otherwise the config's)
    descriptor_platform: dict[str, Any] | None = None

    @property
    def platform(self) -> str:
        p = self.descriptor_platform or self.config
        parts = [str(p.get("os") or "unknown"), str(p.get("architecture") or "unknown")]
        if p.get("variant"):
            parts.append(str(p["variant"]))
        return "/".join(parts)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    def name(self) -> str:
        if self.repo_tags:
            return self.repo_tags[0]
        if self.ref_name:
            return self.ref_name
        return self.image_id[:19]


@dataclass
class ImageArchive:
    """The result of opening an archive or directory: its format, images and findings."""

    format: str
    path: str
    images: list[ImageRef]
    findings: Findings = field(default_factory=Findings)
    #: every blob digest a manifest or index referenced (for verify)
    descriptors: list[dict[str, Any]] = field(default_factory=list)
