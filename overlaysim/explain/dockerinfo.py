"""Docker's names for overlay layers: container layer, init layer, image layer N and its history.

A container's overlay is found (or mounted, when it is stopped) through the simulated daemon;
an image gets a scratch overlay of its layers with an empty upper, as a fresh container without
an init layer would have. Both are made in the caller's copy of the world, never saved.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from overlaysim.errors import DaemonError, OverlaySimError
from overlaysim.explain.target import ExplainError, Layer, Target, split_options

DOCKER_ROOT = "/var/lib/docker"
_OVERLAY2 = DOCKER_ROOT + "/overlay2/"
SCRATCH = "/tmp/.overlaysim-explain"


def has_docker(fs: Any) -> bool:
    return bool(fs.os.path.isdir(DOCKER_ROOT + "/image"))


def daemon(fs: Any, meta: dict[str, Any], seed: int) -> Any:
    from overlaysim.docker.daemon import Daemon

    return Daemon(fs, meta, seed)


def image_layers(d: Any, image_id: str) -> list[Layer]:
    """The image's layers, top first, labelled with their index, diff id and history."""
    from overlaysim.docker.layerdirs import image_layer_dirs

    try:
        found = image_layer_dirs(d, image_id)
    except DaemonError as e:
        raise ExplainError(str(e)) from None
    return [Layer("", x.dir, x.label, x.cache_id, x.diff_id, x.created_by)
            for x in reversed(found)]  # fmt: skip


def _number(layers: list[Layer]) -> list[Layer]:
    n = 0
    for layer in layers:
        if layer.role != "upper":
            n += 1
            layer.role = f"lower{n}"
    return layers


def container_target(fs: Any, d: Any, name: str, path: str) -> Target:
    """A container's merged view: mounted if it is not running (in this copy only)."""
    from overlaysim.explain.target import resolve_inside

    try:
        c = d.container(name)
    except DaemonError as e:
        raise ExplainError(str(e)) from None
    rw = d.layers.get_rw_layer(c.id)
    merged = posixpath.join(d.driver.dir(rw.mount_id), "merged")
    if not any(m.target == merged for m in fs.mounts()):
        merged = d.layers.mount(c.id)
    entry = [m for m in fs.mounts() if m.target == merged][-1]
    layers = [Layer("upper", posixpath.join(d.driver.dir(rw.mount_id), "diff"),
                    "container layer (read-write)", rw.mount_id)]  # fmt: skip
    if rw.init_id:
        layers.append(Layer("", posixpath.join(d.driver.dir(rw.init_id), "diff"),
                            "init layer (Docker's /etc/hosts, /etc/resolv.conf... stubs)",
                            rw.init_id))  # fmt: skip
    layers += image_layers(d, c.image_id)
    inner = resolve_inside(fs.os, merged, path)
    return Target("container", c.name, merged, inner, _number(layers),
                  split_options(entry.options))  # fmt: skip


def image_target(fs: Any, d: Any, ref: str, path: str) -> Target:
    """An image's layers under a scratch overlay with an empty upper (a fresh container)."""
    from overlaysim.explain.target import resolve_inside

    try:
        image_id, _ = d.images.resolve(ref)
    except OverlaySimError as e:
        raise ExplainError(f"{ref}: no such container or image ({e})") from None
    layers = image_layers(d, image_id)
    if not layers:
        raise ExplainError(f"{ref}: the image has no layers")
    o = fs.os
    base = SCRATCH
    for sub in ("upper", "work", "merged"):
        o.makedirs(f"{base}/{sub}", exist_ok=True)
    lowers = ":".join(layer.dir for layer in layers)
    fs.mount("overlay", f"{base}/merged", "overlay",
             f"lowerdir={lowers},upperdir={base}/upper,workdir={base}/work")  # fmt: skip
    entry = [m for m in fs.mounts() if m.target == f"{base}/merged"][-1]
    layers.insert(0, Layer("upper", f"{base}/upper", "scratch upper (a fresh container's layer)"))
    inner = resolve_inside(o, f"{base}/merged", path)
    return Target("image", ref, f"{base}/merged", inner, _number(layers),
                  split_options(entry.options))  # fmt: skip


def label_overlay2(d: Any, target: Target) -> None:
    """Name the layers of a plain mount that Docker made: overlay2 ids and diff ids."""
    by_cache = {layer.cache_id: layer for layer in d.layers.layers().values()}
    for layer in target.layers:
        m = re.fullmatch(re.escape(_OVERLAY2) + r"([^/]+)/diff", layer.dir)
        if m is None:
            continue
        layer.overlay2_id = m.group(1)
        known = by_cache.get(m.group(1))
        if known is not None:
            layer.diff_id = known.diff_id
            layer.label += " (an image layer)"
        elif m.group(1).endswith("-init"):
            layer.label += " (a container's init layer)"


def container_of_mount(d: Any, mount: str) -> str | None:
    """The container whose merged dir is ``mount``, if any."""
    m = re.fullmatch(re.escape(_OVERLAY2) + r"([^/]+)/merged", mount)
    if m is None:
        return None
    for name, rw in d.layers.rw_layers().items():
        if rw.mount_id == m.group(1):
            return str(name)
    return None
