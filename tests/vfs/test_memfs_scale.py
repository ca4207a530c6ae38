"""The tmpfs inode diet (issue 11) keeps every file its own: shared empty data, shared ints.

New regular files share one empty blob until written, and an inode's mode, uid and gid are
canonical int objects; these tests hold that nothing observable changes, and that a tree of
empty files stays within the memory budget per entry.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

from overlaysim import HostFS
from overlaysim.vfs.memfs import EMPTY_BLOB
from overlaysim.world import World, load_world, save_world

W = os.O_WRONLY | os.O_CREAT


def _new(fs: HostFS, path: str, mode: int = 0o644) -> None:
    fs.os.close(fs.os.open(path, W, mode))


def test_empty_files_stay_independent_when_one_is_written() -> None:
    fs = HostFS()
    o = fs.os
    for n in ("a", "b", "c"):
        _new(fs, f"/{n}")
    fd = o.open("/a", os.O_WRONLY)
    o.write(fd, b"data")
    o.close(fd)
    o.truncate("/b", 10_000)  # a hole: allocation is per file
    assert [o.lstat(f"/{n}").st_size for n in "abc"] == [4, 10_000, 0]
    assert [o.lstat(f"/{n}").st_blocks for n in "abc"] == [8, 0, 0]
    with fs.open("/c", "rb") as f:
        assert f.read() == b""
    fd = o.open("/c", os.O_WRONLY | os.O_TRUNC)
    o.close(fd)
    assert o.lstat("/c").st_size == 0 and o.lstat("/a").st_size == 4
    assert EMPTY_BLOB.buf == b"" and EMPTY_BLOB.pages is None


def test_copy_up_of_an_empty_file_then_write_leaves_the_lower_empty() -> None:
    fs = HostFS()
    o = fs.os
    for d in ("/l", "/u", "/w", "/m"):
        o.mkdir(d)
    _new(fs, "/l/e")
    _new(fs, "/l/other")
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    fd = o.open("/m/e", os.O_WRONLY | os.O_APPEND)
    o.write(fd, b"up")
    o.close(fd)
    assert o.lstat("/u/e").st_size == 2
    assert o.lstat("/l/e").st_size == 0 and o.lstat("/l/other").st_size == 0


def test_shared_empty_data_survives_a_world_round_trip(tmp_path: Path) -> None:
    """A saved world stores the shared empty blob once; loaded files still part on write."""
    fs = HostFS()
    for n in ("a", "b"):
        _new(fs, f"/{n}")
    path = str(tmp_path / "w.world")
    save_world(World(fs), path)
    loaded = load_world(path).fs
    with loaded.open("/a", "wb") as f:
        f.write(b"only a")
    with loaded.open("/b", "rb") as f:
        assert f.read() == b""
    assert loaded.os.lstat("/a").st_size == 6 and fs.os.lstat("/a").st_size == 0


def test_modes_and_owners_are_exact_and_shared() -> None:
    fs = HostFS()
    o = fs.os
    _new(fs, "/a", 0o640)
    _new(fs, "/b", 0o640)
    o.chown("/a", 70_000, 1000)
    o.chown("/b", 70_000, 1000)
    o.chmod("/b", 0o4750)
    sa, sb = o.lstat("/a"), o.lstat("/b")
    assert (sa.st_mode, sa.st_uid, sa.st_gid) == (0o100640, 70_000, 1000)
    assert (sb.st_mode, sb.st_uid, sb.st_gid) == (0o104750, 70_000, 1000)
    a, b = fs.root_mount.root.entries["a"], fs.root_mount.root.entries["b"]
    assert a.gid is b.gid  # one int object for a value below 65536, whoever computed it
    o.chmod("/b", 0o640)
    assert a.mode is b.mode


def test_a_tree_of_empty_files_costs_less_than_400_bytes_per_entry() -> None:
    """Measured with tracemalloc: inode, name, directory slot and the ints it keeps."""
    fs = HostFS()
    o = fs.os
    o.mkdir("/d")
    n = 20_000
    names = [f"f{i:06d}" for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for name in names:
            fd = o.open(f"/d/{name}", W, 0o644)
            o.utime(fd, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
            o.close(fd)
        gc.collect()
        per_entry = (tracemalloc.get_traced_memory()[0] - base) / n
    finally:
        tracemalloc.stop()
    assert per_entry < 400, per_entry
