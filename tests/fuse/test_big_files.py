"""Big files through ``overlaysim mount``: what the speed-ups of issue 13 must not change.

An append to a copied-up file keeps the lower's bytes shared (memfs ``Blob`` prefix), and
the daemon raises its mount's kernel read-ahead to 1 MiB; the same workload on a kernel
overlay and on the FUSE mount must show the same bytes, sizes and upper dir. Never timing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from overlaysim.fuse import binding
from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]
BIG = 3 << 20


def _build(base: Path) -> list[str]:
    low = base / "low"
    low.mkdir()
    (low / "big").write_bytes(os.urandom(BIG))
    (low / "big2").write_bytes(os.urandom(BIG + 5))
    return ["low"]


def _digest(path: Path, chunk: int) -> tuple[int, str]:
    h = hashlib.sha1()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while data := f.read(chunk):
            h.update(data)
            n += len(data)
    return n, h.hexdigest()


def _workload(mnt: Path, seen: dict[str, Any]) -> None:
    seen["before"] = _digest(mnt / "big", 128 << 10)
    fd = os.open(mnt / "big", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"x")
        os.write(fd, b"yz")
    finally:
        os.close(fd)
    fd = os.open(mnt / "big2", os.O_WRONLY)
    try:
        os.pwrite(fd, b"middle", BIG // 2)  # after the first MiB: the prefix stays shared
        os.pwrite(fd, b"head", 10)  # then within it: the file is copied
    finally:
        os.close(fd)
    os.truncate(mnt / "big2", BIG - 7)
    seen["size"] = os.stat(mnt / "big").st_size
    seen["big"] = _digest(mnt / "big", 1 << 20)
    seen["big2"] = _digest(mnt / "big2", 64 << 10)
    seen["lower"] = _digest(mnt.parent / "low" / "big", 1 << 20)


def test_appends_and_overwrites_of_big_copied_up_files_match_the_kernel(tmp_path: Path) -> None:
    layers = fh.Layers(tmp_path, _build)
    kernel: dict[str, Any] = {}
    fuse: dict[str, Any] = {}
    k_upper, _ = fh.on_kernel(layers, lambda m: _workload(m, kernel))
    f_upper, _ = fh.on_fuse(layers, lambda m: _workload(m, fuse), tmp_path / "run")
    assert fuse == kernel
    assert kernel["size"] == BIG + 3
    assert fh.diff(fh.upper_view(k_upper), fh.upper_view(f_upper)) == []


def test_the_daemon_reads_ahead_one_mib(tmp_path: Path) -> None:
    layers = fh.Layers(tmp_path, _build)
    seen: dict[str, Any] = {}

    def look(mnt: Path) -> None:
        dev = os.stat(mnt).st_dev
        knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
        seen["kb"] = fh.wait_for(
            lambda: int(knob.read_text()) >= binding.READ_AHEAD_KB and int(knob.read_text()),
            what="the mount's read-ahead raised",
        )
        seen["data"] = _digest(mnt / "big", 1 << 20)

    fh.on_fuse(layers, look, tmp_path / "run")
    assert seen["kb"] == binding.READ_AHEAD_KB
    assert seen["data"] == _digest(tmp_path / "low" / "big", 1 << 20)
