"""One shard of a campaign: a fixed number of cases of one profile from one seed.

A shard runs in two passes. The first generates its cases with Hypothesis from the shard's
seed and never fails, so the cases a shard runs depend only on the campaign seed and the
shard number, whatever happens on either side. For each signature the campaign did not know
yet, a second pass generates the same cases again with the same settings (Hypothesis's
generation depends on them) and fails on that signature only, so that Hypothesis shrinks it.
Operations are drawn with a keep/drop mark each, so shrinking can remove operations below
the generator's minimum sequence length.

:func:`run_shard` is a plain picklable function of a :class:`ShardSpec` returning plain data
(:class:`ShardResult`, whose reproducers are JSON-able dicts): it runs the same in-process,
in a local process pool or on a remote worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from overlaysim.errors import OverlaySimError
from overlaysim.fuzz import reproduce
from overlaysim.fuzz.signature import is_early, signature
from overlaysim.testing import differential as D
from overlaysim.testing import ops as O
from overlaysim.testing import reference
from overlaysim.testing import strategies as S

CUSTOM = "options"  # the profile name of cases made for --options
_KEEP = st.integers(0, 15).map(bool)  # ~1 op in 12 dropped; shrinking drops the rest


@dataclass(frozen=True)
class ShardSpec:
    index: int
    profile: str  # a strategies.PROFILES name, or CUSTOM
    options: str  # the mount options on the target
    seed: int
    sequences: int
    target: str
    min_ops: int = 20
    max_ops: int = 40
    known: frozenset[str] = frozenset()  # signatures already reported: never re-shrunk
    deadline: float | None = None  # wall-clock time.time() at which the shard stops
    fault: str | None = None  # test-only: a planted fault (overlaysim.fuzz.faults)
    shrink: bool = True
    exitfirst: bool = False  # end generation at the first new signature


@dataclass
class Found:
    """A divergence with a new signature: its (shrunk) case as a case.json record."""

    signature: str
    record: dict[str, Any]
    ops: int
    shrunk: bool


@dataclass
class ShardResult:
    index: int
    profile: str
    sequences: int = 0
    ops: int = 0
    size: int = 0  # the sequences asked for
    complete: bool = False
    fatal: bool = False  # the target cannot go on (bad command, protocol error)
    note: str = ""
    judge: str = ""  # the side that actually judged, when not the campaign's target
    counts: dict[str, int] = field(default_factory=dict)  # divergent cases by signature
    found: list[Found] = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)
    seconds: float = 0.0
    run_seconds: float = 0.0  # inside run_case
    oracle_seconds: float = 0.0  # the judged side: building, mounting, its os calls
    simulator_seconds: float = 0.0
    live: bool = False  # counted case by case through on_case already


OnCase = Callable[[ShardResult, int, str], None]  # (result so far, ops of the case, signature)


# --- stopping -----------------------------------------------------------------------------------
class Stopped(BaseException):
    """Raised between cases when the campaign stops (Ctrl-C, --time): not a test failure, so
    Hypothesis lets it through without shrinking."""


class _EndGeneration(BaseException):
    """--exitfirst: the first new signature was seen; go and shrink it."""


class _Fatal(BaseException):
    pass


_STOP: Any = None  # an Event (threading or multiprocessing) set when the campaign stops


def set_stop_event(event: Any) -> None:
    global _STOP
    _STOP = event


def init_worker(event: Any) -> None:
    """Pool initializer: Ctrl-C is the coordinator's to handle; workers stop via ``event``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_stop_event(event)


# --- cases --------------------------------------------------------------------------------------
def _sanitizer(target: Any) -> Callable[[Any], Any] | None:
    """What the target cannot take in a stack, removed when the case is drawn (so the stack
    recorded is the one that ran): its own ``sanitize``, or the reference model's."""
    clean: Callable[[Any], Any] | None = getattr(target, "sanitize", None)
    if clean is None and target.name == "reference":
        clean = reference.sanitize
    return clean


@st.composite
def cases(draw: st.DrawFn, /, profile: str, options: str, min_ops: int, max_ops: int,
          hardlinks: bool, sanitize: Callable[[Any], Any] | None = None) -> S.Case:  # fmt: skip
    """A case of ``profile`` (or of custom ``options`` for CUSTOM) whose operations can all
    be shrunk away."""
    if profile in S.PROFILES:
        base = draw(S.cases(profile, min_ops=min_ops, max_ops=max_ops, hardlinks=hardlinks,
                            whiteouts=True))  # fmt: skip
        stack, ops = base.stack, base.ops
    else:
        kw = {"metacopy": True} if "metacopy=on" in options.split(",") else {}
        stack = draw(S.layer_stacks(upper=True, hardlinks=hardlinks, whiteouts=True, **kw))
        ops = tuple(draw(S.op_sequences(min_ops, max_ops, pool=S.stack_paths(stack))))
    keep = draw(st.lists(_KEEP, min_size=len(ops), max_size=len(ops)))
    kept = tuple(op for op, k in zip(ops, keep, strict=True) if k)
    return S.Case(sanitize(stack) if sanitize is not None else stack, options, kept, profile)


# --- timing and coverage ------------------------------------------------------------------------
class _TimedOs:
    """An os-like module that adds the time of every call to ``clock[key]``."""

    def __init__(self, inner: Any, clock: dict[str, float], key: str) -> None:
        self._inner, self._clock, self._key = inner, clock, key

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or isinstance(attr, type):
            return attr
        clock, key = self._clock, self._key

        def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*args, **kw)
            finally:
                clock[key] += time.perf_counter() - t0

        return timed

    def renameat2(self, src: str, dst: str, flags: int = 0) -> None:
        t0 = time.perf_counter()
        try:
            O.renameat2(self._inner, src, dst, flags)
        finally:
            self._clock[self._key] += time.perf_counter() - t0


def timed_factory(factory: D.MountFactory, clock: dict[str, float], key: str,
                   made: list[Any]) -> D.MountFactory:  # fmt: skip
    """``factory`` whose mounts add the time of building, mounting and every os call of
    theirs to ``clock[key]`` (what "time share" reports), kept in ``made``."""

    def make(stack: Any, options: str) -> Any:
        t0 = time.perf_counter()
        try:
            m = factory(stack, options)
        finally:
            clock[key] += time.perf_counter() - t0
        made.append(m)
        for attr in ("os", "upper_os", "work_os"):
            inner = getattr(m, attr, None)
            if inner is not None:
                with contextlib.suppress(AttributeError):
                    setattr(m, attr, _TimedOs(inner, clock, key))
        for meth in ("umount", "remount", "close"):
            with contextlib.suppress(AttributeError):
                setattr(m, meth, _timed_call(getattr(m, meth), clock, key))
        return m

    return make


def _timed_call(fn: Callable[[], None], clock: dict[str, float], key: str) -> Callable[[], None]:
    def call() -> None:
        t0 = time.perf_counter()
        try:
            fn()
        finally:
            clock[key] += time.perf_counter() - t0

    return call


_PARENTS = re.compile(r"^(parent of a )+")


def event_key(e: Any) -> str:
    """One engine decision: event kind, reason (nested "parent of a" folded), object type."""
    reason = _PARENTS.sub("parent of ", str(e.reason)) if e.kind not in ("mount", "umount") else ""
    parts = [e.kind, reason, str(e.detail.get("type", ""))]
    if e.detail.get("metadata_only"):
        parts.append("metadata-only")
    return ":".join(p for p in parts if p)


# --- the shard ----------------------------------------------------------------------------------
class _Diverged(AssertionError):
    def __init__(self, sig: str, case: S.Case, report: D.CaseReport) -> None:
        super().__init__(sig)
        self.sig, self.case, self.report = sig, case, report


def _flatten(e: BaseException) -> Iterator[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        for x in e.exceptions:
            yield from _flatten(x)
    else:
        yield e


class _Runner:
    def __init__(self, spec: ShardSpec, target: Any, on_case: OnCase | None) -> None:
        self.spec, self.target, self.on_case = spec, target, on_case
        self.res = ShardResult(spec.index, spec.profile, live=on_case is not None)
        self.first: dict[str, tuple[int, S.Case, D.CaseReport]] = {}
        self.coverage: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.strategy = cases(spec.profile, spec.options, spec.min_ops, spec.max_ops,
                              target.hardlinks, _sanitizer(target))  # fmt: skip

    def check(self) -> None:
        if (_STOP is not None and _STOP.is_set()) or (
                self.spec.deadline is not None and time.time() >= self.spec.deadline):  # fmt: skip
            raise Stopped

    def execute(self, case: S.Case, early: bool = False) -> tuple[D.CaseReport, str]:
        clock = {"oracle": 0.0, "sim": 0.0}
        sims: list[Any] = []

        def wrap(factory: D.MountFactory, key: str) -> D.MountFactory:
            return timed_factory(factory, clock, key, sims)

        t0 = time.perf_counter()
        try:
            report = reproduce.run_one(self.target, case, wrap, early=early)
        except OverlaySimError as e:  # the target cannot go on: stop, do not shrink
            raise _Fatal(f"{self.target.name}: {e}") from e
        r = self.res
        r.run_seconds += time.perf_counter() - t0
        r.oracle_seconds += clock["oracle"]
        r.simulator_seconds += clock["sim"]
        for m in sims:
            fs = getattr(m, "fs", None)
            for event in getattr(fs, "events", ()):
                self.coverage.add(event_key(event))
        return report, signature(report)

    def _hypothesis(self, body: Callable[[S.Case], None], examples: int, shrink: bool) -> None:
        phases = (Phase.generate, Phase.shrink) if shrink else (Phase.generate,)
        test = given(self.strategy)(body)
        test = settings(max_examples=max(examples, 1), deadline=None, database=None,
                        phases=phases, report_multiple_bugs=False, verbosity=Verbosity.quiet,
                        suppress_health_check=list(HealthCheck), print_blob=False)(test)  # fmt: skip
        with warnings.catch_warnings():
            # On a Dask worker other threads use the global `random` while a case is drawn;
            # the cases never do (they depend on the shard's seed only).
            warnings.filterwarnings("ignore", message="Do not use the `random` module")
            seed(self.spec.seed)(test)()

    def generate(self) -> bool:
        """Pass 1; False if it ended early (--exitfirst)."""

        def body(case: S.Case) -> None:
            self.check()
            report, sig = self.execute(case)
            self.res.sequences += 1
            self.res.ops += len(report.results)
            if sig:
                self.counts[sig] += 1
                if sig not in self.spec.known and sig not in self.first:
                    self.first[sig] = (self.res.sequences, case, report)
            if self.on_case is not None:
                self.on_case(self.res, len(report.results), sig)
            if sig and self.spec.exitfirst and self.first:
                raise _EndGeneration

        try:
            self._hypothesis(body, self.spec.sequences, shrink=False)
        except _EndGeneration:
            return False
        return True

    def shrink(self) -> None:
        """Pass 2, once per new signature: the same cases again (same settings, so the same
        generation) failing on that signature only, which Hypothesis then shrinks."""
        shrunk: dict[str, tuple[S.Case, D.CaseReport]] = {}
        for sig, _ in sorted(self.first.items(), key=lambda kv: kv[1][0]):
            if not self.spec.shrink:
                break
            got = self._shrink_one(sig)
            if got is not None:
                shrunk[sig] = got
        for sig, (case, report) in shrunk.items():
            self._found(sig, case, report, shrunk=True)
        for sig, (_, case, report) in self.first.items():
            if sig not in shrunk:  # not reproduced by pass 2 (or not shrinking): as found
                self._found(sig, case, report, shrunk=False)

    def _shrink_one(self, target_sig: str) -> tuple[S.Case, D.CaseReport] | None:
        early = is_early(target_sig)

        def body(case: S.Case) -> None:
            self.check()
            report, sig = self.execute(case, early)
            if sig == target_sig:
                raise _Diverged(sig, case, report)

        try:
            self._hypothesis(body, self.spec.sequences, shrink=True)
        except (Stopped, _Fatal, KeyboardInterrupt):
            raise
        except BaseException as e:
            found = [x for x in _flatten(e) if isinstance(x, _Diverged) and x.sig == target_sig]
            if found:
                return found[0].case, found[0].report
            ours = [x for x in _flatten(e) if not isinstance(x, _Diverged)
                    and not type(x).__module__.startswith("hypothesis")]  # fmt: skip
            if ours:  # a bug in the fuzzer itself: never hide it as "not reproduced"
                raise ours[0] from e
        return None

    def _found(self, sig: str, case: S.Case, report: D.CaseReport, shrunk: bool) -> None:
        where = report.divergences[0].where
        m = re.match(r"(?:after )?op (\d+)", where)
        if m and int(m[1]) + 1 < len(case.ops):  # later ops never ran: drop them
            short = S.Case(case.stack, case.options, case.ops[: int(m[1]) + 1], case.profile)
            again, again_sig = self.execute(short)
            if again_sig == sig:
                case, report = short, again
        rec = reproduce.record(case, report, target=self.target.name, signature=sig,
                               shrunk=shrunk, fault=self.spec.fault,
                               sides=reproduce.labels(self.target))  # fmt: skip
        self.res.found.append(Found(sig, rec, len(case.ops), shrunk))


@contextlib.contextmanager
def _planted(name: str | None) -> Iterator[None]:
    if name is None:
        yield
        return
    from overlaysim.fuzz.faults import planted

    with planted(name):
        yield


def run_shard(spec: ShardSpec, on_case: OnCase | None = None) -> ShardResult:
    """Run one shard (see the module docstring); never raises for what a case does."""
    from overlaysim.fuzz.targets import resolve_target

    t0 = time.monotonic()
    try:
        target = resolve_target(spec.target)
    except OverlaySimError as e:
        return ShardResult(spec.index, spec.profile, fatal=True, note=str(e))
    usable, why = target.available()
    judge, note = "", ""
    if not usable and target.name == "kernel":
        # a worker without mount permission still checks the simulator, against the flat
        # reference model (merged views only), and the shard's record says so
        target, judge = resolve_target("reference"), "reference"
        note = (f"{socket.gethostname()} (pid {os.getpid()}): cannot mount ({why}): its shards "
                "ran against the reference model (simulator only)")  # fmt: skip
    elif not usable:
        return ShardResult(spec.index, spec.profile, note=f"{socket.gethostname()} "
                           f"(pid {os.getpid()}): --against {spec.target} cannot run: {why}")  # fmt: skip
    runner = _Runner(spec, target, on_case)
    res = runner.res
    res.judge, res.note = judge, note
    res.size = spec.sequences
    try:
        with _planted(spec.fault):
            full = runner.generate()
            runner.shrink()
        res.complete = full
    except Stopped:
        res.complete = False
        for sig, (_, case, report) in runner.first.items():
            if sig not in {f.signature for f in res.found}:
                rec = reproduce.record(case, report, target=target.name, signature=sig,
                                       shrunk=False, fault=spec.fault,
                                       sides=reproduce.labels(target))  # fmt: skip
                res.found.append(Found(sig, rec, len(case.ops), False))
    except _Fatal as e:
        res.fatal, res.note = True, str(e)
    res.counts = dict(runner.counts)
    res.coverage = sorted(runner.coverage)
    res.seconds = time.monotonic() - t0
    return res
