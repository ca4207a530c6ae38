"""Docker's overlay2 graph driver and layer store, writing ``/var/lib/docker`` into a HostFS.

``Overlay2Driver`` lays out ``<root>/overlay2`` and mounts layers through the overlay engine;
``LayerStore`` keeps ``<root>/image/overlay2/layerdb`` (chain ids, cache ids, tar-split,
container mounts) on top of it; ``IdGen`` stands in for Docker's random ids, deterministically.
"""

from __future__ import annotations

from overlaysim.overlay2.driver import MountData, Overlay2Driver
from overlaysim.overlay2.errors import (
    LayerDoesNotExist,
    LayerExists,
    LayerNotRetained,
    MaxDepthExceeded,
    MountDoesNotExist,
    MountNameConflict,
    MountTooLarge,
    StorageError,
)
from overlaysim.overlay2.ids import IdGen
from overlaysim.overlay2.initlayer import INIT_PATHS
from overlaysim.overlay2.layerstore import MAX_LAYER_DEPTH, Layer, LayerStore, Metadata, RWLayer

__all__ = [
    "INIT_PATHS",
    "MAX_LAYER_DEPTH",
    "IdGen",
    "Layer",
    "LayerDoesNotExist",
    "LayerExists",
    "LayerNotRetained",
    "LayerStore",
    "MaxDepthExceeded",
    "Metadata",
    "MountData",
    "MountDoesNotExist",
    "MountNameConflict",
    "MountTooLarge",
    "Overlay2Driver",
    "RWLayer",
    "StorageError",
]
