"""Trace replay throughput: parse and apply a generated 1,000,000-line ``strace -f`` log.

The log looks like a build inside a container: four pids, half the calls on host files
outside the traced mount (the interpreter's own opens and reads), half inside it (create,
write, fstat, rename, unlink on a bounded set of names, so the upper dir's size stays fixed
and any memory growth would be the replay's own). Targets (issue 9): >= 100,000 parsed
lines/s, >= 30,000 applied calls/s, memory flat from 100k to 1M lines.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from benchmarks.common import Row

MOUNT = "/srv/ovl"
# VmHWM, not ru_maxrss: getrusage keeps the high-water mark of the parent's memory that a
# vfork()ed child shared until its exec, which would measure the benchmark, not the replay.
_CHILD = """
import sys
from overlaysim.replay import ReplayConfig, replay
r = replay(sys.argv[1], ReplayConfig(lowerdirs=[sys.argv[2]], mount_point=sys.argv[3]))
assert r.report["mismatch_count"] == 0, r.report["mismatches"][:3]
hwm = [x for x in open("/proc/self/status") if x.startswith("VmHWM:")][0]
print(int(hwm.split()[1]))
"""


def lines(n: int) -> Iterator[str]:
    """``n`` lines of a plausible ``strace -f -tt -y`` log (deterministic)."""
    i = 0
    t = 0.0
    k = 0
    for child in (101, 102, 103):  # the build forks its workers first
        yield (f"100 00:00:00.000000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|"
               f"CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0) = {child}\n")
        i += 1
    while i < n:
        pid = 100 + k % 4
        name = f"{MOUNT}/work/f{k % 500}"
        t += 0.00001
        ts = f"{int(t) // 3600:02d}:{int(t) // 60 % 60:02d}:{t % 60:09.6f}"
        fd = 3 + k % 4
        block = [
            f'{pid} {ts} openat(AT_FDCWD</usr>, "/usr/lib/python3/x{k % 50}.py", '
            f"O_RDONLY|O_CLOEXEC) = {fd}</usr/lib/python3/x{k % 50}.py>",
            f'{pid} {ts} read({fd}</usr/lib/python3/x{k % 50}.py>, "import os\\n", 4096) = 10',
            f"{pid} {ts} close({fd}</usr/lib/python3/x{k % 50}.py>) = 0",
            f'{pid} {ts} newfstatat(AT_FDCWD, "/etc/ld.so.cache", {{st_mode=S_IFREG|0644, '
            f"st_size=20000, ...}}, 0) = 0",
            f'{pid} {ts} openat(AT_FDCWD, "{name}", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644)'
            f" = {fd}<{name}>",
            f'{pid} {ts} write({fd}<{name}>, "line {k}\\n", {len(str(k)) + 6}) = {len(str(k)) + 6}',
            f"{pid} {ts} fstat({fd}<{name}>, {{st_mode=S_IFREG|0644, st_size=0, ...}}) = 0",
            f"{pid} {ts} close({fd}<{name}>) = 0",
            f'{pid} {ts} rename("{name}", "{name}.done") = 0',
            f'{pid} {ts} unlink("{name}.done") = 0',
        ]
        for line in block:
            yield line + "\n"
            i += 1
            if i >= n:
                return
        k += 1


def write_trace(path: str, n: int) -> None:
    with open(path, "w") as f:
        f.writelines(lines(n))


def _lower(base: str) -> str:
    low = os.path.join(base, "lower")
    os.makedirs(os.path.join(low, "work"))
    for j in range(0, 500, 5):
        with open(os.path.join(low, "work", f"f{j}"), "w") as f:
            f.write("from the image\n")
    return low


def _parse_rate(path: str) -> tuple[float, int]:
    from overlaysim.replay.strace import StraceParser, open_trace_text

    t0 = time.perf_counter()
    p = StraceParser(path)
    ops = sum(1 for _ in p.parse(open_trace_text(path)))
    return time.perf_counter() - t0, ops


def _read_rate(path: str) -> float:
    t0 = time.perf_counter()
    with open(path, encoding="latin-1") as f:
        for _ in f:
            pass
    return time.perf_counter() - t0


def run() -> list[Row]:
    from overlaysim.replay import ReplayConfig, replay

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ovs-bench-replay-") as base:
        low = _lower(base)
        big = os.path.join(base, "1m.log")
        small = os.path.join(base, "100k.log")
        write_trace(big, 1_000_000)
        write_trace(small, 100_000)
        n = 1_000_000
        parse = statistics.median(_parse_rate(big)[0] for _ in range(3))
        read = statistics.median(_read_rate(big) for _ in range(3))
        rows.append(Row(group="replay", name=f"parse 1M-line strace log: {n / parse:,.0f} lines/s",
                        ours_us=parse / n * 1e6, baseline="reading the lines only",
                        baseline_us=read / n * 1e6, ratio=parse / read,
                        target=">= 100,000 lines/s (issue 9)"))  # fmt: skip
        t0 = time.perf_counter()
        res = replay(big, ReplayConfig(lowerdirs=[low], mount_point=MOUNT))
        total = time.perf_counter() - t0
        calls = res.report["calls"]["replayed"]
        assert res.report["mismatch_count"] == 0
        rows.append(Row(group="replay", name=f"parse + apply 1M lines ({calls:,} calls applied): "
                        f"{calls / total:,.0f} applied calls/s", ours_us=total / calls * 1e6,
                        baseline="parse only, per applied call", baseline_us=parse / calls * 1e6,
                        ratio=total / parse, target=">= 30,000 applied calls/s (issue 9)"))  # fmt: skip
        rss = {}
        for label, path in (("100k", small), ("1M", big)):
            out = subprocess.run([sys.executable, "-c", _CHILD, path, low, MOUNT], check=True,
                                 capture_output=True, text=True, env={**os.environ,
                                 "PYTHONPATH": os.getcwd()})  # fmt: skip
            rss[label] = int(out.stdout.split()[-1]) / 1024
        rows.append(Row(group="replay", name="peak RSS replaying 1M lines, MB (not µs)",
                        ours_us=rss["1M"], baseline="peak RSS replaying 100k lines, MB",
                        baseline_us=rss["100k"], ratio=rss["1M"] / rss["100k"],
                        target="flat: <= 1.1 (issue 9)"))  # fmt: skip
    return rows
