"""The kernel log lines of xino setup (super.c ovl_get_layers, ovl_lower_dir) predicted by
overlay/layers.py for real layers, compared with what ``mount -t overlay`` logs here."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from overlaysim.overlay.layers import validate_mount
from overlaysim.overlay.xino import Xino, xino_bits_for
from overlaysim.testing import kernel as K
from overlaysim.testing.resolver import RealResolver
from overlaysim.vfs import HostFS

XINO_WORDS = ("xino", "file handles")


def _mark() -> str | None:
    """Write a unique line to the kernel log (the ring buffer may be full: counting lines
    would not find where ours start); None if that is not permitted."""
    mark = f"osim-xino-{os.urandom(6).hex()}"
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(mark + "\n")
    except OSError:
        return None
    return mark


def _since(mark: str) -> list[str]:
    out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    lines = [line.split("] ", 1)[-1] for line in out.splitlines()]
    return lines[len(lines) - lines[::-1].index(mark):] if mark in lines else []


@pytest.fixture
def layers(tmp_path: Path) -> Iterator[Path]:
    ok, why = K.can_mount()
    if not ok:
        pytest.skip(why)
    for fs in ("A", "B", "C"):
        (tmp_path / fs).mkdir()
        K.mount("tmpfs", str(tmp_path / fs), "tmpfs", "")
    for d in ("A/u", "A/w", "A/l", "B/l", "C/l", "A/iu", "A/iw", "inner", "m"):
        (tmp_path / d).mkdir()
    try:
        yield tmp_path
    finally:
        for target in ("m", "inner", "A", "B", "C"):
            while K.mount_info(str(tmp_path / target)) is not None:
                K.umount(str(tmp_path / target), K.MNT_DETACH)


@pytest.mark.kernel
def test_xino_log_lines_match_the_kernel(layers: Path) -> None:
    b = str(layers)
    K.mount("overlay", f"{b}/inner", "overlay",
            f"lowerdir={b}/B/l:{b}/C/l,upperdir={b}/A/iu,workdir={b}/A/iw,xino=on")  # fmt: skip
    up = f"upperdir={b}/A/u,workdir={b}/A/w"
    cases = [
        f"lowerdir={b}/A/l,{up},xino=on",  # one fs: "useless"
        f"lowerdir={b}/B/l,{up},xino=on",  # 2 bits
        f"lowerdir={b}/B/l:{b}/C/l:{b}/A/l,xino=auto",  # 3 bits
        f"lowerdir={b}/inner,{up},xino=auto",  # no file handles: falls back to xino=off
        f"lowerdir={b}/inner,{up},xino=on",  # stays on: 2 bits
        f"lowerdir={b}/B/l:{b}/C/l,{up}",  # xino=off: nothing
    ]
    for data in cases:
        mark = _mark()
        if mark is None:
            pytest.skip("the kernel log is not writable here")
        plan = validate_mount(data, RealResolver())
        K.mount("overlay", f"{b}/m", "overlay", data)
        K.umount(f"{b}/m")
        new = [line for line in _since(mark) if any(w in line for w in XINO_WORDS)]
        want = [n for n in plan.notes if any(w in n for w in XINO_WORDS)]
        # other mounts may log at the same time: ours must be there, in order
        got = [line for line in new if line in want]
        assert got == want, (data, new, want)


def test_xino_bits_and_fsids() -> None:
    """ilog2(numfs - 1) + 2 bits; fsid 0 for the upper fs and lowers on it, then 1, 2..."""
    assert [xino_bits_for(n) for n in (2, 3, 4, 5, 9)] == [2, 3, 3, 4, 5]
    fs = HostFS()
    for d in ("/a", "/b", "/c"):
        fs.os.mkdir(d)
        fs.mount("tmpfs", d, "tmpfs")
        fs.os.mkdir(f"{d}/x")
    _, a = fs.os._resolve("/a/x")
    _, b = fs.os._resolve("/b/x")
    _, c = fs.os._resolve("/c/x")
    x = Xino([b, a, c, b], a, "on")
    assert (x.fsids, x.numfs, x.mode, x.shift) == ([1, 0, 2, 1], 3, 3, 61)
    assert x.remap(5, 2) == 5 | 2 << 62 and x.remap(1 << 62, 1) == 1 << 62  # too big: kept
    assert (x.next_ino(), x.next_ino()) == (2 | 1 << 61, 3 | 1 << 61)
    assert Xino([a], a, "on").mode == 0  # one fs: xino is useless
    assert Xino([b], a, "off").mode == -1
    assert Xino([b, c], None, "on").fsids == [1, 2]  # fsid 0 is kept for the (absent) upper
