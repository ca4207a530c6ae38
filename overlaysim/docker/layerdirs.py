"""An image's layers as directories of the overlay2 driver, read from the layerdb once for
every room that shows them (explain, dive, compare): rootfs diff_ids -> chain ids -> the
layer's cache id -> ``overlay2/<cache id>/diff``, paired with the history that made it."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import DaemonError
from overlaysim.image import digest as dg


@dataclass(frozen=True)
class ImageLayerDir:
    """One layer of an image, ``index`` 0 being the bottom one."""

    index: int
    count: int
    cache_id: str
    diff_id: str
    dir: str  # overlay2/<cache_id>/diff in the world's HostFS
    created_by: str  # "" when the history does not pair one entry with each layer

    @property
    def label(self) -> str:
        return f"image layer {self.index + 1}/{self.count}"


def created_by(config: dict[str, Any], count: int) -> list[str]:
    """``created_by`` of the history entries that made a layer (``empty_layer`` ones made
    none), one per layer; all "" when their number is not the layers' (a hand-made config)."""
    rows = [str(h.get("created_by") or "") for h in config.get("history") or []
            if not h.get("empty_layer")]  # fmt: skip
    return rows if len(rows) == count else [""] * count


def image_layer_dirs(d: Any, image_id: str) -> list[ImageLayerDir]:
    """The layers of ``image_id`` in the daemon ``d``, bottom first; DaemonError when the
    layerdb lacks one (a world edited by hand)."""
    config = d.images.config(image_id)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    commands = created_by(config, len(diff_ids))
    out: list[ImageLayerDir] = []
    for i, chain in enumerate(dg.chain_ids(diff_ids) if diff_ids else []):
        found = d.layers.lookup(chain)
        if found is None:
            raise DaemonError(f"image {image_id[:19]}: layer {chain} is missing from the layerdb")
        path = posixpath.join(d.driver.dir(found.cache_id), "diff")
        out.append(ImageLayerDir(i, len(diff_ids), found.cache_id, found.diff_id, path,
                                 commands[i]))  # fmt: skip
    return out
