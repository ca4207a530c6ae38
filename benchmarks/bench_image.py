"""Image import against GNU tar: a 3-layer, ~3,000-file, ~30 MB image built from the stdlib.

The image is a docker-save v1.2 archive whose layers hold files of the Python standard
library (layer 3 also deletes and replaces some of layer 1's, with whiteouts and an opaque
directory). We time, in the same run, our import (open + verify every digest + parse +
apply natively, into HostFS and into a real tmpfs) and ``tar -xf`` of the same three layer
tars into tmpfs, in interleaved rounds, and report medians, ratios and the peak memory of
an import.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sysconfig
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from benchmarks.common import Row, row
from overlaysim import HostFS
from overlaysim.image.formats import open_archive
from overlaysim.image.importer import import_image
from overlaysim.image.tar_writer import Header, TarWriter

MAX_FILES = 3000
MAX_FILE = 48 * 1024


def _stdlib_files() -> list[tuple[str, bytes]]:
    root = sysconfig.get_paths()["stdlib"]
    out: list[tuple[str, bytes]] = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != "site-packages")
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p) or os.path.getsize(p) > MAX_FILE:
                continue
            with open(p, "rb") as fh:
                out.append(("usr/lib/python3/" + os.path.relpath(p, root), fh.read()))
            if len(out) >= MAX_FILES:
                return out
    return out


def _layer(files: list[tuple[str, bytes]], extra: list[tuple[Header, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    buf = io.BytesIO()
    w = TarWriter(buf)
    seen: set[str] = set()
    for name, data in files:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in seen:
                seen.add(d)
                w.add(Header(d, "5", 0o755, mtime_ns=1_700_000_000 * 10**9))
        w.add(Header(name, "0", 0o644, size=len(data), mtime_ns=1_700_000_000 * 10**9), data)
    for h, data in extra:
        w.add(h, data)
    w.close()
    return buf.getvalue()


def build_image(tmp: str) -> tuple[str, list[str], int, int]:
    """(archive path, layer tar paths, file count, uncompressed bytes)."""
    files = _stdlib_files()
    n = len(files)
    a, b = n // 3, 2 * n // 3
    l1, l2 = _layer(files[:a]), _layer(files[a:b])
    gone = files[: a // 20]
    wh = [
        (Header(os.path.dirname(p) + "/.wh." + os.path.basename(p), "0", 0o600), b"")
        for p, _ in gone[1::2]
    ]
    opq_dir = os.path.dirname(files[a // 2][0])
    wh.append((Header(opq_dir + "/.wh..wh..opq", "0", 0o755, mtime_ns=None, want_pax=False), b""))
    l3 = _layer(files[b:] + gone[::2], wh)
    layers = [l1, l2, l3]
    paths = []
    diff_ids = []
    for i, data in enumerate(layers):
        p = os.path.join(tmp, f"layer{i}.tar")
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
    cfg = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    chex = hashlib.sha256(cfg).hexdigest()
    buf = io.BytesIO()
    w = TarWriter(buf)
    w.add(Header(f"{chex}.json", size=len(cfg)), cfg)
    for i, data in enumerate(layers):
        w.add(Header(f"l{i}/layer.tar", size=len(data)), data)
    man = json.dumps(
        [
            {
                "Config": f"{chex}.json",
                "RepoTags": ["stdlib:bench"],
                "Layers": [f"l{i}/layer.tar" for i in range(3)],
            }
        ]
    ).encode()
    w.add(Header("manifest.json", size=len(man)), man)
    w.close()
    archive = os.path.join(tmp, "image.tar")
    with open(archive, "wb") as f:
        f.write(buf.getvalue())
    return archive, paths, n, sum(len(x) for x in layers)


def _import(archive: str, o: Any, target: str, how: str = "native") -> Any:
    arch, src = open_archive(archive)
    try:
        return import_image(o, src, arch.images[0], target, how=how)  # type: ignore[arg-type]
    finally:
        src.close()


def _tmpfs() -> str | None:
    if os.geteuid() != 0:
        return None
    d = tempfile.mkdtemp(prefix="ovs-bench-img-")
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", d], check=True, capture_output=True
        )
    except (subprocess.CalledProcessError, FileNotFoundError):
        os.rmdir(d)
        return None
    return d


def run(repeat: int = 7) -> list[Row]:
    tmp = tempfile.mkdtemp(prefix="ovs-bench-img-")
    mnt = _tmpfs()
    rows: list[Row] = []
    try:
        archive, layer_paths, nfiles, size = build_image(tmp)
        label = f"3 layers, {nfiles} files, {size / 1e6:.1f} MB"
        work = mnt or tempfile.mkdtemp(prefix="ovs-bench-x-", dir=tmp)
        where = "tmpfs" if mnt else "a temp dir (not root: no tmpfs)"

        def clean() -> None:
            for name in os.listdir(work):
                shutil.rmtree(os.path.join(work, name))

        def gnu_tar() -> None:
            for i, p in enumerate(layer_paths):
                d = os.path.join(work, f"t{i}")
                os.mkdir(d)
                subprocess.run(["tar", "-xf", p, "-C", d], check=True)

        runs: dict[str, Callable[[], object]] = {
            "tar": gnu_tar,
            f"native per-layer into HostFS ({label})": lambda: _import(
                archive, HostFS().os, "/img"
            ),
            f"flattened into HostFS ({label})": lambda: _import(
                archive, HostFS().os, "/img", "flat"
            ),
            f"native per-layer into {where}, real os ({label})": lambda: _import(
                archive, os, os.path.join(work, "img")
            ),
        }
        # interleaved rounds: a burst of load from elsewhere hits every contender alike
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(repeat):
            for name, fn in runs.items():
                clean()
                gc.collect()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        clean()
        base = statistics.median(times.pop("tar"))
        for name, ts in times.items():
            rows.append(
                row(
                    "image",
                    f"import: {name}",
                    statistics.median(ts),
                    f"GNU tar -xf of the 3 layer tars into {where}",
                    base,
                    "<= 2 (issue 4)",
                )
            )
        gc.collect()
        tracemalloc.start()
        try:
            _import(archive, HostFS().os, "/img")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # not a time: the two value columns hold megabytes (ratio = peak / layer bytes)
        mem = row(
            "image",
            f"peak memory of a HostFS import, MB (not µs) ({label})",
            peak / 1e12,
            "uncompressed layer bytes, MB",
            size / 1e12,
            "< 1.5 (issue 4)",
        )
        mem.update(peak_bytes=peak, baseline_bytes=size)
        rows.append(mem)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if mnt:
            subprocess.run(["umount", "-l", mnt], check=False)
            os.rmdir(mnt)
    return rows


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r))
