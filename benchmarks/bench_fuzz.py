"""Fuzzing throughput and shrinking (issue 10): not timed tests, figures for ``make bench``.

* simulator-only: generated operation sequences (every profile) applied to a simulated
  overlay, per op, per core, best of 3 passes (target >= 20,000 ops/s); and the same cases
  through the generic differential path (the simulator judged against itself), per sequence;
* kernel differential: per sequence, the time of the simulator side against the kernel
  side's own (building the layers, mount(2), the operations' syscalls, umount), measured by
  the campaign's own instrumentation (target: simulator <= 1.5x the kernel side);
* shrinking: each planted fault (overlaysim.fuzz.faults) found by a campaign with the
  default case sizes (20-40 ops) and shrunk; the number of ops left (target <= 5).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from benchmarks.common import Row, can_mount, row
from overlaysim.fuzz import reproduce
from overlaysim.fuzz.campaign import Campaign, Config
from overlaysim.fuzz.faults import FAULTS
from overlaysim.fuzz.progress import Reporter, Stats
from overlaysim.fuzz.shard import cases, timed_factory
from overlaysim.fuzz.store import Store
from overlaysim.fuzz.targets import Target, resolve_target
from overlaysim.testing import strategies as S
from overlaysim.testing.ops import apply
from overlaysim.testing.simulator import simulator_factory


def _cases(profile: str, n: int, hardlinks: bool = True) -> list[S.Case]:
    got: list[S.Case] = []

    @seed(20261128)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(cases(profile, S.PROFILES[profile][0], 20, 40, hardlinks))
    def collect(case: S.Case) -> None:
        got.append(case)

    collect()
    return got


def _sim_only(all_cases: list[S.Case]) -> tuple[float, float, int]:
    """(seconds applying ops, seconds including build+mount+umount, ops)."""
    applying = total = 0.0
    n = 0
    for case in all_cases:
        t0 = time.perf_counter()
        m = simulator_factory(case.stack, case.options)
        t1 = time.perf_counter()
        for op in case.ops:
            apply(op, m.os, m.mount_path)
        t2 = time.perf_counter()
        m.close()
        total += time.perf_counter() - t0
        applying += t2 - t1
        n += len(case.ops)
    return applying, total, n


def _sim_vs_sim(all_cases: list[S.Case]) -> float:
    target = Target("simulator", simulator_factory, ("merged", "upper", "work"), (), False, True,
                    tuple(S.PROFILES))  # fmt: skip
    t0 = time.perf_counter()
    for case in all_cases:
        reproduce.run_one(target, case)
    return (time.perf_counter() - t0) / len(all_cases)


def _kernel_diff(all_cases: list[S.Case]) -> tuple[float, float, float]:
    """Per sequence: simulator side, kernel side, whole run_case (comparisons, round trips)."""
    target = resolve_target("kernel")
    clock = {"oracle": 0.0, "sim": 0.0}
    made: list[Any] = []

    def wrap(factory: Any, key: str) -> Any:
        return timed_factory(factory, clock, key, made)

    t0 = time.perf_counter()
    for case in all_cases:
        reproduce.run_one(target, case, wrap)
        made.clear()
    whole = time.perf_counter() - t0
    n = len(all_cases)
    return clock["sim"] / n, clock["oracle"] / n, whole / n


class _Silent(Reporter):
    def start(self, stats: Stats, text: str) -> None:
        pass

    def tick(self, stats: Stats, force: bool = False) -> None:
        pass

    def divergence(self, stats: Stats, sig: str, info: dict[str, Any], new: bool) -> None:
        pass


def _shrink_rows(target: str) -> list[Row]:
    rows = []
    for name, fault in sorted(FAULTS.items()):
        config = Config(target=target, profiles=(fault.profile,), sequences=500, shard_size=25,
                        fault=name, exitfirst=True)  # fmt: skip
        store = Store(tempfile.mkdtemp(prefix="osim-bench-fuzz-"))
        t0 = time.perf_counter()
        stats = Campaign(config, store, _Silent()).run()
        secs = time.perf_counter() - t0
        found = store.load(config.identity((fault.profile,)))["signatures"]
        shutil.rmtree(store.out, ignore_errors=True)
        if not found:
            rows.append(row("fuzz-shrink", f"{name}: NOT FOUND in {stats.session_sequences} "
                            f"cases ({secs:.0f}s)", float("nan"), "target", 5e-6, "<= 5 ops"))  # fmt: skip
            continue
        best = min(found.values(), key=lambda v: v["ops"])
        rows.append(row("fuzz-shrink", f"{name}: ops after shrinking (not µs); found after "
                        f"{stats.session_sequences} cases, found+shrunk in {secs:.0f}s "
                        f"vs {target}", best["ops"] / 1e6, "target", 5e-6, "<= 5 ops"))  # fmt: skip
    return rows


def run() -> list[Row]:
    rows: list[Row] = []
    per_profile = 30
    everything = [c for p in sorted(S.PROFILES) for c in _cases(p, per_profile)]
    # best of 3: the machine is shared, and the figure is what one core can do
    applying, total, n = min(_sim_only(everything) for _ in range(3))
    rows.append(row("fuzz", f"simulator-only: one generated op applied ({n / applying:,.0f} "
                    "ops/s per core)", applying / n, "target 20,000 ops/s", 1 / 20000,
                    "<= 1"))  # fmt: skip
    rows.append(row("fuzz", f"simulator-only incl. building+mounting the stack ({n / total:,.0f}"
                    " ops/s)", total / n, "target 20,000 ops/s", 1 / 20000, ""))  # fmt: skip
    sim_seq = _sim_vs_sim(everything[:: max(1, len(everything) // 60)])
    rows.append(row("fuzz", f"differential path, simulator vs simulator, per sequence "
                    f"({1 / sim_seq:.1f} seq/s)", sim_seq, "simulator-only per sequence",
                    total / len(everything), ""))  # fmt: skip
    if not can_mount():
        return rows + _shrink_rows("reference")
    kernel_cases = [c for p in sorted(resolve_target("kernel").profiles)
                    for c in _cases(p, 10)]  # fmt: skip
    sim, kern, whole = _kernel_diff(kernel_cases)
    rows.append(row("fuzz", f"kernel differential, per sequence: simulator side "
                    f"({1 / whole:.1f} seq/s overall)", sim, "kernel side", kern, "<= 1.5"))  # fmt: skip
    rows.append(row("fuzz", "kernel differential, per sequence: whole run (comparisons, "
                    "remount, round trips)", whole, "kernel side", kern, ""))  # fmt: skip
    return rows + _shrink_rows("kernel")
