"""``docker load``: dockerd's tarexport loader, step for step, over the simulated stores.

An archive with ``manifest.json`` (Docker 1.10+, kaniko, bazel, ggcr, Docker 25+) loads image
by image in manifest order: layers registered, config stored, tags set (a tag-less
``RepoTags`` entry stops the load with ``invalid tag``), then each manifest ``Parent`` link is
checked and set. ``Loaded image ID:`` lines appear only when the *last* image had no tag --
for every image then, as dockerd does. Without ``manifest.json`` dockerd falls back to its
legacy loader: every top-level directory is a v1 image, so a pre-1.10 archive loads
silently and an OCI layout fails on ``blobs/json``, in Docker 20.10 and in Docker 28 with the
graphdriver store alike. A failure part-way keeps what was loaded before it, as dockerd does
(it does not roll back), and is printed without the daemon prefix (it arrives in the
response stream): :class:`LoadFailed`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from overlaysim.docker.daemon import DOCKER_ROOT
from overlaysim.docker.imageinspect import go_time
from overlaysim.docker.refs import Ref, parse
from overlaysim.errors import DaemonError, ImageError
from overlaysim.image import digest as dg
from overlaysim.image.errors import MissingMember, NotATar
from overlaysim.image.findings import Findings
from overlaysim.image.formats import open_source, read_source
from overlaysim.image.gojson import expect_object
from overlaysim.image.legacy import legacy_load_order
from overlaysim.image.limits import Limits
from overlaysim.image.model import ImageRef
from overlaysim.image.source import Source
from overlaysim.image.verify import layer_blob

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon

#: progress(what, id12, done, total): a layer is being loaded or saved
Progress = Callable[[str, str, int, int], None]


class LoadFailed(DaemonError):
    """``docker load`` stopped. ``lines`` is what dockerd had already sent; the error is
    printed without the daemon prefix (it arrives in the response stream), exit 1. When
    ``kept`` the load had registered images before it stopped: they stay (dockerd does not
    roll back), so the world is saved; otherwise it is left exactly as it was."""

    def __init__(self, message: str, lines: list[str], kept: bool = False) -> None:
        super().__init__(message)
        self.lines = lines
        self.kept = kept




def _temp_dir(d: Daemon, path: str) -> str:
    """dockerd untars into ``$TMPDIR/docker-import-<random uint32>`` under its root."""
    n = int.from_bytes(hashlib.sha256(f"{path}:{d.now()}".encode()).digest()[:4], "big")
    return posixpath.join(DOCKER_ROOT, "tmp", f"docker-import-{n}")


def load(
    d: Daemon,
    path: str,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """``docker load -i PATH``: the lines docker prints (``Loaded image: …``).

    ``warn`` receives overlaysim's own remarks (none today: dockerd is silent where it is
    silent). Raises :class:`LoadFailed` when dockerd would stop part-way.
    """
    del warn  # kept for callers; the loader has nothing of its own to add
    out: list[str] = []
    limits = Limits()
    try:
        src = open_source(path, limits, Findings(), True)
    except NotATar:
        raise LoadFailed(
            "Error processing tar file(exit status 1): archive/tar: invalid tar header", out
        ) from None
    tmp = _temp_dir(d, path)
    before = set(d.images.ids())
    try:
        if src.exists("manifest.json"):
            _manifest_load(d, src, path, out, progress)
        else:
            _legacy_load(d, src, out, progress)
    except (DaemonError, ImageError) as e:
        text = str(e)
        if isinstance(e, MissingMember):
            text = f"open {tmp}/{e.member}: no such file or directory"
        raise LoadFailed(text, out, set(d.images.ids()) != before) from None
    finally:
        src.close()
    return out


def _manifest_load(
    d: Daemon, src: Source, path: str, out: list[str], progress: Progress | None
) -> None:
    raw = src.read("manifest.json", src.limits.max_json_bytes, "manifest.json")
    try:
        if json.loads(raw) is None:
            if d.version.load_rejects_null_manifest:
                raise DaemonError("invalid manifest, manifest cannot be null (but can be [])")
            out.append("")  # Docker 20.10 loads nothing: an empty line
            return
    except ValueError:
        pass  # the archive reader reports it
    arch = read_source(src, path, src.limits)
    ids_text: list[str] = []
    links: list[tuple[str, str]] = []
    tagged = 0
    for im in arch.images:
        iid = register(d, im, functools.partial(layer_blob, src, im), progress)
        ids_text.append(f"Loaded image ID: {iid}")
        tagged = 0  # dockerd counts the tags of the last image only
        for text in im.repo_tags:
            ref = parse(text, default_tag=False)
            if ref.tag is None:
                raise DaemonError(f'invalid tag "{text}"')
            _tag(d, ref, iid, out)
            out.append(f"Loaded image: {ref.familiar()}")
            tagged += 1
        links.append((iid, im.parent or ""))
    for iid, parent in _validated(links):
        if parent:
            _set_parent(d, iid, parent)
    if not tagged:  # an empty write still reaches the CLI, which prints an empty line
        out += ids_text or [""]


def _legacy_load(d: Daemon, src: Source, out: list[str], progress: Progress | None) -> None:
    loaded: dict[str, str] = {}
    for vid, im in legacy_load_order(src, src.limits, src.findings):
        iid = register(d, im, functools.partial(layer_blob, src, im), progress)
        if im.parent:
            d.images.put(im.config_bytes, parent=im.parent)
        loaded[vid] = iid
    raw = src.read("repositories", src.limits.max_json_bytes, "repositories")
    try:
        repos = expect_object(json.loads(raw), "repositories")
    except ValueError as e:
        raise DaemonError(f"repositories: {e}") from None
    for name, tags in repos.items():
        for tag, old in expect_object(tags, f"repositories[{name!r}]").items():
            if old not in loaded:
                raise DaemonError(f"invalid target ID: {old}")
            base = parse(name, default_tag=False)
            _tag(d, Ref(base.domain, base.path, tag), loaded[old], out)


def _tag(d: Daemon, ref: Ref, iid: str, out: list[str]) -> None:
    """dockerd's ``setLoadedTag``: a tag moved off another image is announced."""
    old = d.images.tag(ref, iid)
    if old:
        out.append(
            f"The image {ref.familiar()} already exists, renaming the old one with ID {old} "
            "to empty string"
        )


def _validated(links: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Parent links whose parent is another image of the same archive (others dropped)."""
    ids = {i for i, _ in links}
    return [(i, p if p in ids and p != i else "") for i, p in links]


def _history_key(h: Any) -> tuple[Any, ...]:
    """A history entry as Go compares them (its five fields, the time as parsed)."""
    if not isinstance(h, dict):
        return (h,)
    fields = [
        h.get(k) if isinstance(h.get(k), str) else "" for k in ("author", "created_by", "comment")
    ]
    return (go_time(h.get("created")), *fields, bool(h.get("empty_layer")))


def _set_parent(d: Daemon, iid: str, parent: str) -> None:
    """Record ``parent`` if it is a valid one (its history is the image's minus one entry)."""
    hist = d.images.config(iid).get("history") or []
    phist = d.images.config(parent).get("history") or []
    ok = (not hist and not phist) or (
        len(hist) - len(phist) == 1
        and all(_history_key(a) == _history_key(b) for a, b in zip(phist, hist, strict=False))
    )
    if not ok:
        raise DaemonError(f"image {parent} is not a valid parent for {iid}")
    d.images.put(d.images.config_bytes(iid) or b"", parent=parent)


def register(
    d: Daemon, im: ImageRef, blob: Callable[[int], bytes], progress: Progress | None = None
) -> str:
    """Register one image's layers (those not already there) and its config; its id."""
    chains = dg.chain_ids(im.diff_ids)
    held = []
    parent: str | None = None
    try:
        for i, chain in enumerate(chains):
            if d.layers.lookup(chain) is not None:
                layer = d.layers.get(chain)
            else:
                data = blob(i)
                short = dg.hex_of(im.diff_ids[i])[:12]
                if progress:
                    progress("Loading layer", short, 0, len(data))
                layer = d.layers.register(data, parent)
                if progress:
                    progress("Loading layer", short, len(data), len(data))
            held.append(layer)
            parent = layer.chain_id
        existed = d.images.exists(im.image_id)
        iid = d.images.put(im.config_bytes)
        if not existed and chains:
            d.layers.get(chains[-1])  # the image's own reference on its top layer
    finally:
        for layer in held:
            d.layers.release(layer)
    return iid


def load_image(
    d: Daemon,
    im: ImageRef,
    blob: Callable[[int], bytes],
    progress: Progress | None = None,
    tags: list[str] | None = None,
) -> list[str]:
    """Register one image and tag it (``tags`` or its own): the lines ``docker load`` prints
    for it. Loading sets no ``LastTagTime``: dockerd's loader does not."""
    iid = register(d, im, blob, progress)
    lines: list[str] = []
    names = im.repo_tags if tags is None else tags
    for text in names:
        ref = parse(text)
        _tag(d, ref, iid, lines)
        lines.append(f"Loaded image: {ref.familiar()}")
    if not names:
        lines.append(f"Loaded image ID: {iid}")
    return lines


__all__ = ["LoadFailed", "Progress", "layer_blob", "load", "load_image", "register"]
