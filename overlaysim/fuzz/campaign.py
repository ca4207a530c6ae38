"""The campaign: shards over profiles and seeds, run here, in processes or on a cluster.

Shard ``k`` runs profile ``k mod P`` from a seed derived from the campaign seed and ``k``,
so the cases are the same whichever process (or machine) runs it and in whatever order;
``--jobs N`` only changes how many run at once. The coordinator merges each shard's result
as it arrives: counts, coverage, and for every signature the smallest reproducer found so
far, written under ``--out/divergences/<signature>/``. The state file is saved after every
shard, which is what makes a campaign resumable and a Ctrl-C cheap: the shards in flight
stop at their next case and are redone by the next run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import UsageError
from overlaysim.fuzz import reproduce
from overlaysim.fuzz import shard as SH
from overlaysim.fuzz.progress import Reporter, Stats
from overlaysim.fuzz.store import Store

DEFAULT_SEQUENCES = 1000
_LAYER_KEYS = ("lowerdir", "upperdir", "workdir", "datadir")


@dataclass(frozen=True)
class Config:
    target: str = "kernel"
    profiles: tuple[str, ...] = ()  # empty: every profile the target can run
    options: str | None = None  # custom mount options instead of profiles
    seed: int = 20261128
    sequences: int | None = None  # with neither this nor seconds: DEFAULT_SEQUENCES
    seconds: float | None = None
    jobs: int = 1
    shard_size: int = 50
    min_ops: int = 20
    max_ops: int = 40
    fault: str | None = None
    shrink: bool = True
    exitfirst: bool = False

    def identity(self, profiles: tuple[str, ...]) -> dict[str, Any]:
        """What defines the cases of a campaign: a resumed run must agree on all of it."""
        return {"target": self.target, "profiles": list(profiles), "options": self.options,
                "seed": self.seed, "shard_size": self.shard_size, "min_ops": self.min_ops,
                "max_ops": self.max_ops, "fault": self.fault}  # fmt: skip


def shard_seed(seed: int, index: int) -> int:
    """The Hypothesis seed of shard ``index`` (independent of jobs and order)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:8], "big")


def resolve_profiles(config: Config, target: Any) -> tuple[str, ...]:
    if config.options is not None:
        keys = {kv.split("=", 1)[0] for kv in config.options.split(",") if kv}
        if keys & set(_LAYER_KEYS):
            raise UsageError("--options takes the extra mount options only; the layers are "
                             "generated (no lowerdir/upperdir/workdir)")  # fmt: skip
        return (SH.CUSTOM,)
    known = tuple(target.profiles)
    if not config.profiles:
        return known
    unknown = [p for p in config.profiles if p not in known]
    if unknown:
        raise UsageError(f"--against {target.name} cannot run profile(s) {', '.join(unknown)}"
                         f" (it runs: {', '.join(known)})")  # fmt: skip
    return tuple(dict.fromkeys(config.profiles))


class Campaign:
    """One invocation over a store; :meth:`run` returns the final :class:`Stats`."""

    def __init__(self, config: Config, store: Store, reporter: Reporter,
                 executor: cf.Executor | None = None, where: str = "on the given executor") -> None:  # fmt: skip
        from overlaysim.fuzz.targets import resolve_target

        if config.jobs < 1 or config.shard_size < 1 or config.min_ops < 0 or \
                config.max_ops < config.min_ops:  # fmt: skip
            raise UsageError("--jobs, shard size and op counts must be positive "
                             "(and max ops >= min ops)")  # fmt: skip
        if config.fault is not None:
            from overlaysim.fuzz.faults import FAULTS

            if config.fault not in FAULTS:
                raise UsageError(f"unknown fault {config.fault!r} (known: {', '.join(FAULTS)})")
        self.config, self.store, self.reporter, self.executor = config, store, reporter, executor
        self.where = where
        self.target = resolve_target(config.target)
        if executor is None:  # a cluster's workers say for themselves
            usable, why = self.target.available()
            if not usable:
                raise UsageError(f"--against {self.target.name} cannot run here: {why}")
        self.profiles = resolve_profiles(config, self.target)
        self.stop = threading.Event()  # Ctrl-C
        self._mp_stop: Any = None
        self.state: dict[str, Any] = {}
        self.stats = Stats(target=self.target.name, profiles=self.profiles, seed=config.seed,
                           out=store.out, sides=reproduce.labels(self.target))  # fmt: skip
        self.coverage: set[str] = set()
        self._t0 = 0.0
        self._deadline: float | None = None
        self._skipped: set[int] = set()
        self._fatal: str | None = None
        self._new: set[str] = set()  # signatures first found in this session

    # --- planning ----------------------------------------------------------------------------
    def _planned(self) -> int | None:
        c = self.config
        if c.sequences is None and c.seconds is None:
            return -(-DEFAULT_SEQUENCES // c.shard_size)
        return None if c.sequences is None else -(-c.sequences // c.shard_size)

    def _size(self, k: int) -> int:
        c = self.config
        total = c.sequences if c.sequences is not None else (
            DEFAULT_SEQUENCES if c.seconds is None else None)  # fmt: skip
        return c.shard_size if total is None else min(c.shard_size, total - k * c.shard_size)

    def _known(self) -> frozenset[str]:
        return frozenset(s for s, v in self.state["signatures"].items() if v.get("shrunk"))

    def specs(self) -> Iterator[SH.ShardSpec]:
        """The shards still to run, made lazily (each with the signatures known by then)."""
        planned = self._planned()
        k = 0
        while planned is None or k < planned:
            if self._deadline is not None and time.time() >= self._deadline:
                return
            size = self._size(k)
            done = self.state["shards"].get(str(k))
            if (done is None or done.get("size", done["sequences"]) < size) and \
                    k not in self._skipped:  # fmt: skip
                profile = self.profiles[k % len(self.profiles)]
                options = self.config.options if profile == SH.CUSTOM else \
                    self.target.options_for(profile)  # fmt: skip
                yield SH.ShardSpec(k, profile, options or "", shard_seed(self.config.seed, k),
                                   size, self.config.target, self.config.min_ops,
                                   self.config.max_ops, self._known(), self._deadline,
                                   self.config.fault, self.config.shrink, self.config.exitfirst)  # fmt: skip
            k += 1

    # --- merging -----------------------------------------------------------------------------
    def _on_case(self, res: SH.ShardResult, ops: int, sig: str) -> None:
        s = self.stats
        s.session_sequences += 1
        s.session_ops += ops
        s.sequences += 1
        s.ops += ops
        if sig:
            s.divergent_cases += 1
            s.signatures[sig] = s.signatures.get(sig, 0) + 1
        self._tick()

    def _tick(self, force: bool = False) -> None:
        self.stats.session_seconds = time.monotonic() - self._t0
        self.reporter.tick(self.stats, force)

    def merge(self, r: SH.ShardResult) -> None:
        s, st = self.stats, self.state
        if r.note and r.note not in s.notes:
            s.notes.append(r.note)
            self.reporter.note(s, r.note)
        if r.fatal:
            self._fatal = r.note
            return
        if not r.live:
            s.session_sequences += r.sequences
            s.session_ops += r.ops
            s.sequences += r.sequences
            s.ops += r.ops
            s.divergent_cases += sum(r.counts.values())
            for sig, n in r.counts.items():
                s.signatures[sig] = s.signatures.get(sig, 0) + n
        s.run_seconds += r.run_seconds
        s.oracle_seconds += r.oracle_seconds
        s.simulator_seconds += r.simulator_seconds
        self.coverage.update(r.coverage)
        s.coverage = len(self.coverage)
        for f in r.found:
            self._offer(f, r)
        if r.complete:
            old = st["shards"].get(str(r.index))
            if old is not None:  # a shard redone at a larger size replaces its first record
                s.sequences -= old["sequences"]
                s.ops -= old["ops"]
                for sig, n in old["divergent"].items():
                    if sig in st["signatures"]:
                        st["signatures"][sig]["cases"] = st["signatures"][sig].get("cases", 0) - n
            st["shards"][str(r.index)] = {"profile": r.profile, "size": r.size,
                                          "sequences": r.sequences, "ops": r.ops,
                                          "divergent": r.counts, "seconds": round(r.seconds, 3)}  # fmt: skip
            if r.judge:  # run against another side than the campaign's target (see run_shard)
                st["shards"][str(r.index)]["judge"] = r.judge
            for sig, n in r.counts.items():
                entry = st["signatures"].get(sig)
                if entry is not None:
                    entry["cases"] = entry.get("cases", 0) + n
            s.shards_done = len(st["shards"])
        elif not r.sequences and r.note:
            self._skipped.add(r.index)  # the worker cannot run it: not again this session
        st["coverage"] = sorted(self.coverage)
        self.store.save(st)
        self._tick(force=True)

    def _offer(self, f: SH.Found, r: SH.ShardResult) -> None:
        """Keep ``f`` if its signature is new or it is a better (shrunk, smaller) reproducer."""
        old = self.state["signatures"].get(f.signature)
        better = old is None or (f.shrunk, -f.ops) > (bool(old.get("shrunk")), -int(old["ops"]))
        if not better:
            return
        d = self.store.write_divergence(f.signature, f.record)
        info = {"dir": os.path.relpath(d, self.store.out), "ops": f.ops, "shrunk": f.shrunk,
                "profile": r.profile, "shard": r.index,
                "cases": old.get("cases", 0) if old else 0}  # fmt: skip
        self.state["signatures"][f.signature] = info
        if old is None:
            self._new.add(f.signature)
        self.stats.signatures.setdefault(f.signature, 0)
        self.reporter.divergence(self.stats, f.signature, info, old is None)

    # --- running -----------------------------------------------------------------------------
    def _sigint(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.stop.set()
        if self._mp_stop is not None:
            self._mp_stop.set()

    def _stopping(self) -> bool:
        if self._fatal is not None or self.stop.is_set():
            return True
        if self.config.exitfirst and self._new:
            return True
        return self._deadline is not None and time.time() >= self._deadline

    def run(self) -> Stats:
        c = self.config
        with self.store.locked():
            self.state = self.store.load(c.identity(self.profiles))
            st, s = self.state, self.stats
            st["sessions"] = st.get("sessions", 0) + 1
            s.shards_done = len(st["shards"])
            s.shards_planned = self._planned()
            s.sequences = sum(v["sequences"] for v in st["shards"].values())
            s.ops = sum(v["ops"] for v in st["shards"].values())
            s.signatures = {k: v.get("cases", 0) for k, v in st["signatures"].items()}
            self.coverage = set(st.get("coverage", []))
            s.coverage = len(self.coverage)
            self._t0 = time.monotonic()
            self._deadline = time.time() + c.seconds if c.seconds is not None else None
            where = "in-process" if c.jobs == 1 and self.executor is None else (
                self.where if self.executor is not None else f"{c.jobs} processes")  # fmt: skip
            resumed = f", resuming {s.shards_done} finished shards" if s.shards_done else ""
            self.reporter.start(s, f"overlaysim fuzz --against {self.target.name}: profiles "
                                   f"{', '.join(self.profiles)}; seed {c.seed}; {where}; "
                                   f"out {self.store.out}{resumed}")  # fmt: skip
            main = threading.current_thread() is threading.main_thread()
            old = signal.signal(signal.SIGINT, self._sigint) if main else None
            try:
                if self.executor is not None:
                    self._run_pool(self.executor, c.jobs)
                elif c.jobs == 1:
                    self._run_here()
                else:
                    self._run_processes()
            finally:
                if main:
                    signal.signal(signal.SIGINT, old)
                SH.set_stop_event(None)
            s.session_seconds = time.monotonic() - self._t0
            s.interrupted = self.stop.is_set()
            self.store.save(st)
        if self._fatal is not None:
            raise UsageError(self._fatal)
        return s

    def _run_here(self) -> None:
        SH.set_stop_event(self.stop)
        for spec in self.specs():
            if self._stopping():
                break
            self.merge(SH.run_shard(spec, self._on_case))

    def _run_processes(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._mp_stop = ctx.Event()
        with cf.ProcessPoolExecutor(self.config.jobs, mp_context=ctx, initializer=SH.init_worker,
                                    initargs=(self._mp_stop,)) as pool:  # fmt: skip
            self._run_pool(pool, self.config.jobs)

    def _run_pool(self, pool: cf.Executor, width: int) -> None:
        specs = self.specs()
        inflight: dict[cf.Future[SH.ShardResult], SH.ShardSpec] = {}
        exhausted = False
        while True:
            while not exhausted and not self._stopping() and len(inflight) < width + 1:
                spec = next(specs, None)
                if spec is None:
                    exhausted = True
                    break
                inflight[pool.submit(SH.run_shard, spec)] = spec
            if not inflight:
                return
            done, _ = cf.wait(inflight, timeout=0.25, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                spec = inflight.pop(fut)
                if fut.cancelled():
                    continue
                try:
                    result = fut.result()
                except Exception as e:  # a bug on the worker side, not a finding
                    self._log_error(spec, e)
                    result = SH.ShardResult(spec.index, spec.profile, fatal=True,
                                            note=f"shard {spec.index} failed: {type(e).__name__}: {e}")  # fmt: skip
                self.merge(result)
            if self._stopping():
                if self._mp_stop is not None:
                    self._mp_stop.set()
                for fut in inflight:
                    fut.cancel()
                if self.executor is not None:  # remote shards cannot be told to stop
                    return
            self._tick()

    def _log_error(self, spec: SH.ShardSpec, e: BaseException) -> None:
        with open(os.path.join(self.store.out, "errors.log"), "a", encoding="utf-8") as f:
            f.write(f"shard {spec.index} ({spec.profile}):\n{''.join(traceback.format_exception(e))}\n")


def exit_code(stats: Stats) -> int:
    """1 if the campaign (all its sessions) has divergences, 130 if interrupted, else 0."""
    if stats.signatures:
        return 1
    return 130 if stats.interrupted else 0
