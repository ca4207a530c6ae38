"""Two sides -> what differs: per command (status, output, decisions), the upper dirs, totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overlaysim.compare.side import Lowers, SideResult, Step, run_side
from overlaysim.compare.treediff import Row, differences
from overlaysim.explain import narrate

decision = narrate.phrase  # an event as compare shows it, side by side


@dataclass
class StepDiff:
    index: int
    command: str
    same: bool
    a: Step | None
    b: Step | None


@dataclass
class Comparison:
    lowers: Lowers
    a: SideResult
    b: SideResult
    steps: list[StepDiff] = field(default_factory=list)
    upper: list[Row] = field(default_factory=list)
    work: list[Row] = field(default_factory=list)  # index entries (index=on), temp names normalised

    @property
    def labels(self) -> tuple[str, str]:
        return ("A", "B")

    def differs(self) -> bool:
        return bool(self.upper or self.work) or any(not s.same for s in self.steps) or (
            (self.a.refused is None) != (self.b.refused is None))  # fmt: skip

    def totals(self, side: SideResult) -> dict[str, Any]:
        entries = side.upper.entries if side.upper is not None else {}
        work = side.work.entries if side.work is not None else {}
        kinds = side.counts()
        return {
            "options": side.options, "refused": side.refused,
            "copied_bytes": side.copied_bytes(), "copy_ups": kinds.get("copy_up", 0),
            "whiteouts": kinds.get("whiteout", 0), "opaque": kinds.get("opaque", 0),
            "redirects": kinds.get("redirect", 0), "exdev": kinds.get("exdev", 0),
            "upper_entries": len([p for p in entries if p]),
            "index_entries": len([p for p in work if p.startswith("index/") and p != "index/#"]),
            "failed_commands": sum(1 for s in side.steps if s.status != 0),
        }  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        def step(s: Step | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {"status": s.status, "output": s.output,
                    "decisions": [decision(e) for e in s.events],
                    "events": [narrate.as_json(e, relative=True) for e in s.events]}  # fmt: skip

        return {
            "lowers": self.lowers.describe(),
            "sides": {"A": self.totals(self.a), "B": self.totals(self.b)},
            "differs": self.differs(),
            "commands": [{"index": d.index, "command": d.command, "same": d.same,
                          "A": step(d.a), "B": step(d.b)} for d in self.steps],
            "upper_differences": [r.as_json() for r in self.upper],
            "work_differences": [r.as_json() for r in self.work],
        }  # fmt: skip


def _same(x: Step | None, y: Step | None) -> bool:
    if x is None or y is None:
        return x is y
    return (x.status, x.output, [decision(e) for e in x.events]) == (
        y.status, y.output, [decision(e) for e in y.events])  # fmt: skip


def contrast(lowers: Lowers, a: SideResult, b: SideResult) -> Comparison:
    c = Comparison(lowers, a, b)
    for i in range(max(len(a.steps), len(b.steps))):
        x = a.steps[i] if i < len(a.steps) else None
        y = b.steps[i] if i < len(b.steps) else None
        either = x if x is not None else y
        command = either.command if either is not None else ""
        c.steps.append(StepDiff(i, command, _same(x, y), x, y))
    if a.upper is not None and b.upper is not None:
        c.upper = differences(a.upper, b.upper)
    if a.work is not None and b.work is not None:
        c.work = differences(a.work, b.work)
    return c


def compare(lowers: Lowers, options_a: str, options_b: str, *, script: str | None = None,
            trace: str | None = None) -> Comparison:  # fmt: skip
    """Run the same script (or trace) on ``lowers`` under both option sets."""
    a = run_side(lowers, options_a, script=script, trace=trace)
    b = run_side(lowers, options_b, script=script, trace=trace)
    return contrast(lowers, a, b)
