"""Names that mean the same thing on both sides, in place of ids that cannot match.

Cache ids, container ids, mount ids and ``l/`` short names are random on each daemon; image,
chain and diff ids of a committed layer depend on mtimes. None of them can be compared, but
their roles can: ``LAYER[dive-test:latest#3]`` is the overlay2 directory of the fourth layer of
that image on either side, ``RW[web]`` the read-write layer of container ``web`` (and
``RW[web]-init`` its init layer), ``LINK[...]`` the short link of a directory. The map is read
from the data root (repositories, image configs, layerdb, containers), through an os-like
module, so it is built the same way for the real daemon and for the simulated one.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from overlaysim.docker import files
from overlaysim.image.digest import chain_ids

_HEX = re.compile(r"[0-9a-f]{64}")
_LINK = re.compile(r"[A-Z0-9]{26}")


def _read(o: Any, path: str) -> str | None:
    data = files.read(o, path)
    return None if data is None else bytes(data).decode("utf-8", "replace")


def _listdir(o: Any, path: str) -> list[str]:
    try:
        return sorted(o.fsdecode(n) for n in o.listdir(path))
    except OSError:
        return []


class IdMap:
    """Full ids (64 hex, and l/ names) to role names; :meth:`text` rewrites any string."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.names: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._table: dict[str, str] = {}

    def add(self, full: str, name: str) -> None:
        full = full.removeprefix("sha256:")
        if full:
            self.names.setdefault(full, name)
        self._pattern = None

    def text(self, s: str) -> str:
        """``s`` with the data root as ``<ROOT>`` and every known id (full or its 12-char short
        form) and l/ name replaced by its role; unknown 64-hex ids become ``<ID?>``."""
        s = s.replace(self.root.rstrip("/") + "/", "<ROOT>/")
        if self._pattern is None:
            table = {**{full[:12]: n for full, n in self.names.items()}, **self.names, **self.links}
            keys = sorted((k for k in table if k), key=len, reverse=True)  # full ids first
            self._table = table
            self._pattern = re.compile("|".join(map(re.escape, keys))) if keys else re.compile("(?!)")
        s = self._pattern.sub(lambda m: self._table[m.group(0)], s)
        return _HEX.sub("<ID?>", s)

    def value(self, v: Any) -> Any:
        """:meth:`text` applied through a JSON value (keys and strings)."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {self.text(k): self.value(x) for k, x in v.items()}
        return v


def read_ids(o: Any, root: str, shown: str = "") -> IdMap:
    """The role names of everything under the data root ``root`` (read through ``o``);
    ``shown`` is the root as outputs print it, if it is read through another path."""
    ids = IdMap(shown or root)
    store = posixpath.join(root, "image", "overlay2")
    repos = _read(o, posixpath.join(store, "repositories.json")) or "{}"
    tags: dict[str, list[str]] = {}
    for refs in (json.loads(repos).get("Repositories") or {}).values():
        for ref, image in refs.items():
            tags.setdefault(image.removeprefix("sha256:"), []).append(ref)
    layerdb = posixpath.join(store, "layerdb")
    for image in sorted(tags, key=lambda i: sorted(tags[i])[0]):
        tag = sorted(tags[image])[0]
        ids.add(image, f"IMG[{tag}]")
        config = _read(o, posixpath.join(store, "imagedb", "content", "sha256", image))
        if config is None:
            continue
        diff_ids = (json.loads(config).get("rootfs") or {}).get("diff_ids") or []
        for i, (diff, chain) in enumerate(zip(diff_ids, chain_ids(diff_ids), strict=True)):
            ids.add(diff, f"DIFF[{tag}#{i}]")
            ids.add(chain, f"CHAIN[{tag}#{i}]")
            cache = _read(o, posixpath.join(layerdb, "sha256", chain.removeprefix("sha256:"), "cache-id"))
            if cache:
                ids.add(cache.strip(), f"LAYER[{tag}#{i}]")
    for cid in _listdir(o, posixpath.join(root, "containers")):
        config = _read(o, posixpath.join(root, "containers", cid, "config.v2.json"))
        name = json.loads(config).get("Name", "").lstrip("/") if config else cid[:12]
        ids.add(cid, f"CTR[{name}]")
        mount = _read(o, posixpath.join(layerdb, "mounts", cid, "mount-id"))
        if mount:
            ids.add(mount.strip(), f"RW[{name}]")
    overlay2 = posixpath.join(root, "overlay2")
    links = {}
    for layer in _listdir(o, overlay2):
        link = _read(o, posixpath.join(overlay2, layer, "link"))
        if link and _LINK.fullmatch(link.strip()):
            links[link.strip()] = f"LINK[{ids.text(layer)}]"
    ids.links.update(links)
    ids._pattern = None
    return ids
