"""``make bench``: run every benchmark module and write one markdown table."""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time

from benchmarks.common import Row

MODULES = ["bench_hostfs", "bench_overlay", "bench_image", "bench_replay", "bench_scale", "bench_fuzz",
           "bench_fuse"]


def fmt(rows: list[Row]) -> str:
    out = ["| group | operation | overlaysim (µs) | baseline | baseline (µs) | ratio | target |",
           "|---|---|---:|---|---:|---:|---|"]  # fmt: skip
    for r in rows:
        out.append(f"| {r['group']} | {r['name']} | {r['ours_us']:.2f} | {r['baseline']} | "
                   f"{r['baseline_us']:.2f} | {r['ratio']:.3g} | {r['target']} |")  # fmt: skip
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="benchmarks/results.md")
    ap.add_argument("--only", nargs="*", default=None, help="module names to run")
    args = ap.parse_args()
    rows: list[Row] = []
    for name in args.only or MODULES:
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        t0 = time.time()
        got = mod.run()
        print(f"{name}: {len(got)} rows in {time.time() - t0:.1f}s", file=sys.stderr)
        rows += got
    head = (f"# overlaysim benchmarks\n\nMedians per operation; ratio = overlaysim / baseline, "
            f"both measured in the same run.\nPython {platform.python_version()}, "
            f"{platform.machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n")  # fmt: skip
    text = head + fmt(rows) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
