"""Docker's layer store (moby ``daemon/internal/layer``) on top of the overlay2 driver.

Read-only layers are keyed by chain id in ``<root>/image/overlay2/layerdb/sha256/<hex>/``
(``cache-id``, ``diff``, ``size``, ``parent``, ``tar-split.json.gz``); container layers by
container id in ``layerdb/mounts/<id>/`` (``mount-id``, ``init-id``, ``parent``). Everything
is read back from those files, so the store survives between processes.

Reference counting follows moby: a layer is deleted when nobody holds it. Children and
container mounts hold their parent (derived from the files); other holders (an image, the
caller of ``register``/``get``) are counted in the overlay2 state file, because dockerd keeps
them in memory and re-takes them when it restarts, which a one-command process cannot do.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import WorldError
from overlaysim.image.digest import chain_ids
from overlaysim.image.export import Change
from overlaysim.image.limits import Limits
from overlaysim.image.tarsplit import TarSplit
from overlaysim.overlay2 import diff as ldiff
from overlaysim.overlay2.driver import Overlay2Driver
from overlaysim.overlay2.errors import (
    LayerDoesNotExist,
    LayerNotRetained,
    MaxDepthExceeded,
    MountDoesNotExist,
    MountNameConflict,
)

MAX_LAYER_DEPTH = 125


@dataclass(frozen=True)
class Layer:
    """A read-only layer as the layerdb records it (chain id, diff id, cache id, parent)."""

    chain_id: str
    diff_id: str
    cache_id: str
    parent: str | None  # the parent's chain id
    diff_size: int  # the ``size`` file: this layer's own bytes


@dataclass(frozen=True)
class RWLayer:
    """A container's read-write layer (``layerdb/mounts/<name>``)."""

    name: str  # the container id
    mount_id: str
    init_id: str  # "<mount_id>-init", or "" when created without an init layer
    parent: str | None  # the image top layer's chain id

    def cache_parent(self, store: LayerStore) -> str:
        """What diffs are taken against: the init layer, else the image's top cache id."""
        if self.init_id:
            return self.init_id
        if self.parent:
            return store.lookup_or_fail(self.parent).cache_id
        return ""


@dataclass(frozen=True)
class Metadata:
    """What ``release`` reports for each layer it deleted."""

    chain_id: str
    diff_id: str
    size: int  # the whole chain
    diff_size: int


class LayerStore:
    """``layerdb`` of ``driver.root`` (``<root>/image/<driver>/layerdb``)."""

    def __init__(self, fs: Any, driver: Overlay2Driver, *, limits: Limits | None = None) -> None:
        self.fs = fs
        self.driver = driver
        self.o = driver.o
        self.limits = limits
        self.root = posixpath.join(driver.root, "image", str(driver), "layerdb")
        d = driver.root
        for part in ("image", str(driver), "layerdb"):  # MkdirAll(..., 0700): every level
            d = posixpath.join(d, part)
            driver.mkdir_all(d, 0o700)

    # --- files ------------------------------------------------------------------------------
    def _layer_dir(self, chain_id: str) -> str:
        alg, _, hexpart = chain_id.partition(":")
        if (
            alg != "sha256"
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise LayerDoesNotExist(f"layer does not exist: invalid chain id {chain_id!r}")
        return posixpath.join(self.root, alg, hexpart)

    def _mount_dir(self, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise MountDoesNotExist(f"mount does not exist: invalid name {name!r}")
        return posixpath.join(self.root, "mounts", name)

    def _text(self, path: str) -> str | None:
        data = self.driver.read(path)
        return None if data is None else data.decode().strip()

    def _write(self, path: str, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        fd = self.o.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if data:
                self.o.write(fd, data)
        finally:
            self.o.close(fd)

    # --- reference counts of outside holders -------------------------------------------------
    def _refs(self) -> dict[str, int]:
        data = self.driver.state.get("layers")
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _add_ref(self, chain_id: str, delta: int) -> int:
        refs = self._refs()
        n = refs.get(chain_id, 0) + delta
        if n > 0:
            refs[chain_id] = n
        else:
            refs.pop(chain_id, None)
        self.driver.state.set("layers", refs)
        return n

    def references(self, chain_id: str) -> int:
        """moby's referenceCount: outside holders + child layers + container layers on it."""
        kids = sum(1 for x in self.layers().values() if x.parent == chain_id)
        mounts = sum(1 for m in self.rw_layers().values() if m.parent == chain_id)
        return self._refs().get(chain_id, 0) + kids + mounts

    # --- read-only layers --------------------------------------------------------------------
    def lookup(self, chain_id: str) -> Layer | None:
        """The layer, without taking a reference (None when absent)."""
        try:
            d = self._layer_dir(chain_id)
        except LayerDoesNotExist:
            return None
        cache_id = self._text(posixpath.join(d, "cache-id"))
        diff_id = self._text(posixpath.join(d, "diff"))
        size = self._text(posixpath.join(d, "size"))
        if cache_id is None or diff_id is None or size is None:
            return None
        parent = self._text(posixpath.join(d, "parent")) or None
        try:
            n = int(size)
        except ValueError:
            raise WorldError(f"{d}/size: not a number: {size!r}") from None
        return Layer(chain_id, diff_id, cache_id, parent, n)

    def lookup_or_fail(self, chain_id: str) -> Layer:
        layer = self.lookup(chain_id)
        if layer is None:
            raise LayerDoesNotExist()
        return layer

    def layers(self) -> dict[str, Layer]:
        """Every layer (moby ``Map``), by chain id."""
        d = posixpath.join(self.root, "sha256")
        try:
            names = self.o.listdir(d)
        except FileNotFoundError:
            return {}
        out = {}
        for name in sorted(names):
            layer = self.lookup("sha256:" + name) if len(name) == 64 else None
            if layer is not None:
                out[layer.chain_id] = layer
        return out

    def chain(self, layer: Layer) -> Iterator[Layer]:
        """The layer and its parents, top first."""
        cur: Layer | None = layer
        while cur is not None:
            yield cur
            cur = self.lookup_or_fail(cur.parent) if cur.parent else None

    def depth(self, layer: Layer) -> int:
        return sum(1 for _ in self.chain(layer))

    def size(self, layer: Layer) -> int:
        """moby ``Size``: the sizes of the whole chain."""
        return sum(x.diff_size for x in self.chain(layer))

    def get(self, chain_id: str) -> Layer:
        """Take a reference on a layer (moby ``Get``); pair it with :meth:`release`."""
        layer = self.lookup_or_fail(chain_id)
        self._add_ref(chain_id, 1)
        return layer

    def register(
        self, tar: bytes | Any, parent: str | None = None, *, strict: bool = True
    ) -> Layer:
        """Apply a layer tar on ``parent`` (a chain id) and record it; returns it referenced.

        When the resulting chain id exists already, the new directory is dropped and the
        existing layer is returned with one more reference, as moby does.
        """
        p = self.lookup_or_fail(parent) if parent else None
        if p is not None and self.depth(p) >= MAX_LAYER_DEPTH:
            raise MaxDepthExceeded()
        plan = ldiff.parse(tar, self.limits, strict=strict)
        cache_id = self.driver.ids.random_id()
        pid = p.cache_id if p is not None else ""
        self.driver.create(cache_id, pid or None)
        try:
            size = ldiff.apply_plan(self.driver, cache_id, pid, plan)
            diff_id = plan.diff_id
            chain_id = chain_ids([p.chain_id, diff_id])[1] if p is not None else diff_id
            if self.lookup(chain_id) is not None:
                self.driver.remove(cache_id)
                return self.get(chain_id)
            tmp = posixpath.join(self.root, "tmp")
            self.o.makedirs(tmp, mode=0o755, exist_ok=True)
            ws = posixpath.join(tmp, f"write-set-{cache_id[:10]}")
            self.o.mkdir(ws, 0o700)
            try:
                self._write(posixpath.join(ws, "tar-split.json.gz"),
                            plan.tarsplit.to_json_gz() if plan.tarsplit else b"")  # fmt: skip
                self._write(posixpath.join(ws, "size"), str(size))
                if p is not None:
                    self._write(posixpath.join(ws, "parent"), p.chain_id)
                self._write(posixpath.join(ws, "diff"), diff_id)
                self._write(posixpath.join(ws, "cache-id"), cache_id)
                final = self._layer_dir(chain_id)
                self.o.makedirs(posixpath.dirname(final), mode=0o755, exist_ok=True)
                self.o.rename(ws, final)
            except BaseException:
                self.driver.rmtree(ws)
                raise
        except BaseException:
            self.driver.remove(cache_id)
            raise
        self._add_ref(chain_id, 1)
        return Layer(chain_id, diff_id, cache_id, p.chain_id if p is not None else None, size)

    def release(self, layer: Layer | str) -> list[Metadata]:
        """Drop one reference; delete every layer of the chain nobody holds any more."""
        chain_id = layer if isinstance(layer, str) else layer.chain_id
        if self.lookup(chain_id) is None:
            return []
        if self._refs().get(chain_id, 0) <= 0:
            raise LayerNotRetained()
        self._add_ref(chain_id, -1)
        return self._collect(chain_id)

    def _collect(self, chain_id: str | None) -> list[Metadata]:
        removed: list[Metadata] = []
        while chain_id:
            layer = self.lookup(chain_id)
            if layer is None or self.references(chain_id) > 0:
                break
            removed.append(
                Metadata(layer.chain_id, layer.diff_id, self.size(layer), layer.diff_size)
            )
            self._delete(layer)
            chain_id = layer.parent
        return removed

    def _delete(self, layer: Layer) -> None:
        d = self._layer_dir(layer.chain_id)
        gone = f"{d}-{self.driver.ids.random_id()}-removing"
        self.o.rename(d, gone)
        self.driver.remove(layer.cache_id)
        self.driver.rmtree(gone)

    def tar_stream(self, layer: Layer) -> bytes:
        """The layer's original tar, re-assembled from tar-split and ``diff/`` (moby TarStream)."""
        data = self.driver.read(
            posixpath.join(self._layer_dir(layer.chain_id), "tar-split.json.gz")
        )
        if data is None:
            raise LayerDoesNotExist(f"layer {layer.chain_id} has no tar-split data")
        ts = TarSplit.from_json_gz(data)
        # overlay2 has no DiffGetter: moby's naiveDiffPathDriver reads the files through
        # Get/Put, so a layer with parents is mounted meanwhile (read-only once "committed";
        # an image's top layer is not, and its mount leaves work/work behind)
        base = self.driver.get(layer.cache_id)
        try:
            for ref in ts.files():
                ref.path = base + posixpath.normpath("/" + ref.name)
            return ts.assemble(self.o, expect_diff_id=layer.diff_id)
        finally:
            self.driver.put(layer.cache_id)

    def metadata(self, layer: Layer) -> dict[str, str]:
        """GraphDriver.Data of ``docker image inspect`` (for the image's top layer)."""
        return self.driver.metadata(layer.cache_id)

    # --- read-write (container) layers --------------------------------------------------------
    def rw_layers(self) -> dict[str, RWLayer]:
        d = posixpath.join(self.root, "mounts")
        try:
            names = self.o.listdir(d)
        except FileNotFoundError:
            return {}
        out = {}
        for name in sorted(names):
            rw = self._load_mount(name)
            if rw is not None:
                out[name] = rw
        return out

    def _load_mount(self, name: str) -> RWLayer | None:
        d = self._mount_dir(name)
        mount_id = self._text(posixpath.join(d, "mount-id"))
        if not mount_id:
            return None
        init_id = self._text(posixpath.join(d, "init-id")) or ""
        parent = self._text(posixpath.join(d, "parent")) or None
        return RWLayer(name, mount_id, init_id, parent)

    def get_rw_layer(self, name: str) -> RWLayer:
        rw = self._load_mount(name)
        if rw is None:
            raise MountDoesNotExist()
        return rw

    def get_mount_id(self, name: str) -> str:
        return self.get_rw_layer(name).mount_id

    def create_rw_layer(
        self,
        name: str,
        parent: str | None,
        *,
        init: bool = True,
        mount_label: str = "",
        storage_opt: dict[str, str] | None = None,
    ) -> RWLayer:
        """A container layer: ``<mount-id>-init`` (Docker's init files) then ``<mount-id>``."""
        d = self._mount_dir(name)
        try:
            self.o.lstat(d)
        except FileNotFoundError:
            pass
        else:
            raise MountNameConflict()
        p = self.lookup_or_fail(parent) if parent else None
        mount_id = self.driver.ids.random_id()
        parent_id = p.cache_id if p is not None else ""
        init_id = ""
        if init:
            init_id = self.driver.create_init(mount_id, parent_id)
            parent_id = init_id
        self.driver.create_read_write(mount_id, parent_id or None, storage_opt)
        self.o.makedirs(d, mode=0o755, exist_ok=True)
        self._write(posixpath.join(d, "mount-id"), mount_id)
        if init_id:
            self._write(posixpath.join(d, "init-id"), init_id)
        if p is not None:
            self._write(posixpath.join(d, "parent"), p.chain_id)
        return RWLayer(name, mount_id, init_id, p.chain_id if p is not None else None)

    def _rw(self, rw: RWLayer | str) -> RWLayer:
        return self.get_rw_layer(rw) if isinstance(rw, str) else rw

    def mount(self, rw: RWLayer | str, mount_label: str = "") -> str:
        """Mount the container layer; returns ``.../<mount-id>/merged``."""
        return self.driver.get(self._rw(rw).mount_id, mount_label)

    def unmount(self, rw: RWLayer | str) -> None:
        self.driver.put(self._rw(rw).mount_id)

    def changes(self, rw: RWLayer | str) -> list[Change]:
        """``docker diff``: against the init layer, so the init files never show."""
        r = self._rw(rw)
        return self.driver.changes(r.mount_id, r.cache_parent(self))

    def rw_tar_stream(self, rw: RWLayer | str) -> bytes:
        """The layer ``docker commit`` registers: the container layer's diff."""
        r = self._rw(rw)
        return self.driver.diff(r.mount_id, r.cache_parent(self))

    def rw_size(self, rw: RWLayer | str) -> int:
        """``SizeRw`` of ``docker ps -s``."""
        r = self._rw(rw)
        return self.driver.diff_size(r.mount_id, r.cache_parent(self))

    def rw_metadata(self, rw: RWLayer | str, *, with_id: bool = True) -> dict[str, str]:
        """GraphDriver.Data of ``docker inspect`` for a container (``ID``: Docker 28+)."""
        r = self._rw(rw)
        data = self.driver.metadata(r.mount_id)
        if with_id:
            data["ID"] = r.name
        return dict(sorted(data.items()))

    def release_rw_layer(self, rw: RWLayer | str) -> list[Metadata]:
        """Remove the container layer, its init layer and its mounts entry; free the image
        layers nobody else holds."""
        r = self._rw(rw)
        self.driver.remove(r.mount_id)
        if r.init_id:
            self.driver.remove(r.init_id)
        self.driver.rmtree(self._mount_dir(r.name))
        return self._collect(r.parent)

    def driver_status(self) -> list[tuple[str, str]]:
        return self.driver.status()
