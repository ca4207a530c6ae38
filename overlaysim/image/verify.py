"""Stream every layer blob of an image and check it against every digest that names it.

A layer is named three ways: the blob digest in a descriptor (compressed bytes), the
``blobs/sha256/<hex>`` file name, and the diff_id in the config (uncompressed tar). Docker
checks the diff_id ("invalid diffID for layer N"); registries check the blob digest. We check
all of them, plus sizes and whether the compression matches the declared media type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import DigestMismatch, Truncated
from overlaysim.image import digest as dg
from overlaysim.image.compress import CHUNK, open_stream
from overlaysim.image.findings import Findings
from overlaysim.image.limits import Limits
from overlaysim.image.model import LAYER_TYPES, ImageRef
from overlaysim.image.source import Source


@dataclass
class BlobCheck:
    """What streaming one layer blob found."""

    path: str
    blob_digest: str
    blob_size: int
    diff_id: str
    uncompressed_size: int
    compression: str
    findings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "blobDigest": self.blob_digest,
            "blobSize": self.blob_size,
            "diffID": self.diff_id,
            "uncompressedSize": self.uncompressed_size,
            "compression": self.compression,
        }


def digest_blob(src: Source, path: str, limits: Limits, what: str = "layer") -> BlobCheck:
    """Hash a blob and its decompressed stream (to the very end, trailing bytes included)."""
    import hashlib

    with src.open(path) as raw:
        hr, dec = open_stream(raw, limits, limits.max_layer_bytes, what)
        h = hashlib.sha256()
        while True:
            chunk = dec.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
        hr.drain()
    size = src.size(path)
    if hr.count != size:
        raise Truncated(f"{what}: read {hr.count} of {size} bytes")
    return BlobCheck(
        path,
        "sha256:" + hr.hexdigest(),
        hr.count,
        "sha256:" + h.hexdigest(),
        dec.out_count,
        dec.kind,
    )


def diff_id_of(src: Source, path: str, limits: Limits) -> str:
    return digest_blob(src, path, limits).diff_id


def verify_image(
    src: Source, image: ImageRef, limits: Limits, findings: Findings | None = None
) -> list[BlobCheck]:
    """Check every layer; raise DigestMismatch naming the first one that disagrees."""
    out = []
    total = 0
    for layer in image.layers:
        what = f"layer {layer.index} ({layer.path})"
        bc = digest_blob(src, layer.path, limits, what)
        total += bc.uncompressed_size
        if total > limits.max_total_bytes:
            from overlaysim.errors import LimitExceeded

            raise LimitExceeded(f"image: more than {limits.max_total_bytes} decompressed bytes")
        if layer.digest is not None and bc.blob_digest != layer.digest:
            raise DigestMismatch(
                f"{what}: blob hashes to {bc.blob_digest}, expected {layer.digest}"
            )
        if layer.size is not None and bc.blob_size != layer.size:
            raise DigestMismatch(
                f"{what}: blob has {bc.blob_size} bytes, the descriptor says {layer.size}"
            )
        if bc.diff_id != layer.diff_id:
            raise DigestMismatch(
                f"invalid diffID for layer {layer.index}: expected {layer.diff_id}, got {bc.diff_id}"
            )
        declared = LAYER_TYPES.get(layer.media_type)
        if declared is not None and declared != bc.compression and findings is not None:
            findings.add(
                "compression-mismatch",
                f"media type says {declared}, the blob is {bc.compression}",
                layer.path,
                layer.index,
            )
        out.append(bc)
    return out


def layer_blob(src: Source, im: ImageRef, i: int) -> bytes:
    """Layer ``i`` of ``im``, decompressed, checked against its diff_id (dockerd's message)."""
    with src.open(im.layers[i].path) as raw:
        _, dec = open_stream(raw, src.limits, src.limits.max_layer_bytes)
        data = dec.read()
    got = dg.sha256(data)
    if got != im.layers[i].diff_id:
        raise DigestMismatch(
            f'invalid diffID for layer {i}: expected "{im.layers[i].diff_id}", got "{got}"'
        )
    return bytes(data)
