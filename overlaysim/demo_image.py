"""The embedded default image: the layers of ``demo_layers`` packaged as a Docker image.

The tour, the tests and a reader without an image archive at hand all need the same small
image (a ubuntu-like base with ``bin -> usr/bin`` links, plus a layer adding ``hello.sh``).
It is built here, deterministically (fixed times, sorted JSON), so every run gives the same
layer digests and image id, and written as the archive ``docker save`` of Docker >= 25 writes,
which ``docker load`` then reads as it would read a real one.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from overlaysim.demo_layers import MTIME_NS, build_app, build_base
from overlaysim.image import digest as dg
from overlaysim.image.export import layer_tar
from overlaysim.image.gojson import dumps, sorted_map
from overlaysim.image.model import ImageRef, LayerRef
from overlaysim.image.save import save_v25

DEMO_TAG = "demo:latest"
CREATED = "2023-06-01T00:00:00Z"  # before the world clock's start (2024-01-01)
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def demo_image(tag: str = DEMO_TAG) -> tuple[ImageRef, list[bytes]]:
    """The image (2 layers: base, app; Cmd ``/bin/sh``) and its uncompressed layer tars."""
    from overlaysim import HostFS

    fs = HostFS(clock=lambda: MTIME_NS)  # directory times too, so the digests never change
    build_base(fs.os, "/l0")
    build_app(fs.os, "/l1")
    tars = []
    for d in ("/l0", "/l1"):
        buf = io.BytesIO()
        layer_tar(fs.os, d, buf)
        tars.append(buf.getvalue())
    diff_ids = [dg.sha256(t) for t in tars]
    cfg: dict[str, Any] = {
        "architecture": "amd64",
        "config": {"Env": [PATH_ENV], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "created": CREATED,
        "history": [
            {"created": CREATED, "created_by": "ADD base /"},
            {"created": CREATED, "created_by": "ADD app /"},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    raw = dumps(sorted_map(cfg)).encode()
    layers = [LayerRef(i, f"l{i}", d) for i, d in enumerate(diff_ids)]
    return ImageRef("demo", "config", raw, cfg, dg.image_id(raw), layers, [tag]), tars


def write_demo_archive(out: BinaryIO, tag: str = DEMO_TAG) -> None:
    """Write the image to ``out`` as a ``docker save`` archive (Docker >= 25 layout)."""
    im, tars = demo_image(tag)
    save_v25([im], lambda _im, i: tars[i], out)
