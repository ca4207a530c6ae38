"""Data-only layers in the simulator beyond what the kernel scenarios compare: the refusal
of verity (not simulated), events, and a world saved and loaded with such a mount.
The kernel behaviour itself is pinned by tests/overlay/scenarios_datadir.py."""

from __future__ import annotations

import errno
import os

import pytest

from overlaysim import HostFS
from overlaysim.world import World, load_world, save_world


def _stack(fs: HostFS) -> None:
    o = fs.os
    for d in ("/l1", "/d1/sub", "/u", "/w", "/m"):
        o.makedirs(d, exist_ok=True)
    with fs.open("/d1/sub/blob", "wb") as f:
        f.write(b"DATA" * 100)
    with fs.open("/d1/seen", "wb") as f:
        f.write(b"not merged")
    with fs.open("/l1/f", "wb") as f:
        f.truncate(400)
    o.setxattr("/l1/f", "trusted.overlay.metacopy", b"")
    o.setxattr("/l1/f", "trusted.overlay.redirect", b"/sub/blob")


def _read(fs: HostFS, path: str) -> bytes:
    with fs.open(path, "rb") as f:
        data: bytes = f.read()
    return data


@pytest.mark.parametrize("verity", ["on", "require"])
def test_verity_is_refused_with_a_clear_error(verity: str) -> None:
    fs = HostFS()
    _stack(fs)
    with pytest.raises(OSError) as e:
        fs.mount("overlay", "/m", "overlay", f"lowerdir=/l1::/d1,metacopy=on,verity={verity}")
    assert e.value.errno == errno.EOPNOTSUPP
    assert "verity" in str(e.value)


def test_lazy_lowerdata_is_looked_up_on_open_and_copy_up() -> None:
    fs = HostFS()
    _stack(fs)
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l1::/d1,upperdir=/u,workdir=/w,metacopy=on")
    assert sorted(fs.os.listdir("/m")) == ["f"]
    with pytest.raises(FileNotFoundError):
        fs.os.lstat("/m/seen")
    assert fs.os.lstat("/m/f").st_blocks == 8  # guessed: 400 bytes round up to one page
    assert _read(fs, "/m/f") == b"DATA" * 100
    fs.os.chmod("/m/f", 0o600)  # metadata only: the data stays in the data layer
    copies = [e for e in fs.events if e.kind == "copy_up"]
    assert copies and copies[-1].detail["metadata_only"]
    assert fs.os.getxattr("/u/f", "trusted.overlay.metacopy") == b""
    with fs.open("/m/f", "ab") as f:
        f.write(b"+")
    assert _read(fs, "/u/f") == b"DATA" * 100 + b"+"


def test_world_round_trip_keeps_data_layers_unmerged(tmp_path: os.PathLike[str]) -> None:
    fs = HostFS()
    _stack(fs)
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l1::/d1,upperdir=/u,workdir=/w,metacopy=on")
    path = os.path.join(os.fspath(tmp_path), "w.osim")
    save_world(World(fs, {}, seed=1), path)
    back = load_world(path).fs
    assert sorted(back.os.listdir("/m")) == ["f"]
    assert _read(back, "/m/f") == b"DATA" * 100
