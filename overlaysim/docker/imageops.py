"""Image operations of the simulated daemon: load, save, commit, tag, rmi, and image rows.

``load`` reads any ``docker save`` archive (v1.2 of Docker 1.10-24, or Docker >= 25) from the
real disk through :mod:`overlaysim.image` (digests verified, hostile tars refused), registers
every layer in the layer store (apply into ``overlay2/<cache-id>/diff``, ``layerdb`` files,
tar-split) and the config in ``imagedb``. ``save`` re-assembles each layer from its tar-split
and ``diff/`` (so digests stay what they were) and writes the archive to the real disk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from overlaysim.docker.refs import parse
from overlaysim.errors import DaemonError, DigestMismatch
from overlaysim.image import digest as dg
from overlaysim.image.compress import open_stream
from overlaysim.image.formats import open_archive
from overlaysim.image.gojson import dumps, sorted_map
from overlaysim.image.limits import Limits
from overlaysim.image.model import ImageRef, LayerRef
from overlaysim.image.save import SaveOptions, save_v12, save_v25
from overlaysim.image.source import Source
from overlaysim.runtime.gofmt import parse_rfc3339, rfc3339nano

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon

#: progress(what, id12, done, total): a layer is being loaded or saved
Progress = Callable[[str, str, int, int], None]


def _blob(src: Source, im: ImageRef, i: int) -> bytes:
    with src.open(im.layers[i].path) as raw:
        _, dec = open_stream(raw, src.limits, src.limits.max_layer_bytes)
        data = dec.read()
    if dg.sha256(data) != im.layers[i].diff_id:
        raise DigestMismatch(
            f"invalid diffID for layer {i}: expected {im.layers[i].diff_id}, got {dg.sha256(data)}"
        )
    return bytes(data)


def load(
    d: Daemon,
    path: str,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """``docker load -i PATH``: the lines docker prints (``Loaded image: …``).

    Every ``docker save`` generation loads. The pre-1.10 one (``repositories`` and v1
    ``json`` files, no ``manifest.json``) is loaded as Docker's legacy loader did (the config
    synthesised from the v1 JSON), with a ``warn``: current Docker refuses it. OCI layouts
    are not ``docker save`` archives and are refused with Docker's message (``skopeo copy``
    loads them).
    """
    arch, src = open_archive(path, Limits())
    try:
        if arch.format == "docker-legacy":
            if warn is not None:
                warn(
                    "pre-1.10 docker save archive (no manifest.json): loaded as Docker's legacy "
                    "loader did; current Docker refuses it with 'invalid archive: does not "
                    "contain a manifest.json'"
                )
        elif arch.format not in ("docker-save-v1.2", "docker-save-v25"):
            raise DaemonError("invalid archive: does not contain a manifest.json")
        out: list[str] = []
        for im in arch.images:
            out += load_image(d, im, functools.partial(_blob, src, im), progress)
        return out
    finally:
        src.close()


def load_image(
    d: Daemon,
    im: ImageRef,
    blob: Callable[[int], bytes],
    progress: Progress | None = None,
    tags: list[str] | None = None,
) -> list[str]:
    """Register one image's layers and config; tag it; the lines ``docker load`` prints."""
    chains = dg.chain_ids(im.diff_ids)
    held = []
    parent: str | None = None
    try:
        for i, chain in enumerate(chains):
            if d.layers.lookup(chain) is not None:
                layer = d.layers.get(chain)
            else:
                data = blob(i)
                if progress:
                    progress("Loading layer", dg.hex_of(im.diff_ids[i])[:12], 0, len(data))
                layer = d.layers.register(data, parent)
                if progress:
                    progress("Loading layer", dg.hex_of(im.diff_ids[i])[:12], len(data), len(data))
            held.append(layer)
            parent = layer.chain_id
        existed = d.images.exists(im.image_id)
        iid = d.images.put(im.config_bytes)
        if not existed and chains:
            d.layers.get(chains[-1])  # the image's own reference on its top layer
    finally:
        for layer in held:
            d.layers.release(layer)
    lines = []
    names = im.repo_tags if tags is None else tags
    for tag in names:
        ref = parse(tag)
        old = d.images.tag(ref, iid)
        if old:
            lines.append(
                f"The image {ref.familiar()} already exists, renaming the old one with ID "
                f"{old} to empty string"
            )
        d.images.touch(iid, d.now())
        lines.append(f"Loaded image: {ref.familiar()}")
    if not names:
        lines.append(f"Loaded image ID: {iid}")
    return lines


def image_ref(d: Daemon, name: str, *, keep_tag: bool = True) -> ImageRef:
    """An :class:`ImageRef` of a stored image, for the writers of :mod:`overlaysim.image.save`."""
    iid, ref = d.images.resolve(name)
    raw = d.images.config_bytes(iid) or b""
    cfg = d.images.config(iid)
    diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
    layers = [LayerRef(i, f"layer-{i}", did) for i, did in enumerate(diff_ids)]
    tags = [ref.familiar()] if ref is not None and ref.tag and keep_tag else []
    return ImageRef("docker-daemon", "config", raw, cfg, iid, layers, tags)


def layer_bytes(d: Daemon, progress: Progress | None = None) -> Callable[[ImageRef, int], bytes]:
    cache: dict[str, bytes] = {}

    def get(im: ImageRef, i: int) -> bytes:
        did = im.layers[i].diff_id
        if did not in cache:
            chain = dg.chain_ids(im.diff_ids[: i + 1])[-1]
            layer = d.layers.lookup(chain)
            if layer is None:
                raise DaemonError(f"layer does not exist: {chain}")
            if progress:
                progress("Saving layer", dg.hex_of(did)[:12], 0, layer.diff_size)
            cache[did] = d.layers.tar_stream(layer)
            if progress:
                progress("Saving layer", dg.hex_of(did)[:12], len(cache[did]), len(cache[did]))
        return cache[did]

    return get


def save(
    d: Daemon, names: list[str], out: Any, fmt: str = "v25", progress: Progress | None = None
) -> None:
    """``docker save``: Docker >= 25's format (``v25``) or Docker 1.10-24's (``v1.2``)."""
    images = [image_ref(d, n) for n in names]
    opts = SaveOptions(now=d.now() // 10**9)
    writer = save_v12 if fmt == "v1.2" else save_v25
    writer(images, layer_bytes(d, progress), out, opts)


def image_size(d: Daemon, iid: str) -> int:
    chain = d.top_chain(iid)
    if chain is None:
        return 0
    layer = d.layers.lookup(chain)
    return d.layers.size(layer) if layer is not None else 0


def created_ns(cfg: dict[str, Any]) -> int:
    c = cfg.get("created")
    return parse_rfc3339(c) if isinstance(c, str) else 0


def rows(d: Daemon, all_: bool = False) -> list[dict[str, Any]]:
    """One row per (image, reference) as ``docker images`` lists them, newest first."""
    out = []
    for iid in d.images.ids():
        cfg = d.images.config(iid)
        refs = d.images.refs_for(iid)
        if not refs and not all_ and d.images.children(iid):
            continue  # intermediate images are hidden without -a
        base = {"ID": iid, "Created": created_ns(cfg), "Size": image_size(d, iid)}
        for r in refs or [""]:
            repo, _, tag = r.rpartition(":") if r else ("<none>", "", "<none>")
            out.append({**base, "Repository": repo or "<none>", "Tag": tag or "<none>"})
    return sorted(out, key=lambda r: (-r["Created"], r["Repository"], r["Tag"]))


def history(d: Daemon, name: str) -> list[dict[str, Any]]:
    """``docker history``: one row per history entry, newest first, with its layer's size.

    Entries without ``empty_layer`` pair 1:1 with ``rootfs.diff_ids``; a row shows an image
    ID when a local image ends at that entry (the image itself, or a parent it was committed
    on), else ``<missing>``, as Docker does for layers pulled or loaded without their images.
    """
    iid, _ = d.images.resolve(name)
    ids_by_len: dict[int, str] = {}
    cur = iid
    while cur and d.images.exists(cur):
        ids_by_len.setdefault(len(d.images.config(cur).get("history") or []), cur)
        cur = d.images.parent(cur)
    cfg = d.images.config(iid)
    chains = dg.chain_ids(list((cfg.get("rootfs") or {}).get("diff_ids") or []))
    rows, layer = [], 0
    for n, h in enumerate(cfg.get("history") or [], start=1):
        size = 0
        if not h.get("empty_layer"):
            found = d.layers.lookup(chains[layer]) if layer < len(chains) else None
            size = found.diff_size if found is not None else 0
            layer += 1
        rows.append(
            {
                "ID": ids_by_len.get(n, "<missing>"),
                "Created": parse_rfc3339(str(h.get("created") or "")),
                "CreatedBy": str(h.get("created_by") or ""),
                "Size": size,
                "Comment": str(h.get("comment") or ""),
            }
        )
    return rows[::-1]


def commit(
    d: Daemon,
    text: str,
    reference: str | None = None,
    *,
    author: str = "",
    message: str = "",
) -> str:
    """``docker commit``: the container's diff against its init layer becomes a new layer."""
    c = d.container(text)
    parent_iid = c.image_id
    base = d.images.config(parent_iid)
    tar = d.layers.rw_tar_stream(c.id)
    parent_chain = d.top_chain(parent_iid)
    diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
    layer = d.layers.register(tar, parent_chain)
    empty = layer.diff_id == dg.EMPTY_TAR_DIFF_ID
    if not empty:
        diff_ids.append(layer.diff_id)
    now = rfc3339nano(d.now())
    hist: dict[str, Any] = {"created": now}
    if author:
        hist["author"] = author
    hist["created_by"] = " ".join(c.doc["Config"].get("Cmd") or [])
    if message:
        hist["comment"] = message
    if empty:
        hist["empty_layer"] = True
    cfg: dict[str, Any] = {
        "architecture": base.get("architecture") or "amd64",
        "config": dict(c.doc["Config"], Image=parent_iid),
        "created": now,
        "docker_version": _docker_version(),
        "history": [*list(base.get("history") or []), hist],
        "os": base.get("os") or "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    for key in ("variant", "os.version", "os.features"):
        if base.get(key):
            cfg[key] = base[key]
    if author:
        cfg["author"] = author
    if message:
        cfg["comment"] = message
    raw = dumps(sorted_map(cfg)).encode()
    existed = d.images.exists(dg.image_id(raw))
    iid = d.images.put(raw, parent=parent_iid)
    top = dg.chain_ids(diff_ids)[-1] if diff_ids else None
    if not existed and top:
        d.layers.get(top)
    d.layers.release(layer)
    if reference:
        d.images.tag(parse(reference), iid)
        d.images.touch(iid, d.now())
    return iid


def _docker_version() -> str:
    from overlaysim.docker.daemon import DOCKER_VERSION

    return DOCKER_VERSION


def tag(d: Daemon, source: str, target: str) -> None:
    iid, _ = d.images.resolve(source)
    d.images.tag(parse(target), iid)
    d.images.touch(iid, d.now())


def _users(d: Daemon, iid: str) -> list[Any]:
    return [c for c in d.containers.all() if c.image_id == iid]


def rmi(d: Daemon, name: str, force: bool = False) -> list[str]:
    """``docker rmi NAME``: the ``Untagged:``/``Deleted:`` lines, or a conflict error."""
    iid, ref = d.images.resolve(name)
    short = dg.hex_of(iid)[:12]
    users = _users(d, iid)
    refs = d.images.refs_for(iid)
    out: list[str] = []
    if ref is not None:
        if len(refs) > 1:
            d.images.untag(ref)
            return [f"Untagged: {ref.familiar()}"]
        if users and not force:
            raise DaemonError(
                f'conflict: unable to remove repository reference "{name}" (must force) - '
                f"container {users[0].id[:12]} is using its referenced image {short}"
            )
        d.images.untag(ref)
        out.append(f"Untagged: {ref.familiar()}")
        if users:
            return out
    else:
        running = [c for c in users if c.state["Running"]]
        if running:
            raise DaemonError(
                f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                f"by running container {running[0].id[:12]}"
            )
        if len(refs) > 1 and not force:
            raise DaemonError(
                f"conflict: unable to delete {short} (must be forced) - image is referenced "
                "in multiple repositories"
            )
        if users and not force:
            raise DaemonError(
                f"conflict: unable to delete {short} (must be forced) - image is being used "
                f"by stopped container {users[0].id[:12]}"
            )
        for r in refs:
            d.images.untag(parse(r))
            out.append(f"Untagged: {r}")
        if users:
            return out
    return out + _delete(d, iid)


def _delete(d: Daemon, iid: str) -> list[str]:
    if d.images.children(iid):
        raise DaemonError(
            f"conflict: unable to delete {dg.hex_of(iid)[:12]} (cannot be forced) - image has "
            "dependent child images"
        )
    parent = d.images.parent(iid)
    top = d.top_chain(iid)
    d.images.delete(iid)
    out = [f"Deleted: {iid}"]
    if top:
        out += [f"Deleted: {m.chain_id}" for m in d.layers.release(top)]
    if (
        parent
        and d.images.exists(parent)
        and not d.images.refs_for(parent)
        and not d.images.children(parent)
        and not _users(d, parent)
    ):
        out += _delete(d, parent)
    return out


__all__ = ["commit", "image_ref", "load", "rmi", "rows", "save", "tag"]
