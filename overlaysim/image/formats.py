"""Recognise and read every generation of image archive into :class:`ImageArchive`.

Formats: pre-1.10 legacy ``docker save`` (``repositories`` + ``<id>/json`` parent chains),
v1.2 ``manifest.json`` saves (Docker 1.10-24, kaniko, bazel, ggcr tarballs), Docker >= 25
saves (an OCI layout *and* ``manifest.json``), OCI image layouts as directories or tars, with
nested indexes and Docker manifest lists. Only metadata is read here, every JSON document with
size/depth limits and every small blob against its digest; layer blobs are verified when they
are streamed (``verify``/``layer``).
"""

from __future__ import annotations

import os
import re
from typing import Any

from overlaysim.errors import DigestMismatch, ImageError, LimitExceeded, UnsupportedMediaType
from overlaysim.image import digest as dg
from overlaysim.image import gojson
from overlaysim.image.doctype import check_kind
from overlaysim.image.errors import BadManifest
from overlaysim.image.findings import Findings
from overlaysim.image.limits import DEFAULT_LIMITS, Limits, check
from overlaysim.image.model import (
    CONFIG_TYPES,
    CONTAINERD_NAME,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    OCI_LAYER,
    REF_NAME,
    SCHEMA1_TYPES,
    ImageArchive,
    ImageRef,
    LayerRef,
)
from overlaysim.image.source import DirSource, Source, TarSource

_HEX64 = re.compile(r"[a-f0-9]{64}")


def open_source(path: str, limits: Limits, findings: Findings, strict: bool) -> Source:
    if os.path.isdir(path):
        return DirSource(path, limits, findings, strict)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    return TarSource(path, limits, findings, strict)


def open_archive(
    path: str, limits: Limits = DEFAULT_LIMITS, strict: bool = True
) -> tuple[ImageArchive, Source]:
    """Detect the format of ``path`` and read all image metadata (caller closes the source)."""
    findings = Findings()
    src = open_source(path, limits, findings, strict)
    try:
        arch = _load(src, path, limits, findings, strict)
    except BaseException:
        src.close()
        raise
    return arch, src


def _load(src: Source, path: str, limits: Limits, findings: Findings, strict: bool) -> ImageArchive:
    has = src.exists
    if has("manifest.json"):
        fmt = "docker-save-v25" if has("oci-layout") and has("index.json") else "docker-save-v1.2"
        arch = ImageArchive(fmt, path, [], findings)
        arch.images = _load_manifest_json(src, limits, findings, fmt)
        if fmt == "docker-save-v25":
            oci = _load_oci(src, limits, findings, strict, fmt, arch)
            _annotate_from_index(arch.images, oci)
        return arch
    if has("oci-layout") or has("index.json"):
        fmt = "oci-layout" if isinstance(src, DirSource) else "oci-archive"
        arch = ImageArchive(fmt, path, [], findings)
        arch.images = _load_oci(src, limits, findings, strict, fmt, arch)
        return arch
    if has("repositories"):
        from overlaysim.image.legacy import load_legacy

        arch = ImageArchive("docker-legacy", path, [], findings)
        arch.images = load_legacy(src, limits, findings)
        return arch
    raise UnsupportedMediaType(
        f"{src.label}: not an image archive (no manifest.json, index.json or repositories)"
    )


def _json(src: Source, name: str, limits: Limits, what: str) -> tuple[bytes, Any]:
    data = src.read(name, limits.max_json_bytes, what)
    return data, gojson.loads(data, limits, what)


def _config(src: Source, name: str, limits: Limits) -> tuple[bytes, dict[str, Any]]:
    data, cfg = _json(src, name, limits, f"config {name}")
    cfg = gojson.expect_object(cfg, f"config {name}")
    return data, cfg


def _diff_ids(cfg: dict[str, Any], what: str) -> list[str]:
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict):
        raise BadManifest(f"{what}: config has no rootfs")
    if rootfs.get("type") != "layers":
        raise UnsupportedMediaType(f"{what}: rootfs type {rootfs.get('type')!r} is not 'layers'")
    ids = gojson.get_list(rootfs, "diff_ids", what)
    for d in ids:
        dg.parse(d, f"{what}: diff_id")
    return list(ids)


def _name_digest(name: str) -> str | None:
    """The digest a member name claims: ``<hex>.json``, ``sha256:<hex>``, ``blobs/sha256/<hex>``."""
    base = name.rsplit("/", 1)[-1]
    if name.startswith("blobs/sha256/") and _HEX64.fullmatch(base):
        return "sha256:" + base
    for cand in (base.removesuffix(".json"), base.removeprefix("sha256:")):
        if (_HEX64.fullmatch(cand) and cand != base) or (
            base.startswith("sha256:") and _HEX64.fullmatch(cand)
        ):
            return "sha256:" + cand
    return None


def _load_manifest_json(
    src: Source, limits: Limits, findings: Findings, fmt: str
) -> list[ImageRef]:
    _, man = _json(src, "manifest.json", limits, "manifest.json")
    if not isinstance(man, list):
        raise BadManifest("manifest.json: expected a JSON array")
    images: list[ImageRef] = []
    for n, item in enumerate(man):
        what = f"manifest.json[{n}]"
        item = gojson.expect_object(item, what)
        cpath = gojson.get_str(item, "Config", what)
        cbytes, cfg = _config(src, cpath, limits)
        image_id = dg.image_id(cbytes)
        claimed = _name_digest(cpath)
        if claimed is not None and claimed != image_id:
            raise DigestMismatch(f"{what}: config {cpath} hashes to {image_id}")
        tags = item.get("RepoTags")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            raise BadManifest(f"{what}: RepoTags must be a list of strings")
        layer_paths = gojson.get_list(item, "Layers", what)
        if not all(isinstance(p, str) for p in layer_paths):
            raise BadManifest(f"{what}: Layers must be a list of strings")
        check(len(layer_paths), limits.max_layers, f"{what}: layers")
        diff_ids = _diff_ids(cfg, what)
        if len(diff_ids) != len(layer_paths):
            raise BadManifest(
                f"{what}: {len(layer_paths)} layers but the config lists {len(diff_ids)} diff_ids"
            )
        sources = item.get("LayerSources") or {}
        if not isinstance(sources, dict):
            raise BadManifest(f"{what}: LayerSources must be an object")
        layers = []
        for i, (lp, did) in enumerate(zip(layer_paths, diff_ids, strict=True)):
            # manifest.json layers carry no media type: the loader sniffs the compression
            ref = LayerRef(index=i, path=lp, diff_id=did, media_type="", digest=_name_digest(lp))
            if not lp.startswith("blobs/"):
                ref.digest = None
            parts = lp.split("/")
            if len(parts) == 2 and parts[1] == "layer.tar" and _HEX64.fullmatch(parts[0]):
                ref.v1_id = parts[0]
            desc = sources.get(did)
            if desc is not None:
                # the distribution descriptor of the layer; it describes the archived file
                # only when the file is that blob (Docker >= 25 names blobs by digest)
                desc = gojson.expect_object(desc, f"{what}: LayerSources")
                sdig = gojson.get_str(desc, "digest", what)
                dg.parse(sdig, what)
                ref.urls = [u for u in desc.get("urls") or [] if isinstance(u, str)]
                if ref.digest == sdig:
                    ref.media_type = gojson.get_str(desc, "mediaType", what, OCI_LAYER)
                    ref.size = gojson.get_int(desc, "size", what)
                else:
                    findings.add(
                        "layer-source",
                        f"LayerSources names blob {sdig[:19]} of the distribution, not this file",
                        lp,
                        i,
                        "info",
                    )
            if not src.exists(lp):
                if ref.urls:
                    raise UnsupportedMediaType(f"{what}: foreign layer {did} is not in the archive")
                raise ImageError(f"{what}: layer {lp!r} is missing from the archive")
            layers.append(ref)
        parent = item.get("Parent")
        if parent is not None:
            dg.parse(parent, f"{what}: Parent")
        images.append(
            ImageRef(
                format=fmt,
                config_path=cpath,
                config_bytes=cbytes,
                config=cfg,
                image_id=image_id,
                layers=layers,
                repo_tags=list(tags or []),
                parent=parent,
            )
        )
    ids = {im.image_id for im in images}
    for im in images:
        if im.parent and im.parent not in ids:
            findings.add(
                "parent-missing", f"parent image {im.parent} is not in the archive", im.name()
            )
    return images


# --- OCI layouts ------------------------------------------------------------------------------
def _blob_path(d: str) -> str:
    alg, enc = dg.parse(d)
    return f"blobs/{alg}/{enc}"


def _read_blob(src: Source, desc: dict[str, Any], limits: Limits, what: str) -> bytes:
    d = gojson.get_str(desc, "digest", what)
    size = gojson.get_int(desc, "size", what)
    path = _blob_path(d)
    if not src.exists(path):
        raise ImageError(f"{what}: blob {d} is missing")
    check(size, limits.max_json_bytes, f"{what}: size")
    data = src.read(path, limits.max_json_bytes, what)
    if len(data) != size:
        raise DigestMismatch(f"{what}: blob {d} has {len(data)} bytes, the descriptor says {size}")
    if dg.sha256(data) != d and not d.startswith("sha512:"):
        raise DigestMismatch(f"{what}: blob {d} does not match its digest")
    return data


def _load_oci(
    src: Source,
    limits: Limits,
    findings: Findings,
    strict: bool,
    fmt: str,
    arch: ImageArchive,
) -> list[ImageRef]:
    if src.exists("oci-layout"):
        _, layout = _json(src, "oci-layout", limits, "oci-layout")
        layout = gojson.expect_object(layout, "oci-layout")
        version = layout.get("imageLayoutVersion")
        if version != "1.0.0":
            raise UnsupportedMediaType(
                f"oci-layout: imageLayoutVersion {version!r} is not supported"
            )
    else:
        findings.add("no-oci-layout", "index.json without an oci-layout file")
    _, index = _json(src, "index.json", limits, "index.json")
    index = gojson.expect_object(index, "index.json")
    check_kind(index, None, "index.json", findings, index=True)
    images: list[ImageRef] = []
    seen: set[str] = set()
    budget = [0]

    def walk(idx: dict[str, Any], depth: int, where: str) -> None:
        check(depth, limits.max_index_depth, f"{where}: index nesting")
        for n, desc in enumerate(gojson.get_list(idx, "manifests", where)):
            what = f"{where}.manifests[{n}]"
            desc = gojson.expect_object(desc, what)
            budget[0] += 1
            check(budget[0], limits.max_manifests, "manifests in the layout")
            mt = gojson.get_str(desc, "mediaType", what, "")
            d = gojson.get_str(desc, "digest", what)
            dg.parse(d, what)
            arch.descriptors.append(desc)
            annotations = desc.get("annotations") or {}
            ref = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
            if mt in INDEX_TYPES:
                if d in seen:
                    raise BadManifest(f"{what}: index {d} refers to itself (an index loop)")
                seen.add(d)
                sub = gojson.expect_object(
                    gojson.loads(_read_blob(src, desc, limits, what), limits, what), what
                )
                check_kind(sub, mt, what, findings, index=True)
                walk(sub, depth + 1, f"index {d[:19]}")
                seen.discard(d)
            elif mt in MANIFEST_TYPES:
                im = _load_oci_manifest(src, desc, limits, findings, what, fmt)
                if im is not None:
                    im.ref_name = ref if isinstance(ref, str) else None
                    if isinstance(annotations, dict) and isinstance(
                        annotations.get(CONTAINERD_NAME), str
                    ):
                        im.repo_tags = [_familiar(annotations[CONTAINERD_NAME])]
                    plat = desc.get("platform")
                    im.descriptor_platform = plat if isinstance(plat, dict) else None
                    images.append(im)
            elif mt in SCHEMA1_TYPES:
                findings.add(
                    "schema1", f"Docker schema 1 manifest {d[:19]} skipped (unsupported)", what
                )
            else:
                findings.add("unknown-descriptor", f"descriptor of media type {mt!r} skipped", what)

    walk(index, 0, "index.json")
    return images


def _familiar(name: str) -> str:
    for pre in ("docker.io/library/", "docker.io/"):
        if name.startswith(pre):
            return name[len(pre) :]
    return name


def _load_oci_manifest(
    src: Source,
    desc: dict[str, Any],
    limits: Limits,
    findings: Findings,
    what: str,
    fmt: str,
) -> ImageRef | None:
    d = desc["digest"]
    data = _read_blob(src, desc, limits, what)
    man = gojson.expect_object(gojson.loads(data, limits, f"manifest {d[:19]}"), what)
    check_kind(man, desc.get("mediaType"), what, findings, index=False)
    if man.get("schemaVersion") != 2:
        raise BadManifest(f"manifest {d[:19]}: schemaVersion must be 2")
    cdesc = gojson.expect_object(man.get("config"), f"manifest {d[:19]}: config")
    ctype = gojson.get_str(cdesc, "mediaType", what, "")
    if ctype not in CONFIG_TYPES:
        findings.add(
            "artifact", f"manifest {d[:19]} is not an image (config type {ctype!r}); skipped", what
        )
        return None
    cbytes = _read_blob(src, cdesc, limits, f"config of {d[:19]}")
    cfg = gojson.expect_object(gojson.loads(cbytes, limits, "config"), "config")
    diff_ids = _diff_ids(cfg, f"config of {d[:19]}")
    ldescs = gojson.get_list(man, "layers", what)
    check(len(ldescs), limits.max_layers, f"manifest {d[:19]}: layers")
    if len(ldescs) != len(diff_ids):
        raise BadManifest(f"manifest {d[:19]}: {len(ldescs)} layers but {len(diff_ids)} diff_ids")
    layers = []
    for i, (ld, did) in enumerate(zip(ldescs, diff_ids, strict=True)):
        ld = gojson.expect_object(ld, f"{what}.layers[{i}]")
        mt = gojson.get_str(ld, "mediaType", what, "")
        if mt not in LAYER_TYPES:
            raise UnsupportedMediaType(
                f"manifest {d[:19]}: layer media type {mt!r} is not supported"
            )
        ldig = gojson.get_str(ld, "digest", what)
        dg.parse(ldig, what)
        urls = [u for u in ld.get("urls") or [] if isinstance(u, str)]
        path = _blob_path(ldig)
        if not src.exists(path):
            if urls:
                raise UnsupportedMediaType(
                    f"manifest {d[:19]}: foreign layer {ldig} is not in the layout"
                )
            raise ImageError(f"manifest {d[:19]}: layer blob {ldig} is missing")
        layers.append(
            LayerRef(i, path, did, mt, ldig, gojson.get_int(ld, "size", what), None, urls)
        )
    return ImageRef(
        format=fmt,
        config_path=_blob_path(cdesc["digest"]),
        config_bytes=cbytes,
        config=cfg,
        image_id=dg.image_id(cbytes),
        layers=layers,
        manifest_digest=d,
        manifest_media_type=desc.get("mediaType"),
    )


def _annotate_from_index(images: list[ImageRef], oci: list[ImageRef]) -> None:
    """Docker >= 25: manifest.json images gain the OCI manifest digest and ref names."""
    for im in images:
        for o in oci:
            if o.image_id == im.image_id:
                im.manifest_digest = o.manifest_digest
                im.manifest_media_type = o.manifest_media_type
                im.ref_name = im.ref_name or o.ref_name
                if o.descriptor_platform:
                    im.descriptor_platform = o.descriptor_platform


def read_source(src: Source, path: str, limits: Limits = DEFAULT_LIMITS) -> ImageArchive:
    """:func:`open_archive` on a source already open (the caller closes it)."""
    return _load(src, path, limits, src.findings, src.strict)


def select(
    arch: ImageArchive,
    ref: str | None = None,
    platform: str | None = None,
) -> ImageRef:
    """Pick one image by tag/ref name/ID prefix and platform ("os/arch[/variant]")."""
    cands = arch.images
    if ref:
        cands = [
            im
            for im in cands
            if ref in im.repo_tags
            or ref == im.ref_name
            or im.image_id.startswith(ref)
            or im.image_id.removeprefix("sha256:").startswith(ref)
        ]
        if not cands:
            raise ImageError(f"{arch.path}: no image matches {ref!r}")
    if platform:
        cands = [
            im for im in cands if im.platform == platform or im.platform.startswith(platform + "/")
        ]
        if not cands:
            avail = ", ".join(sorted({im.platform for im in arch.images})) or "none"
            raise ImageError(f"{arch.path}: no image for platform {platform} (available: {avail})")
    if not cands:
        raise ImageError(f"{arch.path}: the archive holds no image")
    if len(cands) > 1 and len({im.image_id for im in cands}) > 1:
        host = [im for im in cands if im.platform == "linux/amd64"]
        if platform is None and len(host) == 1:
            return host[0]
        names = ", ".join(f"{im.name()} ({im.platform})" for im in cands)
        raise ImageError(f"{arch.path}: several images match; choose one of: {names}")
    return cands[0]


__all__ = ["LimitExceeded", "open_archive", "read_source", "select"]
