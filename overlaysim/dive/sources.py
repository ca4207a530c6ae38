"""Where the layers come from: an image or a container of the world, or a ``docker save`` file.

An image's layers are its overlay2 diff dirs; a container adds its init layer and its upper
dir (``diff/`` of the read-write layer) on top, as its overlay mount stacks them; an archive
is imported into a scratch HostFS, one diff dir per layer, as ``docker load`` would.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from overlaysim.dive.model import Layer, read_layer_dir
from overlaysim.docker.layerdirs import created_by, image_layer_dirs
from overlaysim.errors import OverlaySimError, UsageError


class DiveError(UsageError):
    """Nothing to explore: unknown image or container, unreadable archive, no layers."""


@dataclass
class Subject:
    """What is being explored and its layers, bottom first."""

    kind: str  # "image", "container", "archive"
    name: str
    image_id: str
    layers: list[Layer]


def _image_layers(fs: Any, d: Any, image_id: str) -> list[Layer]:
    try:
        found = image_layer_dirs(d, image_id)
    except OverlaySimError as e:
        raise DiveError(str(e)) from None
    return [Layer(x.index, x.cache_id, x.created_by, x.dir, read_layer_dir(fs.os, x.dir),
                  x.diff_id, x.label) for x in found]  # fmt: skip


def from_world(world: Any, name: str) -> Subject:
    """IMAGE or CONTAINER of the world (a container name or id wins, as in ``docker inspect``)."""
    from overlaysim.docker.daemon import Daemon

    fs = world.fs
    if not fs.os.path.isdir("/var/lib/docker/image"):
        raise DiveError(f"{name}: no such image or container (the world has no Docker state)")
    d = Daemon(fs, world.meta, world.seed)
    container = None
    try:
        container = d.container(name)
    except OverlaySimError:
        pass
    if container is None:
        try:
            image_id, _ = d.images.resolve(name)
        except OverlaySimError as e:
            raise DiveError(f"{name}: no such image or container ({e})") from None
        layers = _image_layers(fs, d, image_id)
        if not layers:
            raise DiveError(f"{name}: the image has no layers")
        return Subject("image", name, image_id, layers)
    layers = _image_layers(fs, d, container.image_id)
    rw = d.layers.get_rw_layer(container.id)
    if rw.init_id:
        path = posixpath.join(d.driver.dir(rw.init_id), "diff")
        layers.append(Layer(len(layers), rw.init_id, "(Docker's init layer: /etc/hosts... stubs)",
                            path, read_layer_dir(fs.os, path), label="init layer"))  # fmt: skip
    path = posixpath.join(d.driver.dir(rw.mount_id), "diff")
    layers.append(Layer(len(layers), rw.mount_id, "(the container's writes: its upper dir)",
                        path, read_layer_dir(fs.os, path), label="container layer"))  # fmt: skip
    return Subject("container", container.name, container.image_id, layers)


def from_archive(path: str, ref: str | None = None) -> Subject:
    """An image of a ``docker save`` / OCI archive, imported into a scratch HostFS."""
    from overlaysim import HostFS
    from overlaysim.image.formats import open_archive, select
    from overlaysim.image.importer import import_image
    from overlaysim.image.limits import Limits

    fs = HostFS()
    arch, src = open_archive(path, Limits(), strict=False)
    try:
        image = select(arch, ref, None)
        res = import_image(fs.os, src, image, "/image", how="native", strict=False,
                           keep_tarsplit=False)  # fmt: skip
    finally:
        src.close()
    commands = created_by(image.config, len(res.layers))
    layers = [Layer(i, x.diff_id.removeprefix("sha256:")[:12], commands[i], x.dir or "",
                    read_layer_dir(fs.os, x.dir or "/"), x.diff_id,
                    f"image layer {i + 1}/{len(res.layers)}")
              for i, x in enumerate(res.layers)]  # fmt: skip
    if not layers:
        raise DiveError(f"{path}: the image has no layers")
    return Subject("archive", image.name(), image.image_id, layers)
