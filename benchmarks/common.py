"""Timing helpers shared by the benchmark modules (medians, never asserted in tests)."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import timeit
from collections.abc import Callable, Iterator
from typing import Any

Row = dict[str, Any]


def median_per_op(fn: Callable[[], object], number: int, repeat: int = 9) -> float:
    """Median seconds per call over ``repeat`` runs of ``number`` calls."""
    return statistics.median(t / number for t in timeit.repeat(fn, number=number, repeat=repeat))


def median_once(fn: Callable[[], object], setup: Callable[[], object], repeat: int = 9) -> float:
    """Median of single timed calls, each after a fresh ``setup()`` (untimed)."""
    times = []
    for _ in range(repeat):
        setup()
        t0 = timeit.default_timer()
        fn()
        times.append(timeit.default_timer() - t0)
    return statistics.median(times)


def row(group: str, name: str, ours: float, base_name: str, base: float, target: str = "") -> Row:
    return {"group": group, "name": name, "ours_us": ours * 1e6, "baseline": base_name,
            "baseline_us": base * 1e6, "ratio": ours / base if base else float("nan"),
            "target": target}  # fmt: skip


def can_mount() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def real_tmpfs() -> Iterator[str]:
    """A fresh tmpfs mounted on a temp dir (root only), unmounted afterwards."""
    d = tempfile.mkdtemp(prefix="osim-bench-")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], check=False)
        os.rmdir(d)
