"""The layer store: layerdb files, chain ids, tar-split, references, container layers (§1.14)."""

from __future__ import annotations

import gzip
import hashlib
import re
import stat

import pytest

from overlaysim.image.digest import chain_ids
from overlaysim.overlay2 import (
    MAX_LAYER_DEPTH,
    LayerDoesNotExist,
    LayerNotRetained,
    MaxDepthExceeded,
    MountDoesNotExist,
    MountNameConflict,
)
from tests.image import tarbuild as tb
from tests.overlay2.conftest import HOME, Docker, demo_tars, read

LAYERDB = "/var/lib/docker/image/overlay2/layerdb"
CID = "9" * 63 + "a"  # a container id


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load(dk: Docker) -> str:
    """docker load of the demo image: register the layers, the image takes the top one."""
    base, app = demo_tars()
    l0 = dk.store.register(base)
    l1 = dk.store.register(app, l0.chain_id)
    top = dk.store.get(l1.chain_id)
    dk.store.release(l0)
    dk.store.release(l1)
    return top.chain_id


def test_register_writes_layerdb(dk: Docker) -> None:
    fs, store = dk.fs, dk.store
    base, app = demo_tars()
    l0 = store.register(base)
    l1 = store.register(app, l0.chain_id)
    assert [l0.diff_id, l1.diff_id] == [sha(base), sha(app)]
    assert [l0.chain_id, l1.chain_id] == chain_ids([sha(base), sha(app)])
    assert l1.chain_id == sha(f"{sha(base)} {sha(app)}".encode())
    d = f"{LAYERDB}/sha256/{l1.chain_id[7:]}"
    assert sorted(fs.os.listdir(d)) == ["cache-id", "diff", "parent", "size", "tar-split.json.gz"]
    assert "parent" not in fs.os.listdir(f"{LAYERDB}/sha256/{l0.chain_id[7:]}")
    assert re.fullmatch(rb"[0-9a-f]{64}", read(fs, f"{d}/cache-id"))
    assert read(fs, f"{d}/cache-id").decode() == l1.cache_id
    assert read(fs, f"{d}/diff") == l1.diff_id.encode()
    assert read(fs, f"{d}/parent") == l0.chain_id.encode()
    assert read(fs, f"{d}/size") == str(l1.diff_size).encode()
    assert l1.diff_size == len(b"#!/bin/sh\necho 'Hello from the top layer'\n") + len(
        b"Welcome! This motd comes from the app layer.\n"
    )
    assert gzip.decompress(read(fs, f"{d}/tar-split.json.gz")).startswith(b'{"')
    for name in fs.os.listdir(d):
        assert stat.S_IMODE(fs.os.lstat(f"{d}/{name}").st_mode) == 0o644
    assert stat.S_IMODE(fs.os.lstat(d).st_mode) == 0o700
    assert stat.S_IMODE(fs.os.lstat(f"{LAYERDB}/sha256").st_mode) == 0o755
    for d in ("/var/lib/docker/image", "/var/lib/docker/image/overlay2", LAYERDB):
        assert stat.S_IMODE(fs.os.lstat(d).st_mode) == 0o700
    assert fs.os.listdir(f"{LAYERDB}/tmp") == []
    # the cache id names the overlay2 directory, whose parent is the base layer's
    assert dk.drv.parent_id(l1.cache_id) == l0.cache_id
    assert store.size(l1) == l0.diff_size + l1.diff_size
    assert store.depth(l1) == 2


def test_tar_stream_reassembles_the_original_bytes(dk: Docker) -> None:
    base, app = demo_tars()
    l0 = dk.store.register(gzip.compress(base))  # compressed blobs are accepted
    assert l0.diff_id == sha(base)
    l1 = dk.store.register(app, l0.chain_id)
    assert dk.store.tar_stream(l0) == base
    assert dk.store.tar_stream(l1) == app


def test_register_of_an_existing_chain(dk: Docker) -> None:
    base, _ = demo_tars()
    first = dk.store.register(base)
    before = dk.drv.ids_on_disk()
    again = dk.store.register(base)
    assert again == first
    assert dk.drv.ids_on_disk() == before  # the new directory was dropped
    dk.store.release(first)
    assert dk.store.lookup(first.chain_id) is not None
    dk.store.release(again)
    assert dk.store.lookup(first.chain_id) is None


def test_references_and_release(dk: Docker) -> None:
    fs, store = dk.fs, dk.store
    top = load(dk)
    layers = store.layers()
    assert len(layers) == 2
    base = layers[top].parent
    assert base is not None
    assert store.references(top) == 1 and store.references(base) == 1  # image / child
    with pytest.raises(LayerNotRetained):
        store.release(base)  # held by its child only
    removed = store.release(top)  # docker rmi
    assert [m.chain_id for m in removed] == [top, base]
    assert removed[0].size == removed[0].diff_size + removed[1].diff_size
    assert store.layers() == {}
    assert fs.os.listdir(f"{LAYERDB}/sha256") == []
    assert dk.drv.ids_on_disk() == [] and fs.os.listdir(f"{HOME}/l") == []
    assert store.release(top) == []  # unknown: nothing to do (moby)


def test_container_layer(dk: Docker) -> None:
    fs, store = dk.fs, dk.store
    top = load(dk)
    rw = store.create_rw_layer(CID, top)
    assert rw.name == CID and rw.init_id == f"{rw.mount_id}-init" and rw.parent == top
    d = f"{LAYERDB}/mounts/{CID}"
    assert read(fs, f"{d}/mount-id") == rw.mount_id.encode()
    assert read(fs, f"{d}/init-id") == rw.init_id.encode()
    assert read(fs, f"{d}/parent") == top.encode()
    assert store.get_rw_layer(CID) == rw and store.get_mount_id(CID) == rw.mount_id
    with pytest.raises(MountNameConflict):
        store.create_rw_layer(CID, top)
    merged = store.mount(CID)
    assert merged == f"{HOME}/{rw.mount_id}/merged"
    assert read(fs, f"{merged}/hello.sh").startswith(b"#!/bin/sh")
    assert fs.os.path.exists(f"{merged}/.dockerenv")
    with fs.open(f"{merged}/tmp/foo", "w") as f:
        f.write("foo")
    assert [str(c) for c in store.changes(rw)] == ["C /tmp", "A /tmp/foo"]
    assert store.rw_size(rw) == 3
    meta = store.rw_metadata(rw)
    assert list(meta) == ["ID", "LowerDir", "MergedDir", "UpperDir", "WorkDir"]
    assert meta["ID"] == CID
    image_top = store.lookup_or_fail(top)
    assert meta["LowerDir"].split(":") == [
        f"{HOME}/{rw.init_id}/diff",
        f"{HOME}/{image_top.cache_id}/diff",
        f"{HOME}/{store.lookup_or_fail(image_top.parent or '').cache_id}/diff",
    ]
    assert "ID" not in store.rw_metadata(rw, with_id=False)
    assert list(store.metadata(image_top)) == ["LowerDir", "MergedDir", "UpperDir", "WorkDir"]
    # docker commit: the container's diff registered on the image's top layer
    committed = store.register(store.rw_tar_stream(rw), top)
    assert committed.parent == top and committed.diff_size == 3
    store.unmount(rw)
    assert not dk.drv.is_mounted(rw.mount_id)
    # docker rm: the rw and init layers go, the image layers stay (the image holds them)
    assert store.release_rw_layer(rw) == []
    assert not dk.drv.exists(rw.mount_id) and not dk.drv.exists(rw.init_id)
    assert fs.os.listdir(f"{LAYERDB}/mounts") == []
    with pytest.raises(MountDoesNotExist):
        store.get_rw_layer(CID)
    assert len(store.layers()) == 3


def test_last_container_releases_an_untagged_image(dk: Docker) -> None:
    top = load(dk)
    rw = dk.store.create_rw_layer(CID, top)
    dk.store.release(top)  # docker rmi -f while a container still uses it
    assert dk.store.lookup(top) is not None
    removed = dk.store.release_rw_layer(rw)
    assert len(removed) == 2 and dk.store.layers() == {}
    assert dk.drv.ids_on_disk() == []


def test_state_survives_a_new_process(dk: Docker) -> None:
    top = load(dk)
    rw = dk.store.create_rw_layer(CID, top)
    dk.store.mount(rw)
    later = dk.again()
    assert later.store.layers() == dk.store.layers()
    assert later.store.get_rw_layer(CID) == rw
    assert later.drv.ref_count(rw.mount_id) == 1
    later.store.unmount(CID)
    later.store.release_rw_layer(CID)
    assert later.store.release(top) != []
    assert later.store.layers() == {}


def test_unknown_layers(dk: Docker) -> None:
    with pytest.raises(LayerDoesNotExist, match="layer does not exist"):
        dk.store.register(tb.tar(tb.member("x", b"x")), "sha256:" + "0" * 64)
    with pytest.raises(LayerDoesNotExist):
        dk.store.get("not-a-digest")
    with pytest.raises(LayerDoesNotExist):
        dk.store.create_rw_layer(CID, "sha256:" + "1" * 64)
    assert dk.drv.ids_on_disk() == []


def test_depth_limit_125(dk: Docker) -> None:
    store = dk.store
    chain = None
    for i in range(MAX_LAYER_DEPTH):
        chain = store.register(tb.tar(tb.member(f"f{i:03d}", str(i).encode())), chain).chain_id
    assert chain is not None
    with pytest.raises(MaxDepthExceeded, match=r"^max depth exceeded$"):
        store.register(tb.tar(tb.member("one-too-many", b"x")), chain)
    # a container on the deepest image: 125 + init = 126 lowers, mounted with l/ paths
    rw = store.create_rw_layer(CID, chain)
    assert len(dk.drv.lower(rw.mount_id)) == 126
    merged = store.mount(rw)
    assert dk.drv.mount_data(rw.mount_id).relative
    names = dk.fs.os.listdir(merged)
    assert sum(n.startswith("f") for n in names) == MAX_LAYER_DEPTH
    store.unmount(rw)
