"""Live progress of a campaign: a rich table on a terminal, JSON lines with ``--json``.

What a fuzzing engineer watches: sequences/s and ops/s (this session), divergences grouped
by signature, where the time goes (the judged side, the simulator, the comparison), and
engine coverage. Coverage is counted as the distinct engine decisions the simulator
reported in ``fs.events`` (kind, reason, object type: "copy_up:chmod:file", "whiteout:rmdir"
...): Python 3.11 has no ``sys.monitoring`` and ``coverage`` is not a dependency, while the
events are the engine's own record of which branch it took.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass
class Stats:
    """Counters of a campaign; ``session_*`` count this invocation, the rest all of them."""

    target: str = ""
    profiles: tuple[str, ...] = ()
    seed: int = 0
    out: str = ""
    session_sequences: int = 0
    session_ops: int = 0
    session_seconds: float = 0.0
    sequences: int = 0
    ops: int = 0
    shards_done: int = 0
    shards_planned: int | None = None
    divergent_cases: int = 0
    signatures: dict[str, int] = field(default_factory=dict)
    coverage: int = 0
    oracle_seconds: float = 0.0  # run_case's oracle slot (the target, or its oracle)
    simulator_seconds: float = 0.0  # run_case's simulator slot
    sides: tuple[str, str] = ("oracle", "simulator")  # names of the two slots
    run_seconds: float = 0.0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def rates(self) -> tuple[float, float]:
        t = max(self.session_seconds, 1e-9)
        return self.session_sequences / t, self.session_ops / t

    def as_json(self) -> dict[str, Any]:
        seq_s, ops_s = self.rates()
        out = asdict(self)
        out["profiles"] = list(self.profiles)
        out.update(sequences_per_s=round(seq_s, 2), ops_per_s=round(ops_s, 1),
                   coverage_source="fs.events kinds")  # fmt: skip
        return out


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "-"


class Reporter:
    """Plain lines to ``stream`` (a log), at most one progress line per ``every`` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self._last = 0.0

    def start(self, stats: Stats, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def tick(self, stats: Stats, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        seq_s, ops_s = stats.rates()
        planned = f"/{stats.shards_planned}" if stats.shards_planned is not None else ""
        print(f"  {stats.sequences} sequences ({stats.shards_done}{planned} shards), "
              f"{seq_s:.1f} seq/s, {ops_s:.0f} ops/s, {len(stats.signatures)} signatures, "
              f"coverage {stats.coverage}", file=self.stream, flush=True)  # fmt: skip

    def divergence(self, stats: Stats, sig: str, info: dict[str, Any], new: bool) -> None:
        word = "new" if new else "smaller"
        print(f"  {word} divergence {sig}: {info['ops']} ops -> {info['dir']}",
              file=self.stream, flush=True)  # fmt: skip

    def note(self, stats: Stats, text: str) -> None:
        print(f"  note: {text}", file=self.stream, flush=True)

    def finish(self, stats: Stats) -> None:
        print(summary_text(stats), flush=True)


def summary_text(stats: Stats) -> str:
    seq_s, ops_s = stats.rates()
    head = "interrupted" if stats.interrupted else "done"
    lines = [f"{head}: {stats.session_sequences} sequences, {stats.session_ops} ops in "
             f"{stats.session_seconds:.1f}s ({seq_s:.1f} seq/s, {ops_s:.0f} ops/s); campaign "
             f"total {stats.sequences} sequences in {stats.shards_done} shards"]  # fmt: skip
    run = stats.run_seconds
    if run > 0:
        rest = max(run - stats.oracle_seconds - stats.simulator_seconds, 0.0)
        lines.append(f"time: {stats.sides[0]} {_share(stats.oracle_seconds, run)}, "
                     f"{stats.sides[1]} {_share(stats.simulator_seconds, run)}, comparing "
                     f"{_share(rest, run)}")  # fmt: skip
    lines.append(f"engine coverage: {stats.coverage} distinct decisions (from fs.events)")
    if stats.signatures:
        lines.append(f"{len(stats.signatures)} divergence signature(s), "
                     f"{stats.divergent_cases} divergent cases this session:")  # fmt: skip
        for sig, n in sorted(stats.signatures.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {n:6d}  {sig}")
        lines.append(f"reports: {stats.out}/divergences/<signature>/"
                     "{repro.sh,test_repro.py,case.json}")  # fmt: skip
    else:
        lines.append("0 divergences")
    lines += [f"note: {n}" for n in stats.notes]
    return "\n".join(lines)


class JsonReporter(Reporter):
    """One JSON object per line on stdout: start, progress, divergence, note, summary."""

    def __init__(self, stream: TextIO | None = None, every: float = 2.0) -> None:
        super().__init__(stream or sys.stdout, every)

    def _emit(self, event: str, **kw: Any) -> None:
        print(json.dumps({"event": event, **kw}, sort_keys=True), file=self.stream, flush=True)

    def start(self, stats: Stats, text: str) -> None:
        self._emit("start", message=text, **stats.as_json())

    def tick(self, stats: Stats, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            self._emit("progress", **stats.as_json())

    def divergence(self, stats: Stats, sig: str, info: dict[str, Any], new: bool) -> None:
        self._emit("divergence", signature=sig, new=new, **info)

    def note(self, stats: Stats, text: str) -> None:
        self._emit("note", message=text)

    def finish(self, stats: Stats) -> None:
        self._emit("summary", **stats.as_json())


class RichReporter(Reporter):
    """A live table on the terminal (stderr), refreshed a few times a second."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(sys.stderr, 0.25)
        self.console = console or Console(stderr=True)
        self.live = Live(Table(), console=self.console, refresh_per_second=4, transient=False)
        self._events: list[str] = []

    def start(self, stats: Stats, text: str) -> None:
        self.console.print(text)
        self.live.start()

    def _table(self, stats: Stats) -> Table:
        seq_s, ops_s = stats.rates()
        t = Table(title=f"overlaysim fuzz --against {stats.target}", show_header=False)
        t.add_column(style="bold")
        t.add_column()
        planned = f" / {stats.shards_planned}" if stats.shards_planned is not None else ""
        t.add_row("sequences", f"{stats.sequences}  ({stats.shards_done}{planned} shards)")
        t.add_row("speed", f"{seq_s:.1f} seq/s   {ops_s:.0f} ops/s   ({stats.session_seconds:.0f}s)")
        run = stats.run_seconds
        t.add_row("time share", f"{stats.sides[0]} {_share(stats.oracle_seconds, run)}   "
                  f"{stats.sides[1]} {_share(stats.simulator_seconds, run)}")  # fmt: skip
        t.add_row("coverage", f"{stats.coverage} engine decisions (fs.events)")
        sigs = sorted(stats.signatures.items(), key=lambda kv: -kv[1])
        t.add_row("divergences", f"{len(sigs)} signatures, {stats.divergent_cases} cases")
        for sig, n in sigs[:8]:
            t.add_row("", f"{n:5d}  {sig}")
        for line in self._events[-4:]:
            t.add_row("", f"[dim]{line}[/dim]")
        return t

    def tick(self, stats: Stats, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            self.live.update(self._table(stats), refresh=True)

    def divergence(self, stats: Stats, sig: str, info: dict[str, Any], new: bool) -> None:
        self._events.append(f"{'new' if new else 'smaller'}: {sig} ({info['ops']} ops)")
        self.tick(stats, force=True)

    def note(self, stats: Stats, text: str) -> None:
        self._events.append(text)

    def finish(self, stats: Stats) -> None:
        self.live.update(self._table(stats), refresh=True)
        self.live.stop()
        print(summary_text(stats), flush=True)


def reporter(as_json: bool, quiet: bool = False) -> Reporter:
    """JSON lines, a live table on a terminal, else plain periodic lines on stderr."""
    if as_json:
        return JsonReporter()
    if not quiet and sys.stderr.isatty():
        return RichReporter()
    return Reporter()
