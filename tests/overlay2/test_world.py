"""All overlay2 state lives in the HostFS: a saved and re-loaded world carries on where it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from overlaysim.overlay2 import IdGen, LayerStore, Overlay2Driver
from tests.image import tarbuild as tb
from tests.overlay2.conftest import demo_tars

world = pytest.importorskip("overlaysim.world")


def test_running_containers_survive_save_and_load(tmp_path: Path) -> None:
    w = world.World.new(seed=5)
    drv = Overlay2Driver(w.fs, ids=IdGen(w.seed))
    store = LayerStore(w.fs, drv)
    base, app = demo_tars()
    top = store.register(app, store.register(base).chain_id)
    shallow = store.create_rw_layer("1" * 64, top.chain_id)
    merged = store.mount(shallow)
    store.mount(shallow)  # two users of the mount
    with w.fs.open(f"{merged}/tmp/foo", "w") as f:
        f.write("foo")
    deep = None  # an image deep enough for the relative-path mount form
    for i in range(75):
        deep = store.register(tb.tar(tb.member(f"f{i:02d}", b"x")), deep).chain_id
    rw = store.create_rw_layer("2" * 64, deep)
    deep_merged = store.mount(rw)
    assert drv.mount_data(rw.mount_id).relative
    next_id = IdGen(w.seed).bind(drv.state)  # what the next draw would be, without drawing
    path = tmp_path / "machine.world"
    world.save_world(w, path)

    w2 = world.load_world(path)
    drv2 = Overlay2Driver(w2.fs, ids=IdGen(0))
    store2 = LayerStore(w2.fs, drv2)
    assert drv2.ids.random_id() == next_id.random_id()  # the id sequence continues
    assert store2.layers() == store.layers()
    assert store2.get_rw_layer("2" * 64) == rw
    assert drv2.ref_count(shallow.mount_id) == 2
    assert [str(c) for c in store2.changes(shallow)] == ["C /tmp", "A /tmp/foo"]
    assert sum(n.startswith("f") for n in w2.fs.os.listdir(deep_merged)) == 75
    store2.unmount(rw)
    store2.unmount(shallow)
    assert drv2.is_mounted(shallow.mount_id) and not drv2.is_mounted(rw.mount_id)
    store2.unmount(shallow)
    assert not drv2.is_mounted(shallow.mount_id)
    # mounting again after the load works for both forms
    assert store2.mount(rw) == deep_merged
    store2.unmount(rw)
