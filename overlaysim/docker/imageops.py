"""Image operations of the simulated daemon: load, save, commit, tag, rmi, and image rows.

``load`` (dockerd's loader, in :mod:`overlaysim.docker.imageload`) reads a ``docker save``
archive from the real disk through :mod:`overlaysim.image` (digests verified, hostile tars
refused), registers every layer in the layer store (apply into ``overlay2/<cache-id>/diff``,
``layerdb`` files, tar-split) and the config in ``imagedb``. ``save`` re-assembles each layer
from its tar-split and ``diff/`` (so digests stay what they were) and writes the archive, in
the layout of the Docker release spoken, to the real disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from overlaysim.docker import imageinspect, users

# the load path lives in imageload (dockerd's tarexport loader); its names stay importable here
from overlaysim.docker.imageload import LoadFailed, Progress, load, load_image
from overlaysim.docker.inspect import NoSuchObject
from overlaysim.docker.refs import parse
from overlaysim.errors import DaemonError
from overlaysim.image import digest as dg
from overlaysim.image.gojson import dumps, sorted_map
from overlaysim.image.model import ImageRef, LayerRef
from overlaysim.image.save import SaveOptions, save_v12, save_v25
from overlaysim.runtime.gofmt import GO_ZERO_TIME_NS, parse_rfc3339, rfc3339nano

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon


def image_ref(d: Daemon, name: str, *, keep_tag: bool = True) -> ImageRef:
    """An :class:`ImageRef` of a stored image, for the writers of :mod:`overlaysim.image.save`."""
    iid, ref = d.images.resolve(name)
    tags = [ref.familiar()] if ref is not None and ref.tag and keep_tag else []
    return stored_image(d, iid, tags)


def stored_image(d: Daemon, iid: str, tags: list[str]) -> ImageRef:
    """The stored image ``iid`` as an :class:`ImageRef` carrying ``tags``."""
    raw = d.images.config_bytes(iid) or b""
    cfg = d.images.config(iid)
    diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
    layers = [LayerRef(i, f"layer-{i}", did) for i, did in enumerate(diff_ids)]
    return ImageRef("docker-daemon", "config", raw, cfg, iid, layers, list(tags))


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
    d: Daemon,
    names: list[str],
    out: Any,
    fmt: str | None = None,
    progress: Progress | None = None,
) -> None:
    """``docker save``: Docker >= 25's format (``v25``) or Docker 1.10-24's (``v1.2``);
    by default the one of the release the daemon speaks as."""
    fmt = fmt or d.version.save_layout
    images = [stored_image(d, iid, tags) for iid, tags in d.images.save_targets(names)]
    opts = SaveOptions(now=d.now() // 10**9)
    if fmt == "v1.2" and d.version.tar_legacy_headers:
        # Docker <= 20.10: S_IF* bits in modes and the daemon's names for root (uid/gid 0)
        opts.legacy_mode_bits = True
        opts.owner_names = users.tar_names(d.fs, "/")(0, 0)
    writer = save_v12 if fmt == "v1.2" else save_v25
    writer(images, layer_bytes(d, progress), out, opts)


def image_size(d: Daemon, iid: str) -> int:
    chain = d.top_chain(iid)
    if chain is None:
        return 0
    layer = d.layers.lookup(chain)
    return d.layers.size(layer) if layer is not None else 0


def created_ns(cfg: dict[str, Any], d: Daemon | None = None) -> int:
    """A ``created`` time in ns; a missing one is Go's zero time where the release keeps a
    ``time.Time`` (20.10: "292 years ago"), the epoch where it keeps a nil pointer (28)."""
    c = cfg.get("created")
    if isinstance(c, str) and c:
        return parse_rfc3339(c)
    return 0 if d is None or d.version.missing_time_is_epoch else GO_ZERO_TIME_NS


def rows(d: Daemon, all_: bool = False) -> list[dict[str, Any]]:
    """One row per (image, reference) as ``docker images`` lists them, newest first."""
    out = []
    for iid in d.images.ids():
        cfg = d.images.config(iid)
        refs = d.images.refs_for(iid)
        if not refs and not all_ and d.images.children(iid):
            continue  # intermediate images are hidden without -a
        base = {"ID": iid, "Created": created_ns(cfg, d), "Size": image_size(d, iid)}
        for r in refs or [""]:
            repo, _, tag = r.rpartition(":") if r else ("<none>", "", "<none>")
            out.append({**base, "Repository": repo or "<none>", "Tag": tag or "<none>"})
    return sorted(out, key=lambda r: (-r["Created"], r["Repository"], r["Tag"]))


def history(d: Daemon, name: str) -> list[dict[str, Any]]:
    """``docker history``: one row per history entry, newest first, with its layer's size.

    Entries without ``empty_layer`` pair 1:1 with ``rootfs.diff_ids``. As in dockerd, the
    newest row shows the image's ID, the next one its parent's, and so on up the parent
    chain (a commit or a loaded ``Parent`` link); rows past the chain show ``<missing>``.
    """
    iid, _ = d.images.resolve(name)
    cfg = d.images.config(iid)
    chains = dg.chain_ids(list((cfg.get("rootfs") or {}).get("diff_ids") or []))
    rows, layer = [], 0
    for h in cfg.get("history") or []:
        size = 0
        if not h.get("empty_layer"):
            found = d.layers.lookup(chains[layer]) if layer < len(chains) else None
            size = found.diff_size if found is not None else 0
            layer += 1
        rows.append(
            {
                "ID": "<missing>",
                "Created": created_ns(h, d),
                "CreatedBy": str(h.get("created_by") or ""),
                "Size": size,
                "Comment": str(h.get("comment") or ""),
            }
        )
    rows.reverse()
    cur = iid
    for row in rows:
        row["ID"] = cur
        cur = d.images.parent(cur)
        if not cur or not d.images.exists(cur):
            break
    return rows


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
    hist: dict[str, Any] = {
        "created": now,
        "author": author,
        "created_by": " ".join(c.doc["Config"].get("Cmd") or []),
        "comment": message,
        "empty_layer": empty,
    }
    # dockerd's NewChildImage, encoded as Go encodes image.Image (top-level keys sorted):
    # the container's own config (Image as the user typed it), the container and its config
    health = imageinspect.health_fields(d.version)
    run_config = imageinspect.container_config(c.doc["Config"], health)
    cfg: dict[str, Any] = {
        "architecture": base.get("architecture") or "amd64",
        "config": run_config,
        "container": c.id,
        "container_config": run_config,
        "created": now,
        "docker_version": d.version.version,
        "history": [imageinspect.history_entry(h, d.version) for h in base.get("history") or []]
        + [imageinspect.history_entry(hist, d.version)],
        "os": c.doc.get("OS") or base.get("os") or "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    for key in ("variant", "os.version", "os.features"):
        if base.get(key):
            cfg[key] = base[key]
    if author:
        cfg["author"] = author
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


def tag(d: Daemon, source: str, target: str) -> None:
    iid, _ = d.images.resolve(source)
    d.images.tag(parse(target), iid)
    d.images.touch(iid, d.now())


def _users(d: Daemon, iid: str) -> list[Any]:
    return [c for c in d.containers.all() if c.image_id == iid]


def rmi(d: Daemon, name: str, force: bool = False) -> list[str]:
    """``docker rmi NAME``: the ``Untagged:``/``Deleted:`` lines, or a conflict error."""
    try:
        iid, ref = d.images.resolve(name)
    except DaemonError as e:  # the 20.10 CLI words a 404 itself: "Error: No such image: NAME"
        if str(e).startswith("No such image"):
            raise NoSuchObject(f"No such image: {name}", str(e)) from None
        raise
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
        if users or d.images.children(iid):  # dockerd's quiet delete: the tag goes, the image
            return out  # stays for its container or its child images
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


__all__ = [
    "LoadFailed",
    "Progress",
    "commit",
    "image_ref",
    "load",
    "load_image",
    "rmi",
    "rows",
    "save",
    "tag",
]
