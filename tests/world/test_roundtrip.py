"""Save -> load gives back the same machine, in this process and in a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from overlaysim.errors import WorldError
from overlaysim.vfs.memfs import MemInode
from overlaysim.world import World, load_world, open_world, save_world
from overlaysim.world.restore import MEMINODE_SLOTS
from overlaysim.world.snapshot import capture
from tests.world.helpers import PY, build_rich, read_bytes, stable, view

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIEW_SCRIPT = (
    "import json, sys\n"
    "from overlaysim.world import load_world\n"
    "from tests.world.helpers import view\n"
    "w = load_world(sys.argv[1])\n"
    "print(json.dumps({'view': view(w.fs), 'meta': w.meta, 'seed': w.seed}))\n"
)


def _python() -> str:
    return PY if os.path.exists(PY) else sys.executable


def run_py(script: str, *args: str) -> str:
    out = subprocess.run([_python(), "-c", script, *args], cwd=REPO, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def path(tmp_path: object) -> str:
    return os.path.join(str(tmp_path), "test.world")


def test_same_process_round_trip_is_identical(path: str) -> None:
    w = build_rich()
    save_world(w, path)
    loaded = load_world(path)
    assert loaded.meta == w.meta and loaded.seed == 42
    assert [m.line() for m in loaded.fs.mounts()] == [m.line() for m in w.fs.mounts()]
    before, after = view(w.fs), view(loaded.fs)
    assert len(before["order"]) > 50
    assert after == before


def test_separate_process_round_trip_is_identical(path: str) -> None:
    w = build_rich()
    save_world(w, path)
    got = json.loads(run_py(VIEW_SCRIPT, path))
    assert got["meta"] == w.meta and got["seed"] == 42
    expected = stable(view(w.fs))
    assert got["view"]["mounts"] == expected["mounts"]
    assert got["view"]["stats"] == expected["stats"]
    assert got["view"] == expected


def test_the_saved_details_that_matter(path: str) -> None:
    w = build_rich()
    save_world(w, path)
    o = load_world(path).fs.os
    wo = o.lstat("/u/gone.txt")  # the whiteout the overlay wrote in its upper
    assert (wo.st_mode & 0o170000, wo.st_rdev) == (0o020000, 0)
    assert wo.st_nlink == 3  # two whiteouts + the master in work/work
    assert o.lstat("/data/file").st_nlink == 3
    assert o.lstat("/data/file").st_ino == o.lstat("/data/hard2").st_ino
    assert o.getxattr("/data/sub", "trusted.overlay.opaque") == b"y"
    assert o.getxattr("/u", "trusted.overlay.impure") == b"y"
    assert len(o.getxattr("/u/a.txt", "trusted.overlay.origin")) == 33  # a tmpfs-shaped handle
    assert o.getxattr("/data/file", "user.comment") == b"a\0binary\xffvalue"
    assert o.readlink("/data/long-link") == "/" + "x" * 200
    assert b"caf\xc3\xa9-\xff" in o.listdir(b"/data")
    assert o.lstat("/data/sparse").st_blocks == 8  # one page of data, three holes
    assert "gone.txt" not in o.listdir("/merged")
    assert o.lstat("/merged/a.txt").st_ino == o.lstat("/l1/a.txt").st_ino  # origin survives


def test_shared_copy_on_write_data_is_stored_once_and_stays_shared(path: str) -> None:
    w = build_rich()
    snap = capture(w.fs)
    regular = [r for r in snap.inodes if r[3] & 0o170000 == 0o100000]
    assert len(snap.blobs) < len(regular)  # /u/a.txt shares /l1/a.txt's bytes
    save_world(w, path)
    fs = load_world(path).fs
    lower, upper = fs.os._resolve("/l1/a.txt")[1], fs.os._resolve("/u/a.txt")[1]
    assert isinstance(lower, MemInode) and isinstance(upper, MemInode)
    assert lower.blob is upper.blob and lower.blob.refs == 2
    with fs.open("/merged/a.txt", "a") as f:
        f.write("changed on top\n")
    with fs.open("/l1/a.txt") as f:
        assert "changed" not in f.read()
    with fs.open("/merged/a.txt") as f:
        assert f.read().endswith("changed on top\n")


def _more_work(w: World) -> None:
    fs, o = w.fs, w.fs.os
    o.mkdir("/data/later", 0o700)
    with fs.open("/data/later/f", "w") as f:
        f.write("new inode number, new times")
    o.link("/data/later/f", "/data/later/g")
    o.unlink("/merged/dir/b-in-dir")  # another whiteout: a link to the saved master
    o.rename("/merged/b.txt", "/merged/b-renamed.txt")
    with fs.open("/merged/a.txt", "a") as f:
        f.write("more\n")
    with fs.open("/mnt/t/keep", "a") as f:
        f.write(" and more")
    o.unlink("/stack/merged/new")
    o.setxattr("/merged/newdir", "user.x", b"1")


def test_a_loaded_world_continues_like_the_original(path: str) -> None:
    w = build_rich()
    save_world(w, path)
    loaded = load_world(path)
    _more_work(w)
    _more_work(loaded)
    assert view(loaded.fs) == view(w.fs)
    assert loaded.fs.os.lstat("/u/gone.txt").st_nlink == 4


NEW_MOUNT = (
    "import json, sys\n"
    "from overlaysim.world import open_world\n"
    "with open_world(sys.argv[1], write=False) as w:\n"
    "    w.fs.mount('tmpfs', '/mnt/t2', 'tmpfs', '')\n"
    "    w.fs.os.mkdir('/data/next')\n"
    "    s, n = w.fs.os.lstat('/mnt/t2'), w.fs.os.lstat('/data/next')\n"
    "    print(json.dumps([s.st_dev, n.st_ino, n.st_mtime_ns, w.fs.mount_table.order[-1].id]))\n"
)


def test_fresh_processes_continue_deterministically(path: str) -> None:
    w = build_rich()
    save_world(w, path)
    first, second = run_py(NEW_MOUNT, path), run_py(NEW_MOUNT, path)
    assert first == second
    dev, _ino, mtime, mount_id = json.loads(first)
    held = {s[2] for s in view(w.fs)["stats"].values()}
    assert dev not in held  # a new device number, never one the world already holds
    assert mount_id > max(m.id for m in w.fs.mount_table.order)
    assert mtime > max(s[15] for s in view(w.fs)["stats"].values()) - 10**9


def test_open_world_saves_only_a_body_that_returns(path: str) -> None:
    with open_world(path) as w:
        w.fs.os.mkdir("/root/one")
        w.meta["n"] = 1
    before = read_bytes(path)
    with pytest.raises(RuntimeError), open_world(path) as w:
        w.fs.os.mkdir("/root/two")
        raise RuntimeError("the command failed")
    assert read_bytes(path) == before
    with open_world(path, write=False) as w:
        w.fs.os.mkdir("/root/three")
    assert read_bytes(path) == before
    w = load_world(path)
    assert w.fs.os.listdir("/root") == ["one"] and w.meta == {"n": 1}


def test_a_failed_first_command_creates_no_file(path: str) -> None:
    with pytest.raises(ValueError), open_world(path):
        raise ValueError("boom")
    assert not os.path.exists(path)
    with pytest.raises(WorldError, match="no world file"), open_world(path, create=False):
        pass
    with pytest.raises(WorldError, match="no world file"):
        load_world(path)


def test_new_world_is_a_usual_machine(path: str) -> None:
    w = World.new(seed=7)
    o = w.fs.os
    for d in ("/etc", "/tmp", "/var/lib", "/run", "/root", "/dev", "/usr/bin"):
        assert o.path.isdir(d), d
    assert oct(o.lstat("/tmp").st_mode) == oct(0o41777)
    assert not o.path.exists("/var/lib/docker")
    assert [m.target for m in w.fs.mounts()] == ["/", "/proc", "/run"]
    with w.fs.open("/dev/zero", "rb") as f:
        assert f.read(4) == bytes(4)
    save_world(w, path)
    assert load_world(path).seed == 7


def test_meta_must_be_json(path: str) -> None:
    w = World.new()
    w.meta["bad"] = {1, 2}
    with pytest.raises(WorldError, match="JSON"):
        save_world(w, path)
    assert not os.path.exists(path)


def test_restore_knows_every_slot_of_meminode() -> None:
    # restore fills MemInode slots itself; a new slot in memfs must be saved too
    assert set(MemInode.__slots__) == MEMINODE_SLOTS


def test_overlay_params_come_back_equal(path: str) -> None:
    from dataclasses import replace

    w = build_rich()
    save_world(w, path)
    loaded = load_world(path)
    for a, b in zip(w.fs.mount_table.order, loaded.fs.mount_table.order, strict=True):
        assert (a.id, a.source, a.fstype, a.options, a.data, a.rdonly) == (
            b.id, b.source, b.fstype, b.options, b.data, b.rdonly)  # fmt: skip
        if a.private is not None:
            assert replace(a.private.params, notes=()) == replace(b.private.params, notes=())
            assert a.private.sb.dev == b.private.sb.dev
