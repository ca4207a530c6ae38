"""skopeo's image transports: ``docker-daemon:``, ``oci:``, ``oci-archive:``, ``docker-archive:``.

A copy reads an image (config bytes and uncompressed layers, every digest verified) from
the source and writes it to the destination as skopeo does: an OCI layout gets gzip layers,
an OCI manifest and a ``org.opencontainers.image.ref.name`` annotation only when ``:REF`` was
given (an existing layout is updated, and a previous holder of that name loses it); a docker
archive is the v1.2 ``docker save`` shape; ``docker-daemon:`` loads into the world's daemon.
Everything but ``docker-daemon:`` is on the real disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from overlaysim.docker import imageload, imageops
from overlaysim.docker.terminal import new_file
from overlaysim.errors import UsageError
from overlaysim.image import digest as dg
from overlaysim.image.formats import open_archive, select
from overlaysim.image.limits import Limits
from overlaysim.image.model import REF_NAME, ImageRef
from overlaysim.image.save import (
    OciBlob,
    SaveOptions,
    oci_archive,
    oci_layout_files,
    save_v12,
    write_oci_dir,
)

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon

LayerBytes = Callable[[ImageRef, int], bytes]
TRANSPORTS = ("docker-daemon", "oci", "oci-archive", "docker-archive")


@dataclass(frozen=True)
class Location:
    transport: str
    path: str  # file/dir on the real disk, or the image name for docker-daemon
    ref: str | None


def parse_location(text: str) -> Location:
    transport, sep, rest = text.partition(":")
    if not sep or transport not in TRANSPORTS:
        raise UsageError(
            f'Invalid image name "{text}", unknown transport "{transport}"'
            if sep
            else f'Invalid image name "{text}", expected colon-separated transport:reference'
        )
    if transport == "docker-daemon":
        if not rest:
            raise UsageError(f'Invalid image name "{text}": docker-daemon needs an image name')
        return Location(transport, rest, None)
    path, _, ref_text = rest.partition(":")  # containers/image splits at the first colon
    ref = ref_text or None
    if not path:
        raise UsageError(f'Invalid image name "{text}": no path')
    return Location(transport, path, ref)


@contextmanager
def open_source(loc: Location, daemon: Daemon | None) -> Iterator[tuple[ImageRef, LayerBytes]]:
    if loc.transport == "docker-daemon":
        assert daemon is not None
        yield imageops.image_ref(daemon, loc.path), imageops.layer_bytes(daemon)
        return
    arch, src = open_archive(loc.path, Limits())
    try:
        im = select(arch, loc.ref)

        def blob(image: ImageRef, i: int) -> bytes:
            return imageload.layer_blob(src, image, i)

        yield im, blob
    finally:
        src.close()


def write(loc: Location, im: ImageRef, layers: LayerBytes, daemon: Daemon | None) -> list[str]:
    """Write the image; returns the progress lines skopeo prints (non-terminal form)."""
    lines = ["Getting image source signatures"]
    lines += [f"Copying blob {layer.diff_id}" for layer in im.layers]
    lines.append(f"Copying config {im.image_id}")
    if loc.transport == "oci":
        target = replace(im, repo_tags=[], ref_name=loc.ref)
        blobs, index = oci_layout_files([target], layers)
        _write_layout(loc.path, blobs, index, loc.ref)
    elif loc.transport == "oci-archive":
        target = replace(im, repo_tags=[], ref_name=loc.ref)
        blobs, index = oci_layout_files([target], layers)
        with new_file(loc.path) as f:
            oci_archive(blobs, index, f)
    elif loc.transport == "docker-archive":
        tags = [loc.ref] if loc.ref else []
        if loc.ref:
            from overlaysim.docker.refs import parse

            tags = [parse(loc.ref).familiar()]
        with new_file(loc.path) as f:
            save_v12([replace(im, repo_tags=tags)], layers, f, SaveOptions())
    else:
        assert daemon is not None
        from overlaysim.docker.refs import parse

        name = parse(loc.path).familiar()
        imageops.load_image(daemon, im, lambda i: layers(im, i), None, [name])
    lines.append("Writing manifest to image destination")
    return lines


def _write_layout(dest: str, blobs: list[OciBlob], index_json: bytes, ref: str | None) -> None:
    if not os.path.exists(dest):
        write_oci_dir(dest, blobs, index_json)
        return
    if not os.path.isfile(os.path.join(dest, "index.json")):
        if os.listdir(dest):
            raise UsageError(f"{dest}: exists and is not an OCI layout")
        os.rmdir(dest)
        write_oci_dir(dest, blobs, index_json)
        return
    # update an existing layout: add missing blobs, then the manifest descriptor
    sha = os.path.join(dest, "blobs", "sha256")
    os.makedirs(sha, 0o755, exist_ok=True)
    for b in blobs:
        path = os.path.join(sha, dg.hex_of(b.digest))
        if not os.path.exists(path):
            with new_file(path) as f:
                f.write(b.data)
    with open(os.path.join(dest, "index.json"), "rb") as f:
        old = json.loads(f.read())
    new = json.loads(index_json)
    manifests = []
    for desc in old.get("manifests") or []:
        ann = dict(desc.get("annotations") or {})
        if ref and ann.get(REF_NAME) == ref:
            ann.pop(REF_NAME)
            desc = {k: v for k, v in desc.items() if k != "annotations"}
            if ann:
                desc["annotations"] = ann
        manifests.append(desc)
    manifests += new["manifests"]
    old["manifests"] = manifests
    with new_file(os.path.join(dest, "index.json")) as f:
        f.write(json.dumps(old, separators=(",", ":")).encode())
