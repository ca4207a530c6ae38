"""Pre-1.10 ``docker save`` archives: ``repositories`` and one ``<v1 id>/{json,layer.tar}``
directory per layer, each naming its parent.

Two readings: :func:`load_legacy` gives one image per tag with the config Docker's legacy
loader synthesised (``MakeConfigFromV1Config``); :func:`legacy_load_order` is what dockerd's
``docker load`` does with an archive that has no ``manifest.json``: every directory becomes an
image, parents first -- which is also why an OCI layout fails there (``blobs/json``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from overlaysim.image import digest as dg
from overlaysim.image import gojson
from overlaysim.image.errors import BadManifest, MissingMember
from overlaysim.image.findings import Findings
from overlaysim.image.formats import _HEX64, _json
from overlaysim.image.limits import DEFAULT_LIMITS, Limits, check
from overlaysim.image.model import OCI_LAYER, ImageRef, LayerRef
from overlaysim.image.source import Source
from overlaysim.image.v1compat import container_config, go_time


def load_legacy(src: Source, limits: Limits, findings: Findings) -> list[ImageRef]:
    _, repos = _json(src, "repositories", limits, "repositories")
    repos = gojson.expect_object(repos, "repositories")
    tops: dict[str, list[str]] = {}
    for repo, tags in repos.items():
        tags = gojson.expect_object(tags, f"repositories[{repo!r}]")
        for tag, top_id in tags.items():
            if not isinstance(top_id, str) or not _HEX64.fullmatch(top_id):
                raise BadManifest(f"repositories: {repo}:{tag} does not name a 64-hex layer id")
            tops.setdefault(top_id, []).append(f"{repo}:{tag}")
    images = []
    for top, tags in tops.items():
        chain: list[tuple[str, bytes, dict[str, Any]]] = []
        vid: str | None = top
        seen: set[str] = set()
        while vid:
            if vid in seen:
                raise BadManifest(f"repositories: parent chain of {top[:12]} loops at {vid[:12]}")
            seen.add(vid)
            check(len(seen), limits.max_layers, "legacy parent chain")
            raw, js = _json(src, f"{vid}/json", limits, f"{vid[:12]}/json")
            js = gojson.expect_object(js, f"{vid[:12]}/json")
            chain.append((vid, raw, js))
            parent = js.get("parent") or ""
            if not isinstance(parent, str) or (parent and not _HEX64.fullmatch(parent)):
                raise BadManifest(f"{vid[:12]}/json: invalid parent")
            vid = parent or None
        chain.reverse()
        images.append(_legacy_image(src, chain, tags, limits, findings))
    return images


def _legacy_image(
    src: Source,
    chain: list[tuple[str, bytes, dict[str, Any]]],
    tags: list[str],
    limits: Limits,
    findings: Findings,
) -> ImageRef:
    """Synthesise the config Docker 1.10-1.13's legacy loader built (MakeConfigFromV1Config)."""
    im = list(_legacy_prefixes(src, chain, None, limits, findings))[-1][1]
    im.repo_tags = list(tags)
    return im


def _legacy_prefixes(
    src: Source,
    chain: list[tuple[str, bytes, dict[str, Any]]],
    base: ImageRef | None,
    limits: Limits,
    findings: Findings,
) -> Iterator[tuple[str, ImageRef]]:
    """(v1 id, image) for each step of ``chain`` (oldest first) on top of ``base``: the
    legacy loader makes an image of every v1 layer, its parent being the one below."""
    from overlaysim.image.verify import diff_id_of

    diff_ids = list(base.diff_ids) if base else []
    history = list(base.config.get("history") or []) if base else []
    layers = list(base.layers) if base else []
    parent = base.image_id if base else None
    for vid, raw, js in chain:
        path = f"{vid}/layer.tar"
        if not src.exists(path):
            raise MissingMember(f"legacy layer {vid[:12]} has no layer.tar", path)
        if src.size(path) == 0:
            findings.add(
                "empty-layer-file",
                "0-byte layer.tar (no end-of-archive blocks)",
                path,
                len(layers),
                "info",
            )
        did = diff_id_of(src, path, limits)
        diff_ids.append(did)
        layers.append(LayerRef(len(layers), path, did, OCI_LAYER, None, None, vid))
        history.append(_v1_history(js))
        cfg_bytes = _make_config(raw, js, diff_ids, history)
        cfg = gojson.loads(cfg_bytes, limits, "synthesised config")
        im = ImageRef(
            "docker-legacy", f"{vid}/json", cfg_bytes, cfg, dg.image_id(cfg_bytes), list(layers)
        )
        im.parent = parent
        parent = im.image_id
        yield vid, im
    findings.add(
        "legacy-config",
        "config synthesised from v1 JSON as Docker's pre-1.10 loader did (image ID not verifiable)",
        level="info",
    )


def _v1_json(src: Source, vid: str, limits: Limits) -> tuple[bytes, dict[str, Any], str]:
    """A v1 layer directory's ``json``: raw bytes, object, and its parent's v1 id ("")."""
    if not src.exists(f"{vid}/json"):
        raise MissingMember(f"legacy image {vid[:12]} has no json", f"{vid}/json")
    raw, js = _json(src, f"{vid}/json", limits, f"{vid[:12]}/json")
    js = gojson.expect_object(js, f"{vid[:12]}/json")
    parent = js.get("parent") or ""
    if not isinstance(parent, str) or (parent and not _HEX64.fullmatch(parent)):
        raise BadManifest(f"{vid[:12]}/json: invalid parent")
    return raw, js, parent


def legacy_load_order(
    src: Source, limits: Limits = DEFAULT_LIMITS, findings: Findings | None = None
) -> Iterator[tuple[str, ImageRef]]:
    """dockerd's legacy load (an archive without ``manifest.json``): every top-level directory
    is a v1 image (``json`` + ``layer.tar``), in name order, each after its parent; yields
    (v1 id, image) with ``parent`` set. A missing file raises :class:`MissingMember` when
    dockerd would meet it, so the images yielded before stay loaded, as with dockerd."""
    findings = findings if findings is not None else Findings()
    done: dict[str, ImageRef] = {}
    dirs = sorted({f.split("/", 1)[0] for f in src.files() if "/" in f}, key=str.encode)
    for top in dirs:
        chain: list[tuple[str, bytes, dict[str, Any]]] = []
        vid = top
        while vid and vid not in done:
            if any(v == vid for v, _, _ in chain):
                raise BadManifest(f"{top[:12]}/json: parent chain loops at {vid[:12]}")
            check(len(chain) + 1, limits.max_layers, "legacy parent chain")
            raw, js, parent = _v1_json(src, vid, limits)
            chain.append((vid, raw, js))
            vid = parent
        base = done.get(vid) if vid else None
        for v, im in _legacy_prefixes(src, chain[::-1], base, limits, findings):
            done[v] = im
            yield v, im


def _v1_history(js: dict[str, Any]) -> dict[str, Any]:
    h: dict[str, Any] = {
        "created": go_time(js["created"])
        if isinstance(js.get("created"), str)
        else "0001-01-01T00:00:00Z"
    }
    if isinstance(js.get("author"), str) and js["author"]:
        h["author"] = js["author"]
    cc = js.get("container_config") if isinstance(js.get("container_config"), dict) else {}
    cmd = container_config(cc).get("Cmd") or []
    if cmd:
        h["created_by"] = " ".join(cmd)
    if isinstance(js.get("comment"), str) and js["comment"]:
        h["comment"] = js["comment"]
    return h


def _version_less(a: str, b: str) -> bool:
    def parts(v: str) -> list[int]:
        out = []
        for p in v.split("."):
            m = re.match(r"\d+", p)
            out.append(int(m.group()) if m else 0)
        return out

    return parts(a) < parts(b)


def _make_config(
    raw: bytes, js: dict[str, Any], diff_ids: list[str], history: list[dict[str, Any]]
) -> bytes:
    from overlaysim.image.v1compat import v1_image

    dver = js.get("docker_version") if isinstance(js.get("docker_version"), str) else ""
    fields: dict[str, Any]
    if _version_less(str(dver), "1.8.3"):
        fields = v1_image(js, id_=str(js.get("id") or ""))
    else:
        fields = dict(js)
    for k in ("id", "parent", "Size", "parent_id", "layer_id", "throwaway"):
        fields.pop(k, None)
    fields["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    fields["history"] = list(history)
    return gojson.dumps(gojson.sorted_map(fields)).encode()


__all__ = ["legacy_load_order", "load_legacy"]
