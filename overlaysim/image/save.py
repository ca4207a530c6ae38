"""Write ``docker save`` archives (v1.2 layout of Docker 1.10-24, and Docker >= 25) and OCI layouts.

Docker builds a save in a temporary directory and tars it with its own archiver, so the
archive has the layer encoding's properties (byte-sorted depth-first walk, ``dir/`` entries,
whole-second mtimes, no user names; S_IF* type bits in modes up to Docker 20.10). Timestamps
are the image's ``created`` time for layer files and configs and the epoch for the generated
JSON. Checked byte for byte against real saves from Docker 18.09 and 25.0.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from overlaysim.image import digest as dg
from overlaysim.image.gojson import dumps, sorted_map
from overlaysim.image.model import (
    CONTAINERD_NAME,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_NAME,
    ImageRef,
)
from overlaysim.image.tar_writer import C_ISDIR, C_ISLNK, C_ISREG, Header, TarWriter, Writable
from overlaysim.image.v1compat import legacy_layer_ids

LayerBytes = Callable[[ImageRef, int], bytes]


@dataclass
class _F:
    path: str
    kind: str  # "dir", "file", "symlink"
    mtime: int
    data: bytes | Callable[[], bytes] = b""
    link: str = ""


@dataclass
class SaveOptions:
    """Knobs for the Docker version being imitated."""

    legacy_mode_bits: bool = False  # True for Docker <= 20.10 archives
    owner_names: tuple[str, str] = ("", "")  # uname/gname of root: Docker <= 20.10 looked them up
    tz_offset_seconds: int = 0  # the daemon's zone, visible in v1 JSON "created" of lower layers
    now: int = 0  # save time (mtimes Docker does not set explicitly)
    null_untagged_index: bool = False  # Docker 25.0.0-25.0.2 wrote "manifests": null
    files: list[_F] = field(default_factory=list)


def created_seconds(config: dict[str, Any]) -> int:
    c = config.get("created")
    if not isinstance(c, str):
        return 0
    text = c.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        n = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[n:]
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def _unique(images: list[ImageRef]) -> list[ImageRef]:
    """One entry per image ID with all its tags, as docker save groups them."""
    out: dict[str, ImageRef] = {}
    for im in images:
        if im.image_id in out:
            tags = out[im.image_id].repo_tags
            tags.extend(t for t in im.repo_tags if t not in tags)
        else:
            out[im.image_id] = replace(im, repo_tags=list(im.repo_tags))
    return list(out.values())


def _emit(
    files: list[_F], out: Writable, legacy: bool, names: tuple[str, str] = ("", "")
) -> None:
    w = TarWriter(out)
    un, gn = names
    for f in sorted(files, key=lambda f: [p.encode() for p in f.path.split("/")]):
        t = f.mtime * 10**9
        if f.kind == "dir":
            mode = 0o755 | (C_ISDIR if legacy else 0)
            w.add(Header(f.path + "/", "5", mode, mtime_ns=t, uname=un, gname=gn))
        elif f.kind == "symlink":
            mode = 0o777 | (C_ISLNK if legacy else 0)
            w.add(Header(f.path, "2", mode, mtime_ns=t, linkname=f.link, uname=un, gname=gn))
        else:
            data = f.data() if callable(f.data) else f.data
            mode = 0o644 | (C_ISREG if legacy else 0)
            w.add(
                Header(f.path, "0", mode, size=len(data), mtime_ns=t, uname=un, gname=gn), data
            )
    w.close()


def _encode_line(v: Any) -> bytes:
    """json.NewEncoder(f).Encode(v): compact, HTML-escaped, one trailing newline."""
    return (dumps(v) + "\n").encode()


def _repo_tag(tag: str) -> tuple[str, str]:
    repo, sep, t = tag.rpartition(":")
    if not sep or "/" in t:
        return tag, "latest"
    return repo, t


def save_v12(
    images: list[ImageRef], layer_bytes: LayerBytes, out: Writable, opts: SaveOptions | None = None
) -> None:
    """The ``docker save`` format of Docker 1.10 to 24 (legacy dirs named by v1 IDs)."""
    opts = opts or SaveOptions()
    images = _unique(images)
    files: list[_F] = []
    saved: dict[str, str] = {}
    manifest = []
    repos: dict[str, dict[str, str]] = {}
    for im in images:
        created = created_seconds(im.config)
        chain = dg.chain_ids(im.diff_ids)
        ids = legacy_layer_ids(im.config, chain, opts.tz_offset_seconds)
        layers = []
        for i, (vid, js) in enumerate(ids):
            did = im.diff_ids[i]
            # a layer already saved under another v1 ID becomes a symlink, and Docker leaves
            # that directory's files at the time of the save (seen in a Docker 20.10 save)
            t = opts.now if did in saved else created
            files.append(_F(vid, "dir", t))
            files.append(_F(f"{vid}/VERSION", "file", t, b"1.0"))
            files.append(_F(f"{vid}/json", "file", t, js))
            if did in saved:
                files.append(
                    _F(f"{vid}/layer.tar", "symlink", opts.now, link=f"../{saved[did]}/layer.tar")
                )
            else:
                files.append(_F(f"{vid}/layer.tar", "file", created, _lazy(layer_bytes, im, i)))
                saved[did] = vid
            layers.append(f"{vid}/layer.tar")
        hexid = dg.hex_of(im.image_id)
        files.append(_F(f"{hexid}.json", "file", created, im.config_bytes))
        item: dict[str, Any] = {
            "Config": f"{hexid}.json",
            "RepoTags": im.repo_tags or None,
            "Layers": layers,
        }
        if im.parent:
            item["Parent"] = im.parent
        manifest.append(item)
        for tag in im.repo_tags:
            repo, tg = _repo_tag(tag)
            repos.setdefault(repo, {})[tg] = ids[-1][0] if ids else ""
    files.append(_F("manifest.json", "file", 0, _encode_line(manifest)))
    if repos:
        files.append(
            _F(
                "repositories",
                "file",
                0,
                _encode_line(sorted_map({k: sorted_map(v) for k, v in repos.items()})),
            )
        )
    _emit(files, out, opts.legacy_mode_bits, opts.owner_names)


def _lazy(layer_bytes: LayerBytes, im: ImageRef, i: int) -> Callable[[], bytes]:
    return lambda: layer_bytes(im, i)


def _platform(cfg: dict[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = {"architecture": cfg.get("architecture", ""), "os": cfg.get("os", "")}
    for key in ("os.version", "os.features", "variant"):
        if cfg.get(key):
            p[key] = cfg[key]
    return p


def oci_manifest(
    config_digest: str,
    config_size: int,
    layers: list[tuple[str, str, int]],
    platform: dict[str, Any] | None = None,
) -> bytes:
    cfg: dict[str, Any] = {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size}
    if platform is not None:
        cfg["platform"] = platform
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": cfg,
        "layers": [{"mediaType": mt, "digest": d, "size": n} for mt, d, n in layers],
    }
    return dumps(body).encode()


def save_v25(
    images: list[ImageRef], layer_bytes: LayerBytes, out: Writable, opts: SaveOptions | None = None
) -> None:
    """The ``docker save`` format of Docker >= 25 with the graphdriver store."""
    opts = opts or SaveOptions()
    images = _unique(images)
    blobs: dict[str, _F] = {}
    manifest = []
    index: list[dict[str, Any]] = []
    repos: dict[str, dict[str, str]] = {}
    first_created = None
    for im in images:
        created = created_seconds(im.config)
        first_created = created if first_created is None else first_created
        layer_descs = []
        for i, did in enumerate(im.diff_ids):
            hexd = dg.hex_of(did)
            size = len(layer_bytes(im, i)) if hexd not in blobs else None
            if hexd not in blobs:
                data = layer_bytes(im, i)
                size = len(data)
                blobs[hexd] = _F(f"blobs/sha256/{hexd}", "file", created, data)
            layer_descs.append((OCI_LAYER, did, size if size is not None else _size(blobs[hexd])))
        for _vid, js in legacy_layer_ids(
            im.config, dg.chain_ids(im.diff_ids), opts.tz_offset_seconds
        ):
            h = dg.hex_of(dg.sha256(js))
            blobs.setdefault(h, _F(f"blobs/sha256/{h}", "file", created, js))
        chex = dg.hex_of(im.image_id)
        blobs[chex] = _F(f"blobs/sha256/{chex}", "file", created, im.config_bytes)
        man = oci_manifest(im.image_id, len(im.config_bytes), layer_descs, _platform(im.config))
        mdig = dg.sha256(man)
        blobs[dg.hex_of(mdig)] = _F(f"blobs/sha256/{dg.hex_of(mdig)}", "file", 0, man)
        sources = {d: {"mediaType": mt, "size": n, "digest": d} for mt, d, n in layer_descs}
        manifest.append(
            {
                "Config": f"blobs/sha256/{chex}",
                "RepoTags": im.repo_tags or None,
                "Layers": [f"blobs/sha256/{dg.hex_of(d)}" for d in im.diff_ids],
                "LayerSources": sorted_map(sources),
            }
        )
        desc = {"mediaType": OCI_MANIFEST, "digest": mdig, "size": len(man)}
        if im.repo_tags:
            for tag in im.repo_tags:
                repo, t = _repo_tag(tag)
                full = _full_name(repo) + ":" + t
                index.append({**desc, "annotations": {CONTAINERD_NAME: full, REF_NAME: t}})
                repos.setdefault(repo, {})[t] = dg.hex_of(im.diff_ids[-1]) if im.diff_ids else ""
        elif not opts.null_untagged_index:
            index.append(desc)
    files = list(blobs.values())
    files.append(_F("blobs", "dir", first_created or 0))
    files.append(_F("blobs/sha256", "dir", opts.now))
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index or None}
    files.append(_F("index.json", "file", opts.now, dumps(idx).encode()))
    files.append(_F("manifest.json", "file", 0, _encode_line(manifest)))
    files.append(_F("oci-layout", "file", 0, b'{"imageLayoutVersion": "1.0.0"}'))
    if repos:
        files.append(
            _F(
                "repositories",
                "file",
                0,
                _encode_line(sorted_map({k: sorted_map(v) for k, v in repos.items()})),
            )
        )
    _emit(files, out, False)


def _size(f: _F) -> int:
    return len(f.data()) if callable(f.data) else len(f.data)


def _full_name(repo: str) -> str:
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        return "docker.io/library/" + repo
    if "." in first or ":" in first or first == "localhost":
        return repo
    return "docker.io/" + repo


@dataclass
class OciBlob:
    digest: str
    data: bytes


def oci_layout_files(
    images: list[ImageRef],
    layer_bytes: LayerBytes,
    *,
    gzip_layers: bool = True,
) -> tuple[list[OciBlob], bytes]:
    """Blobs and index.json of an OCI layout as ``skopeo copy ... oci:DIR`` writes one."""
    from overlaysim.image.compress import gzip_compress

    blobs: dict[str, OciBlob] = {}
    index = []
    for im in images:
        descs = []
        for i in range(len(im.layers)):
            raw = layer_bytes(im, i)
            data = gzip_compress([raw]) if gzip_layers else raw
            d = dg.sha256(data)
            blobs.setdefault(d, OciBlob(d, data))
            descs.append((OCI_LAYER_GZIP if gzip_layers else OCI_LAYER, d, len(data)))
        blobs.setdefault(im.image_id, OciBlob(im.image_id, im.config_bytes))
        man = oci_manifest(im.image_id, len(im.config_bytes), descs)
        mdig = dg.sha256(man)
        blobs.setdefault(mdig, OciBlob(mdig, man))
        desc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": mdig, "size": len(man)}
        ref = im.ref_name or (_repo_tag(im.repo_tags[0])[1] if im.repo_tags else None)
        if ref:
            desc["annotations"] = {REF_NAME: ref}
        if desc not in index:
            index.append(desc)
    return list(blobs.values()), dumps({"schemaVersion": 2, "manifests": index}).encode()


def write_oci_dir(dest: str, blobs: list[OciBlob], index_json: bytes) -> None:
    """Create ``dest`` (must not exist) without following any symlink while writing."""
    os.mkdir(dest, 0o755)
    dfd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.mkdir("blobs", 0o755, dir_fd=dfd)
        bfd = os.open("blobs", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
        try:
            os.mkdir("sha256", 0o755, dir_fd=bfd)
            sfd = os.open("sha256", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=bfd)
            try:
                for b in blobs:
                    _write_at(sfd, dg.hex_of(b.digest), b.data)
            finally:
                os.close(sfd)
        finally:
            os.close(bfd)
        _write_at(dfd, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _write_at(dfd, "index.json", index_json)
    finally:
        os.close(dfd)


def oci_archive(blobs: list[OciBlob], index_json: bytes, out: Writable) -> None:
    files = [_F("blobs", "dir", 0), _F("blobs/sha256", "dir", 0)]
    files += [_F(f"blobs/sha256/{dg.hex_of(b.digest)}", "file", 0, b.data) for b in blobs]
    files.append(_F("oci-layout", "file", 0, b'{"imageLayoutVersion":"1.0.0"}'))
    files.append(_F("index.json", "file", 0, index_json))
    _emit(files, out, False)


def _write_at(dfd: int, name: str, data: bytes) -> None:
    fd = os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd
    )
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
