"""HostFS against pyfakefs and the real os on tmpfs: lstat, listdir, create+write."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.common import Row, can_mount, median_per_op, real_tmpfs, row
from overlaysim import HostFS


def _setup_tree(osm: Any, base: str) -> None:
    osm.makedirs(f"{base}/a/b/c/d")
    fd = osm.open(f"{base}/a/b/c/d/e", os.O_CREAT | os.O_WRONLY, 0o644)
    osm.close(fd)
    osm.mkdir(f"{base}/big")
    for i in range(1000):
        fd = osm.open(f"{base}/big/f{i:04d}", os.O_CREAT | os.O_WRONLY, 0o644)
        osm.close(fd)
    osm.mkdir(f"{base}/new")


def _ops(osm: Any, base: str) -> dict[str, float]:
    lstat = osm.lstat
    listdir = osm.listdir
    p = f"{base}/a/b/c/d/e"
    big = f"{base}/big"
    data = b"x" * 4096
    counter = iter(range(10**9))
    op, wr, cl = osm.open, osm.write, osm.close
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC

    def create() -> None:
        fd = op(f"{base}/new/{next(counter)}", flags, 0o644)
        wr(fd, data)
        cl(fd)

    return {
        "lstat 5-deep": median_per_op(lambda: lstat(p), 5000),
        "listdir 1000 entries": median_per_op(lambda: listdir(big), 50),
        "create+write 4 KiB+close": median_per_op(create, 500),
    }


def _cold_lstat(fs: HostFS, p: str) -> float:
    """lstat with HostFS's lookup and stat caches dropped before every call."""
    from overlaysim.vfs import namei
    from overlaysim.vfs.node import NS_GEN

    lstat = fs.os.lstat
    node = namei.resolve(fs.task, p)[1]

    def cold() -> None:
        NS_GEN[0] += 1
        node.stc = None  # type: ignore[attr-defined]
        lstat(p)

    return median_per_op(cold, 5000)


def run() -> list[Row]:
    fs = HostFS()
    _setup_tree(fs.os, "/t")
    ours = _ops(fs.os, "/t")
    cold = _cold_lstat(fs, "/t/a/b/c/d/e")
    rows: list[Row] = []
    try:
        from pyfakefs.fake_filesystem import FakeFilesystem
        from pyfakefs.fake_os import FakeOsModule

        ffs = FakeFilesystem(path_separator="/")
        fos = FakeOsModule(ffs)
        _setup_tree(fos, "/t")
        fake = _ops(fos, "/t")
        targets = {"lstat 5-deep": ">= 30x faster"}
        for k, v in ours.items():
            rows.append(row("HostFS", k, v, "pyfakefs", fake[k], targets.get(k, "")))
        rows.append(row("HostFS", "lstat 5-deep, caches dropped each call", cold, "pyfakefs",
                        fake["lstat 5-deep"]))  # fmt: skip
    except ImportError:
        pass
    if can_mount():
        with real_tmpfs() as d:
            _setup_tree(os, d)
            real = _ops(os, d)
        targets = {"lstat 5-deep": "<= 1.5x", "create+write 4 KiB+close": "<= 2x"}
        for k, v in ours.items():
            rows.append(row("HostFS", k, v, "os on tmpfs", real[k], targets.get(k, "")))
    return rows
