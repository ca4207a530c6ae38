"""Small builders shared by the image tests: images from raw layers, imports into HostFS."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from overlaysim import HostFS
from overlaysim.image.importer import ImportResult, import_image
from overlaysim.image.limits import Limits
from overlaysim.image.model import ImageRef, LayerRef
from overlaysim.image.source import Source


class MemSource(Source):
    """A Source over in-memory blobs (for tests that do not need an archive on disk)."""

    def __init__(
        self, blobs: dict[str, bytes], limits: Limits | None = None, strict: bool = True
    ) -> None:
        from overlaysim.image.findings import Findings
        from overlaysim.image.source import _Member

        super().__init__(limits or Limits(), Findings(), strict)
        self.label = "mem"
        self._blobs = blobs
        self._m = {k: _Member("file", 0, len(v)) for k, v in blobs.items()}

    def _member(self, path: str) -> Any:
        return self._m.get(path)

    def files(self) -> list[str]:
        return sorted(self._blobs)

    def _open_member(self, m: Any, path: str) -> Any:
        return io.BytesIO(self._blobs[path])


def image_of(layers: list[bytes], tags: list[str] | None = None) -> tuple[MemSource, ImageRef]:
    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cb = json.dumps(cfg).encode()
    blobs = {f"l{i}": x for i, x in enumerate(layers)}
    refs = [LayerRef(i, f"l{i}", d) for i, d in enumerate(diff_ids)]
    im = ImageRef(
        "test", "config", cb, cfg, "sha256:" + hashlib.sha256(cb).hexdigest(), refs, tags or []
    )
    return MemSource(blobs), im


def import_both(
    layers: list[bytes], strict: bool = False, o: Any = None, target: str = "/img"
) -> tuple[Any, ImportResult]:
    src, im = image_of(layers)
    if o is None:
        o = HostFS().os
    return o, import_image(o, src, im, target, how="both", strict=strict)
