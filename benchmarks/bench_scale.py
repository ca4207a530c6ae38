"""A 1,000,000-entry layer (issue 11): import, memory per entry, flatten, and an overlay on it.

The layer looks like a big ``node_modules``: ``big/`` holds 100,000 empty files, ``small/``
10, and ``nm/`` the rest in package directories of 1,000 entries; headers are written the
way Go's archive/tar writes them (Docker's writer), and the tar and a ``docker save`` archive
around it are cached under the temp dir between runs. Rows (medians of rounds that
interleave GNU tar and overlaysim, so that load from elsewhere hits both alike):

- ``import_image`` (what ``docker load`` and ``overlaysim image`` use; digests verified,
  tar-split kept) into a HostFS, against GNU ``tar -xf`` of the same layer into a real tmpfs;
- memory per entry of the tree it leaves, as live allocator bytes (pymalloc blocks in use plus
  glibc's in-use bytes, read in the child that imported: exact, without tracemalloc's 5x
  slowdown), and the child's RSS for reference (it adds the allocator's fragmentation);
- ``overlaysim image flatten`` of the archive (the CLI, in a subprocess), against GNU tar
  extracting the layer and archiving the tree again;
- through an overlay mount with the layer as its lower: the first lookup of a file in the
  100,000-entry directory, the first merged readdir of it, and the copy-up of one file in it,
  each against the same in the 10-entry directory (time proportional to entries touched) and
  against the kernel's overlay on the tree GNU tar extracted. Readdirs are measured last:
  listing 100,000 entries evicts the CPU caches and slows whatever operation comes next.

Each overlaysim measurement runs in a fresh child process (python -m benchmarks.bench_scale
--child), so rounds do not share a heap.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from typing import Any

from benchmarks.common import Row, can_mount, real_tmpfs, row

ENTRIES = int(os.environ.get("OVS_SCALE_ENTRIES", "1000000"))  # >= 101,013 (a smaller try)
BIG, SMALL, PACKAGE = 100_000, 10, 1_000
LAYOUT = 1  # bump when the generated layer changes: the cache key
MTIME = 1_700_000_000
BUDGET = 400  # bytes per entry (issue 11)


# --- the layer --------------------------------------------------------------------------------
def _template(typeflag: bytes, mode: int) -> tuple[bytes, int]:
    """Bytes 100-512 of a Go-written USTAR header (the checksum field as spaces) and their sum."""
    blk = bytearray(412)
    numbers = b"%07o\x00%07o\x00%07o\x00%011o\x00%011o\x00" % (mode, 0, 0, 0, MTIME)
    blk[0:48] = numbers
    blk[48:56] = b" " * 8
    blk[56] = typeflag[0]
    blk[157:165] = b"ustar\x0000"  # magic and version at 257
    blk[229:245] = b"0000000\x000000000\x00"  # devmajor, devminor at 329
    return bytes(blk), sum(blk)


def layer_names(total: int = ENTRIES) -> list[str]:
    """Member names in archive order (directories end with '/')."""
    names = ["big/"] + [f"big/f{i:06d}" for i in range(BIG)]
    names += ["small/"] + [f"small/f{i:02d}" for i in range(SMALL)]
    names.append("nm/")
    p = 0
    while len(names) < total:
        names.append(f"nm/p{p:04d}/")
        names += [f"nm/p{p:04d}/f{i:03d}" for i in range(min(PACKAGE - 1, total - len(names)))]
        p += 1
    return names


def write_layer(path: str, total: int = ENTRIES) -> int:
    files, dirs = _template(b"0", 0o644), _template(b"5", 0o755)
    count = 0
    with open(path, "wb") as f:
        chunk: list[bytes] = []
        for name in layer_names(total):
            tail, base = dirs if name[-1] == "/" else files
            nb = name.encode()
            chk = (zlib.adler32(nb) & 0xFFFF) - 1 + base  # ASCII name of < 100 bytes
            tail = tail[:48] + b"%06o\x00 " % chk + tail[56:]
            chunk.append(nb + bytes(100 - len(nb)) + tail)
            count += 1
            if len(chunk) == 8192:
                f.write(b"".join(chunk))
                chunk.clear()
        f.write(b"".join(chunk) + bytes(1024))
    return count


def write_archive(layer: str, path: str) -> None:
    """A docker save (v1.2) archive holding the layer, streamed from the file."""
    h = hashlib.sha256()
    with open(layer, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h.hexdigest()]}})  # fmt: skip
    cfg_name = hashlib.sha256(cfg.encode()).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["scale:1m"],
                            "Layers": ["l0/layer.tar"]}])  # fmt: skip
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, text in ((cfg_name, cfg), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            t.addfile(info, io.BytesIO(text.encode()))
        info = tarfile.TarInfo("l0/layer.tar")
        info.size = os.path.getsize(layer)
        with open(layer, "rb") as f:
            t.addfile(info, f)


def cached_inputs(total: int = ENTRIES) -> tuple[str, str]:
    """(layer tar, docker save archive), generated once per layout and size."""
    d = os.path.join(tempfile.gettempdir(), f"overlaysim-bench-scale-{LAYOUT}-{total}")
    layer, archive, stamp = (os.path.join(d, n) for n in ("layer.tar", "image.tar", "ok"))
    if not os.path.exists(stamp):
        os.makedirs(d, exist_ok=True)
        write_layer(layer, total)
        write_archive(layer, archive)
        with open(stamp, "w") as f:
            f.write("ok\n")
    return layer, archive


# --- the child: one overlaysim import, memory, overlay ---------------------------------------
class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip


def live_bytes() -> int:
    """Bytes in live allocations: pymalloc's blocks in use plus glibc's in-use heap and mmaps."""
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode()
    m = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    py = int(m.group(1).replace(",", "")) if m else 0
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    mi = libc.mallinfo2()
    return py + int(mi.uordblks) + int(mi.hblkhd)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def overlay_costs(o: Any, mount: Callable[[str, str, str], None],
                  umount: Callable[[], None], lower: str, work: str,
                  reps: int = 15) -> dict[str, float]:  # fmt: skip
    """Medians of the first lookup, the first readdir and a copy-up in the 100k-entry and the
    10-entry directory, each on a fresh mount of ``lower`` (upper and work new each time,
    below ``work``), the two directories interleaved so that load hits both alike."""
    n = iter(range(1_000_000))
    merged = f"{work}/M"
    o.mkdir(merged)

    def fresh() -> None:
        i = next(n)
        o.mkdir(f"{work}/u{i}")
        o.mkdir(f"{work}/w{i}")
        mount(lower, f"{work}/u{i}", f"{work}/w{i}")

    def timed(fn: Callable[..., object], *args: Any) -> float:
        gc.disable()  # as timeit does: a full collection of the 1M-inode heap is not the op's
        try:
            t0 = time.perf_counter()
            fn(*args)
            took = time.perf_counter() - t0
        finally:
            gc.enable()
        umount()
        return took

    def listed(p: str, want: int) -> None:
        if len(o.listdir(p)) != want:
            raise RuntimeError(f"{p}: wrong number of entries")

    def copy_up(p: str) -> None:
        o.close(o.open(p, os.O_WRONLY | os.O_APPEND))

    times: dict[str, list[float]] = {}
    dirs = (("100k", "big", "f050000", BIG), ("10", "small", "f05", SMALL))
    # readdirs last: after listing 100,000 entries a copy-up took ~40 µs more, in any directory
    for what in ("lookup", "copy-up", "readdir"):
        for _ in range(reps):
            for label, d, f, count in dirs:
                path, dpath = f"{merged}/{d}/{f}", f"{merged}/{d}"
                fresh()
                if what == "lookup":
                    took = timed(o.lstat, path)
                elif what == "copy-up":
                    o.lstat(path)  # the lookup is measured above: time the copy-up alone
                    took = timed(copy_up, path)
                else:
                    took = timed(listed, dpath, count)
                times.setdefault(f"{what} {label}", []).append(took)
    return {k: statistics.median(v) for k, v in times.items()}


def child(archive: str, with_overlay: bool) -> dict[str, Any]:
    from overlaysim import HostFS
    from overlaysim.image.formats import open_archive
    from overlaysim.image.importer import import_image

    fs = HostFS()
    gc.collect()
    b0, r0 = live_bytes(), _rss()
    t0 = time.perf_counter()
    arch, src = open_archive(archive)
    try:
        res = import_image(fs.os, src, arch.images[0], "/img")
    finally:
        src.close()
    took = time.perf_counter() - t0
    entries = sum(x.stats["entries"] for x in res.layers)
    lower = res.layer_dirs[0]
    del res, arch  # the tar-split and the plan: what stays is the tree
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    out: dict[str, Any] = {
        "import": took,
        "entries": entries,
        "live_per_entry": (live_bytes() - b0) / entries,
        "rss_per_entry": (_rss() - r0) / entries,
    }
    if with_overlay:
        o = fs.os
        o.mkdir("/ovl")

        def mount(lower: str, upper: str, work: str) -> None:
            fs.mount("overlay", "/ovl/M", "overlay",
                     f"lowerdir={lower},upperdir={upper},workdir={work}")  # fmt: skip

        out["overlay"] = overlay_costs(o, mount, lambda: fs.umount("/ovl/M"), lower, "/ovl")
    return out


def _run_child(archive: str, with_overlay: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--child", archive]
    if with_overlay:
        cmd.append("--overlay")
    got = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # fmt: skip
    result: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
    return result


# --- the parent: baselines and rows -------------------------------------------------------------
def _timed(cmd: list[str], **kw: Any) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)
    return time.perf_counter() - t0


def _kernel_overlay(tree: str, work: str) -> dict[str, float]:
    def mount(lower: str, upper: str, wdir: str) -> None:
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lower},upperdir={upper},workdir={wdir}", f"{work}/M"],
                       check=True)  # fmt: skip

    def umount() -> None:
        subprocess.run(["umount", f"{work}/M"], check=True)

    return overlay_costs(os, mount, umount, tree, work)


def run(rounds: int = 3) -> list[Row]:
    if not can_mount():
        return []  # the baselines need a real tmpfs (root)
    layer, archive = cached_inputs()
    ours: list[dict[str, Any]] = []
    tar_x: list[float] = []
    kern: dict[str, float] = {}
    flat: dict[str, list[float]] = {}
    flat_size = 0
    cli = [sys.executable, "-c", "from overlaysim.cli import main; main()"]
    with real_tmpfs() as mnt:
        out = os.path.join(mnt, "flat.tar")
        for r in range(rounds):
            tree = os.path.join(mnt, f"x{r}")
            os.mkdir(tree)
            tar_x.append(_timed(["tar", "-xf", layer, "-C", tree]))
            flat.setdefault("tar", []).append(
                tar_x[-1] + _timed(["tar", "-cf", out, "-C", tree, "."]))  # fmt: skip
            os.unlink(out)
            last = r == rounds - 1
            ours.append(_run_child(archive, with_overlay=last))
            flat.setdefault("ours", []).append(_timed([*cli, "image", "flatten", archive, "-o", out],
                                                      stdout=subprocess.DEVNULL))  # fmt: skip
            flat_size = os.path.getsize(out)
            os.unlink(out)
            if last:
                work = os.path.join(mnt, "ovl")
                os.mkdir(work)
                kern = _kernel_overlay(tree, work)
            subprocess.run(["rm", "-rf", tree], check=True)  # 4x faster than shutil.rmtree
    n = ours[0]["entries"]
    label = f"{n:,}-entry"
    rows = [row("scale", f"import of a {label} layer (docker save, digests checked, tar-split kept)",
                statistics.median(x["import"] for x in ours), "GNU tar -xf of the layer into tmpfs",
                statistics.median(tar_x), "<= 2 (issue 11)")]  # fmt: skip
    live = statistics.median(x["live_per_entry"] for x in ours)
    rss = statistics.median(x["rss_per_entry"] for x in ours)
    for name, value in (("live allocator bytes", live), ("RSS growth (with fragmentation)", rss)):
        mem = row("scale", f"memory per entry of the imported tree: {name}, B (not µs)",
                  value / 1e6, "budget, B per entry", BUDGET / 1e6,
                  "<= 1 (issue 11)" if name.startswith("live") else "")  # fmt: skip
        mem.update(bytes_per_entry=value)
        rows.append(mem)
    rows.append(row("scale", f"image flatten of the {label} image ({flat_size / 1e6:.0f} MB tar)",
                    statistics.median(flat["ours"]), "GNU tar -xf, then tar -cf of the tree (tmpfs)",
                    statistics.median(flat["tar"]),
                    "<= 3 (issue 11: HEAD took > 60 s)"))  # fmt: skip
    sim = ours[-1]["overlay"]
    names = {"lookup": "first lookup of a file", "readdir": "first merged readdir",
             "copy-up": "copy-up of one empty file"}  # fmt: skip
    for key, what in names.items():
        for size in ("100k", "10"):
            k = f"{key} {size}"
            rows.append(row("scale", f"{what} in a {size}-entry dir of the {label} lower (fresh mount)",
                            sim[k], "kernel overlay (tmpfs)", kern[k]))  # fmt: skip
    for key, what in names.items():
        ratio = sim[f"{key} 100k"] / sim[f"{key} 10"]
        want = BIG / SMALL if key == "readdir" else 1.0
        r = row("scale", f"{what}: 100k-entry dir / 10-entry dir"
                + (" / 10,000 (per entry)" if key == "readdir" else ""), ratio / want,
                "(self)", 1.0, "<= 1.5 (proportional to entries touched)")  # fmt: skip
        r["ours_us"], r["baseline_us"] = r["ratio"], 1.0
        rows.append(r)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--child", metavar="ARCHIVE", help="(internal) import and measure once")
    ap.add_argument("--overlay", action="store_true", help="(internal) also the overlay costs")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.overlay)))
        return 0
    for r in run(args.rounds):
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
