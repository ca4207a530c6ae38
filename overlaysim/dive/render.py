"""Plain-text views shared by ``--ci`` output and the explorer's panes."""

from __future__ import annotations

import math
from typing import Any

from overlaysim.dive.ci import Rule, passed
from overlaysim.dive.diveformula import DiveFigures
from overlaysim.dive.waste import Waste


def human(n: int) -> str:
    """Bytes as dive prints them (SI units, go-humanize style): 32 kB, 1.2 MB."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{value:.0f} EB"


def percent(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a (no user layers)"
    return f"{x * 100:.2f} %"


def figures_line(w: Waste, d: DiveFigures) -> str:
    """One line for the details bar: the honest figures, then dive's for comparison."""
    return (f"honest: efficiency {percent(w.efficiency)}, wasted {human(w.wasted)} "
            f"({w.wasted} B), user-wasted {percent(w.user_wasted_percent)} | "
            f"dive: efficiency {percent(d.efficiency)}, wasted {human(d.wasted)}, "
            f"user-wasted {percent(d.user_wasted_percent)}")  # fmt: skip


def ci_text(subject: Any, w: Waste, d: DiveFigures, gate_formula: str, rules: list[Rule]) -> str:
    lines = [f"Image: {subject.name} ({subject.kind}, {len(subject.layers)} layers)", "",
             "  honest efficiency:   " + percent(w.efficiency),
             f"  honest wasted bytes: {w.wasted} bytes ({human(w.wasted)})",
             "  honest user wasted:  " + percent(w.user_wasted_percent),
             "  dive efficiency:     " + percent(d.efficiency),
             f"  dive wasted bytes:   {d.wasted} bytes ({human(d.wasted)})",
             "  dive user wasted:    " + percent(d.user_wasted_percent), ""]  # fmt: skip
    if w.items:
        lines += ["Wasted files (honest):", f"  {'Layer':>5}  {'Size':>10}  Why / File"]
        for item in sorted(w.items, key=lambda x: (-x.size, x.layer)):
            lines.append(f"  {item.layer:>5}  {human(item.size):>10}  {', '.join(item.paths)}")
            lines.append(f"  {'':>5}  {'':>10}  -> {item.reason} (layer {item.by_layer})")
        lines.append("")
    lines.append(f"Results (on the {gate_formula} figures):")
    skipped = failed = ok = 0
    for r in rules:
        if r.status == "disabled":
            skipped += 1
            lines.append(f"  SKIP: {r.key}: rule disabled")
        elif r.status == "fail":
            failed += 1
            lines.append(f"  FAIL: {r.key}: {r.message}")
        else:
            ok += 1
            lines.append(f"  PASS: {r.key}")
    verdict = "PASS" if passed(rules) else "FAIL"
    lines.append(f"Result:{verdict} [Total:{len(rules)}] [Passed:{ok}] [Failed:{failed}] "
                 f"[Skipped:{skipped}]")  # fmt: skip
    return "\n".join(lines)
