"""The write-back of the upper and work dirs together (index=on, nfs_export=on), read by a
real kernel mount afterwards, and a write-back interrupted between its two swaps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from overlaysim.fuse import writeback
from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import umount as kumount
from overlaysim.vfs.hostfs import HostFS
from tests.fuse import fharness as H

REASON = H.skip_reason()


def _lower(base: Path) -> list[str]:
    low = base / "l"
    low.mkdir()
    (low / "a").write_bytes(b"x")
    os.link(low / "a", low / "b")
    (low / "d").mkdir()
    (low / "d" / "c").write_bytes(b"y")
    return ["l"]


def _chmod(mnt: Path) -> None:
    os.chmod(mnt / "a", 0o600)  # copy-up of a hard-linked file: indexed with index=on
    os.chmod(mnt / "d" / "c", 0o600)


def _remount_view(layers: H.Layers, upper: Path, work: Path, opts: str) -> dict[str, Any]:
    """What a real kernel mount of ``upper``/``work`` shows (or its errno)."""
    mnt = layers.base / "mnt"
    data = f"lowerdir={':'.join(layers.lowers)},upperdir={upper},workdir={work},{opts}"
    try:
        kmount("overlay", str(mnt), "overlay", data)
    except OSError as e:
        return {"mount": H.errno_name(e)}
    try:
        sa, sb = os.lstat(mnt / "a"), os.lstat(mnt / "b")
        return {"mount": "ok", "nlink": (sa.st_nlink, sb.st_nlink), "same": sa.st_ino == sb.st_ino,
                "modes": (oct(sa.st_mode), oct(os.lstat(mnt / "d" / "c").st_mode)),
                "names": sorted(os.listdir(mnt)), "index": sorted(os.listdir(work / "index"))}  # fmt: skip
    finally:
        kumount(str(mnt))


@pytest.mark.kernel
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
@pytest.mark.parametrize("opts", ["index=on", "index=on,nfs_export=on"])
def test_a_written_back_index_mounts_on_the_kernel_as_a_kernel_made_one(
    tmp_path: Path, opts: str
) -> None:
    layers = H.Layers(tmp_path, _lower)
    ku, kw = H.on_kernel(layers, _chmod, opts)
    fu, fw = H.on_fuse(layers, _chmod, tmp_path / "run", opts)
    assert os.stat(fu / "a").st_ino in {os.stat(p).st_ino for p in (fw / "index").iterdir()}
    kernel, fuse = _remount_view(layers, ku, kw, opts), _remount_view(layers, fu, fw, opts)
    assert kernel["mount"] == "ok" and kernel["nlink"] == (2, 2) and kernel["same"]
    # Open divergence: the written-back trusted.overlay.origin handles (and index names) are
    # the simulation's file handles, which the kernel's index=on check of the upper root's
    # origin refuses (ESTALE), where the simulation's own next mount accepts them.
    assert fuse == {"mount": "ESTALE"}
    # Without the index the kernel does not verify origins, and it reads the same tree.
    ko, fo = _remount_view(layers, ku, kw, "index=off"), _remount_view(layers, fu, fw, "index=off")
    assert fo["mount"] == "ok" and (fo["modes"], fo["names"]) == (ko["modes"], ko["names"])


def _sim_pair(tag: bytes) -> HostFS:
    fs = HostFS()
    fs.os.makedirs("/s/u")
    fs.os.makedirs("/s/w/index")
    with fs.open("/s/u/f", "wb") as f:
        f.write(tag)
    fs.os.link("/s/u/f", "/s/w/index/f")
    return fs


def _crash_in_write_back(tmp_path: Path, after_swaps: int) -> int:
    """Run write_back_pair in a child that dies after ``after_swaps`` swaps; its pid."""
    fs = _sim_pair(b"new")
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        real = writeback._swap
        count = [0]

        def swap(tmp: str, real_dir: str) -> str:
            if count[0] == after_swaps:
                os._exit(0)  # killed here
            count[0] += 1
            return real(tmp, real_dir)

        writeback._swap = swap  # type: ignore[assignment]
        writeback.write_back_pair(fs, "/s/u", str(tmp_path / "u"), "/s/w", str(tmp_path / "w"))
        os._exit(1)
    os.waitpid(pid, 0)
    return pid


def _old_dirs(tmp_path: Path) -> None:
    (tmp_path / "w" / "index").mkdir(parents=True)
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "f").write_bytes(b"old")


@pytest.mark.parametrize("after_swaps", [0, 1])
def test_a_write_back_killed_between_its_swaps_is_completed_by_the_next_mount(
    tmp_path: Path, after_swaps: int
) -> None:
    _old_dirs(tmp_path)
    _crash_in_write_back(tmp_path, after_swaps)
    u, w = tmp_path / "u", tmp_path / "w"
    journal = [n for n in os.listdir(tmp_path) if n.endswith(".commit")]
    assert len(journal) == 1
    assert (u / "f").read_bytes() == (b"new" if after_swaps else b"old")  # half-swapped
    done = writeback.recover(str(u), str(w))
    assert any(x.startswith("completed") for x in done)
    assert sorted(os.listdir(tmp_path)) == ["u", "w"]  # journal and old trees removed
    assert (u / "f").read_bytes() == b"new"
    assert os.stat(u / "f").st_ino == os.stat(w / "index" / "f").st_ino  # one inode again


def test_a_write_back_killed_before_its_journal_leaves_both_dirs_old(tmp_path: Path) -> None:
    _old_dirs(tmp_path)
    fs = _sim_pair(b"new")
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        writeback._write_journal = lambda *a: os._exit(0)  # type: ignore[assignment]
        writeback.write_back_pair(fs, "/s/u", str(tmp_path / "u"), "/s/w", str(tmp_path / "w"))
        os._exit(1)
    os.waitpid(pid, 0)
    assert len(os.listdir(tmp_path)) == 4  # the two new trees left beside the old dirs
    writeback.recover(str(tmp_path / "u"), str(tmp_path / "w"))
    assert sorted(os.listdir(tmp_path)) == ["u", "w"]
    assert (tmp_path / "u" / "f").read_bytes() == b"old"
