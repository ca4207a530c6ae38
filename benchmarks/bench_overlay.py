"""The overlay engine against the kernel overlay on tmpfs: stat by stack depth (warm and first
lookup), listdir of a directory merged over 10 layers, copy-up of 4 KiB, 1 MiB and 64 MiB."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

from benchmarks.common import Row, can_mount, median_once, median_per_op, real_tmpfs, row
from overlaysim import HostFS

DEPTHS = (1, 10, 128)
SIZES = (("4 KiB", 4096, 9), ("1 MiB", 1 << 20, 9), ("64 MiB", 64 << 20, 5))


def _layers(o: Any, base: str, n: int, merged_dir: bool = False) -> str:
    """n lower layers; the file a/b/c/d/f sits in the bottom one. Returns the lowerdir option."""
    names = []
    for i in range(n):
        layer = f"{base}/L{i}"
        o.makedirs(f"{layer}/a/b/c/d" if i == n - 1 else layer)
        fd = o.open(f"{layer}/own{i}", os.O_CREAT | os.O_WRONLY, 0o644)
        o.close(fd)
        if merged_dir:
            o.makedirs(f"{layer}/m", exist_ok=True)
            for j in range(10):
                fd = o.open(f"{layer}/m/e{i}_{j}", os.O_CREAT | os.O_WRONLY, 0o644)
                o.close(fd)
        names.append(f"L{i}")  # relative, as Docker does, to fit one page of options
    fd = o.open(f"{base}/L{n - 1}/a/b/c/d/f", os.O_CREAT | os.O_WRONLY, 0o644)
    o.close(fd)
    for d in ("u", "w", "M"):
        o.makedirs(f"{base}/{d}")
    return ":".join(names)


class _Sim:
    def __init__(self) -> None:
        self.fs = HostFS()
        self.o = self.fs.os

    def mount(self, base: str, lower: str) -> None:
        self.o.chdir(base)
        self.fs.mount("overlay", "M", "overlay", f"lowerdir={lower},upperdir=u,workdir=w")
        self.o.chdir("/")

    def umount(self, base: str) -> None:
        self.fs.umount(f"{base}/M")


class _Kernel:
    o = os

    def mount(self, base: str, lower: str) -> None:
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lower},upperdir=u,workdir=w", "M"], cwd=base,
                       check=True)  # fmt: skip

    def umount(self, base: str) -> None:
        subprocess.run(["umount", f"{base}/M"], check=True)


def _measure(side: Any, base: str) -> dict[str, float]:
    o = side.o
    out: dict[str, float] = {}
    for n in DEPTHS:
        b = f"{base}/s{n}"
        lower = _layers(o, b, n, merged_dir=n == 10)
        target = f"{b}/M/a/b/c/d/f"
        side.mount(b, lower)
        o.lstat(target)
        out[f"stat, {n} layers, warm"] = median_per_op(lambda t=target: o.lstat(t), 2000)
        side.umount(b)

        def remount(b: str = b, lower: str = lower) -> None:
            side.mount(b, lower)

        def first(t: str = target) -> None:
            o.lstat(t)

        times = []
        for _ in range(9):
            times.append(median_once(first, remount, repeat=1))
            side.umount(b)
        times.sort()
        out[f"stat, {n} layers, first lookup"] = times[len(times) // 2]
        if n == 10:
            side.mount(b, lower)
            out["listdir merged over 10 layers"] = median_per_op(lambda m=f"{b}/M/m": o.listdir(m), 200)
            side.umount(b)
    _warm_up(side, f"{base}/warm")
    for label, size, reps in SIZES:
        b = f"{base}/c{size}"
        o.makedirs(f"{b}/L0")
        chunk = b"x" * min(size, 1 << 20)
        for i in range(reps):
            fd = o.open(f"{b}/L0/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
            for _ in range(size // len(chunk)):
                o.write(fd, chunk)
            o.close(fd)
        for d in ("u", "w", "M"):
            o.makedirs(f"{b}/{d}")
        side.mount(b, "L0")
        it = iter(range(reps))
        times = []
        for _ in range(reps):
            p = f"{b}/M/f{next(it)}"
            o.lstat(p)
            times.append(median_once(_opener(o, p), lambda: None, repeat=1))
        side.umount(b)
        times.sort()
        out[f"copy-up {label}"] = times[len(times) // 2]
    return out


def _warm_up(side: Any, b: str, n: int = 32) -> None:
    """Copy up ``n`` small files on a throwaway mount before the timed copy-ups, on both
    sides: the first runs of a code path pay for Python's specializing interpreter (and, on
    the kernel side, for cold caches); each timed copy-up is a single call, so without this
    the first measurement of the process would time the warm-up instead of the copy-up."""
    o = side.o
    o.makedirs(f"{b}/L0")
    for i in range(n):
        fd = o.open(f"{b}/L0/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
        o.write(fd, b"x" * 4096)
        o.close(fd)
    for d in ("u", "w", "M"):
        o.makedirs(f"{b}/{d}")
    side.mount(b, "L0")
    for i in range(n):
        _opener(o, f"{b}/M/f{i}")()
    side.umount(b)


def _opener(o: Any, p: str) -> Callable[[], None]:
    def go() -> None:
        fd = o.open(p, os.O_WRONLY | os.O_APPEND)
        o.close(fd)

    return go


def run() -> list[Row]:
    if not can_mount():
        return []
    ours = _measure(_Sim(), "/b")
    with real_tmpfs() as d:
        kern = _measure(_Kernel(), d)
    targets = {f"stat, {n} layers, warm": "<= 1.5x" for n in DEPTHS}
    targets["copy-up 64 MiB"] = "< 1 (faster than kernel)"
    rows = [row("overlay", k, v, "kernel overlay (tmpfs)", kern[k], targets.get(k, ""))
            for k, v in ours.items()]  # fmt: skip
    flat = ours["stat, 128 layers, warm"] / ours["stat, 1 layers, warm"]
    rows.append(row("overlay", "warm stat 128 layers / 1 layer", flat, "(self)", 1.0, "<= 1.3"))
    cu = ours["copy-up 64 MiB"] / ours["copy-up 4 KiB"]
    rows.append(row("overlay", "copy-up 64 MiB / 4 KiB", cu, "(self)", 1.0, "<= 2"))
    for r in rows[-2:]:
        r["ours_us"] = r["ratio"]
        r["baseline_us"] = 1.0
    return rows
