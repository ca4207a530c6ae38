"""Docker's image store: ``imagedb`` (configs named by their digest) and ``repositories.json``.

Layout (graphdriver store, ``/var/lib/docker/image/overlay2``)::

    imagedb/content/sha256/<image-id-hex>             config JSON, byte-exact (0600)
    imagedb/metadata/sha256/<image-id-hex>/parent      "sha256:<parent image id>" (commit)
    imagedb/metadata/sha256/<image-id-hex>/lastUpdated RFC 3339 time of the last tag change
    repositories.json                                  {"Repositories": {name: {ref: id}}}

The image ID is the sha256 of the config bytes exactly as stored, so the config is never
re-encoded once written.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from overlaysim.docker import files
from overlaysim.docker.refs import Ref, is_full_id, looks_like_id_prefix, parse
from overlaysim.errors import DaemonError
from overlaysim.image import digest as dg
from overlaysim.runtime.gofmt import rfc3339nano


class ImageStore:
    def __init__(self, o: Any, root: str = "/var/lib/docker") -> None:
        self.o = o
        self.base = posixpath.join(root, "image", "overlay2")
        self.content = posixpath.join(self.base, "imagedb", "content", "sha256")
        self.metadata = posixpath.join(self.base, "imagedb", "metadata", "sha256")
        self.repos_path = posixpath.join(self.base, "repositories.json")
        for d in (self.content, self.metadata):
            files.makedirs(o, d, 0o700)

    # --- configs ----------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return ["sha256:" + h for h in files.listdir(self.o, self.content) if len(h) == 64]

    def exists(self, image_id: str) -> bool:
        return self.config_bytes(image_id) is not None

    def config_bytes(self, image_id: str) -> bytes | None:
        return files.read(self.o, posixpath.join(self.content, dg.hex_of(image_id)))

    def config(self, image_id: str) -> dict[str, Any]:
        raw = self.config_bytes(image_id)
        if raw is None:
            raise DaemonError(f"No such image: {image_id}")
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise DaemonError(f"image {image_id}: corrupt config ({e})") from None
        if not isinstance(data, dict):
            raise DaemonError(f"image {image_id}: the config is not a JSON object")
        return data

    def put(self, config_bytes: bytes, parent: str | None = None) -> str:
        image_id = dg.image_id(config_bytes)
        path = posixpath.join(self.content, dg.hex_of(image_id))
        if files.read(self.o, path) is None:
            files.write_atomic(self.o, path, config_bytes, 0o600)
        if parent:
            meta = posixpath.join(self.metadata, dg.hex_of(image_id))
            files.makedirs(self.o, meta, 0o700)
            files.write_atomic(self.o, posixpath.join(meta, "parent"), parent.encode(), 0o600)
        return image_id

    def touch(self, image_id: str, now_ns: int) -> None:
        meta = posixpath.join(self.metadata, dg.hex_of(image_id))
        files.makedirs(self.o, meta, 0o700)
        files.write_atomic(
            self.o, posixpath.join(meta, "lastUpdated"), rfc3339nano(now_ns).encode(), 0o600
        )

    def last_updated(self, image_id: str) -> str | None:
        raw = files.read(self.o, posixpath.join(self.metadata, dg.hex_of(image_id), "lastUpdated"))
        return raw.decode() if raw else None

    def parent(self, image_id: str) -> str:
        raw = files.read(self.o, posixpath.join(self.metadata, dg.hex_of(image_id), "parent"))
        return raw.decode() if raw else ""

    def children(self, image_id: str) -> list[str]:
        return [i for i in self.ids() if self.parent(i) == image_id]

    def delete(self, image_id: str) -> None:
        hexid = dg.hex_of(image_id)
        files.rmtree(self.o, posixpath.join(self.content, hexid))
        files.rmtree(self.o, posixpath.join(self.metadata, hexid))

    # --- references --------------------------------------------------------------------------
    def _load_repos(self) -> dict[str, dict[str, str]]:
        raw = files.read(self.o, self.repos_path)
        if not raw:
            return {}
        try:
            data = json.loads(raw).get("Repositories") or {}
        except (ValueError, AttributeError):
            raise DaemonError(f"{self.repos_path}: corrupt reference store") from None
        return {k: dict(v) for k, v in data.items() if isinstance(v, dict)}

    def _save_repos(self, repos: dict[str, dict[str, str]]) -> None:
        body = {"Repositories": {k: v for k, v in repos.items() if v}}
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        files.write_atomic(self.o, self.repos_path, data, 0o600)

    def refs(self) -> dict[str, str]:
        """familiar ref (``busybox:latest``) -> image id."""
        out: dict[str, str] = {}
        for tags in self._load_repos().values():
            out.update(tags)
        return out

    def refs_for(self, image_id: str) -> list[str]:
        return sorted(r for r, i in self.refs().items() if i == image_id)

    def tag(self, ref: Ref, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; returns the image it pointed to before (if other)."""
        repos = self._load_repos()
        key = ref.familiar()
        old = repos.get(ref.familiar_name, {}).get(key)
        repos.setdefault(ref.familiar_name, {})[key] = image_id
        self._save_repos(repos)
        return old if old and old != image_id else None

    def untag(self, ref: Ref) -> str | None:
        repos = self._load_repos()
        tags = repos.get(ref.familiar_name, {})
        old = tags.pop(ref.familiar(), None)
        if old is not None:
            self._save_repos(repos)
        return old

    # --- lookup ------------------------------------------------------------------------------
    def search(self, term: str) -> str:
        """The store's ``Search``: a full ID or a unique prefix of one (``sha256:`` optional)."""
        prefix = term.removeprefix("sha256:")
        hits = []
        if looks_like_id_prefix(term):
            hits = [i for i in self.ids() if dg.hex_of(i).startswith(prefix)]
        if len(hits) > 1:
            raise DaemonError("ambiguous digest string")
        if not hits:
            raise DaemonError(f"No such image: {term}")
        return hits[0]

    def save_targets(self, names: list[str]) -> list[tuple[str, list[str]]]:
        """What ``docker save NAMES`` writes, as dockerd's ``parseNames`` picks it: (image id,
        tags) in first-named order. A bare repository name saves every tag it has; a full ID
        is read from ``imagedb`` (its error names the file); ``name:tag`` must exist."""
        out: dict[str, list[str]] = {}

        def add(iid: str, tag: str | None = None) -> None:
            if not self.exists(iid):
                path = posixpath.join(self.content, dg.hex_of(iid))
                raise DaemonError(
                    f"failed to get digest {iid}: open {path}: no such file or directory"
                )
            tags = out.setdefault(iid, [])
            if tag and tag not in tags:
                tags.append(tag)

        for name in names:
            if is_full_id(name):
                add("sha256:" + name.removeprefix("sha256:"))
                continue
            ref = parse(name, default_tag=False)
            if ref.familiar_name == "sha256":
                add(self.search(name))
            elif ref.tag is None and ref.digest is None:
                repo = self._load_repos().get(ref.familiar_name, {})
                for tag in sorted(repo, key=lambda r: parse(r).full()):
                    add(repo[tag], tag)
                if not repo:
                    add(self.search(name))
            else:
                iid = self.refs().get(ref.familiar())
                if iid is None:
                    raise DaemonError("reference does not exist")
                add(iid, None if ref.digest else ref.familiar())
        return list(out.items())

    def resolve(self, text: str) -> tuple[str, Ref | None]:
        """(image id, the reference used or None when addressed by id); Docker's lookup order."""
        if is_full_id(text):
            iid = "sha256:" + text.removeprefix("sha256:")
            if self.exists(iid):
                return iid, None
        try:
            ref = parse(text)
        except DaemonError:
            ref = None
        if ref is not None:
            iid_ = self.refs().get(ref.familiar())
            if iid_ is not None:
                return iid_, ref
        if looks_like_id_prefix(text):
            prefix = text.removeprefix("sha256:")
            hits = [i for i in self.ids() if dg.hex_of(i).startswith(prefix)]
            if len(hits) == 1:
                return hits[0], None
        shown = ref.familiar() if ref is not None and ":" not in text and "@" not in text else text
        raise DaemonError(f"No such image: {shown}")
