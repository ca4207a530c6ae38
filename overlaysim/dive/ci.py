"""The CI gate: dive's three rules, evaluated on the honest figures (or on dive's, on request).

Thresholds are read as dive reads them: efficiency and user-wasted are ratios in 0..1, bytes
take go-humanize's units (``20MB`` is 20,000,000; ``20MiB`` is 20,971,520; no unit is
bytes), and ``disabled``/``off``/``false``/empty turn a rule off. Defaults are dive's:
lowest efficiency 0.9, highest user-wasted 0.1, wasted bytes not checked.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from overlaysim.dive.diveformula import DiveFigures
from overlaysim.dive.sources import DiveError
from overlaysim.dive.waste import Waste

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10,
          "m": 10**6, "mb": 10**6, "mi": 2**20, "mib": 2**20, "g": 10**9, "gb": 10**9,
          "gi": 2**30, "gib": 2**30, "t": 10**12, "tb": 10**12, "ti": 2**40, "tib": 2**40,
          "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50}  # fmt: skip
_BYTES = re.compile(r"\s*([0-9][0-9,]*(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*")


def disabled(value: str) -> bool:
    return value.strip().lower() in ("", "disabled", "off", "false")


def parse_bytes(value: str) -> int:
    """``20MB`` -> 20000000 (go-humanize's ParseBytes: SI and IEC units, case-insensitive)."""
    m = _BYTES.fullmatch(value)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise DiveError(f"invalid highest-wasted-bytes value {value!r} (e.g. 20MB, 512KiB)")
    return int(float(m.group(1).replace(",", "")) * _UNITS[unit])


def parse_ratio(name: str, value: str) -> float:
    try:
        ratio = float(value)
    except ValueError:
        raise DiveError(f"invalid {name} value {value!r}: expected a ratio between 0 and 1") from None
    if not 0 <= ratio <= 1:
        raise DiveError(f"{name} value is outside the allowed range (0-1): {value}")
    return ratio


@dataclass
class Figures:
    """The three numbers a rule looks at, from one of the two formulas."""

    formula: str
    efficiency: float
    wasted: int
    user_wasted: float  # inf when something is wasted and the user added no bytes

    @classmethod
    def honest(cls, w: Waste) -> Figures:
        uwp = w.user_wasted_percent
        if uwp is None:
            uwp = math.inf if w.wasted else 0.0
        return cls("honest", w.efficiency, w.wasted, uwp)

    @classmethod
    def dive(cls, f: DiveFigures) -> Figures:
        uwp = f.user_wasted_percent
        return cls("dive", f.efficiency, f.wasted, 0.0 if math.isnan(uwp) else uwp)


@dataclass
class Rule:
    key: str
    config: str
    status: str = "disabled"  # "pass", "fail", "disabled"
    message: str = ""

    def as_json(self) -> dict[str, str]:
        return {"rule": self.key, "threshold": self.config, "status": self.status,
                "message": self.message}  # fmt: skip


def evaluate(fig: Figures, lowest_efficiency: str, highest_wasted_bytes: str,
             highest_user_wasted_percent: str) -> list[Rule]:  # fmt: skip
    """dive's rules on ``fig``: a rule fails exactly when dive's would on the same numbers."""
    rules = [Rule("lowest-efficiency", lowest_efficiency),
             Rule("highest-wasted-bytes", highest_wasted_bytes),
             Rule("highest-user-wasted-percent", highest_user_wasted_percent)]  # fmt: skip
    eff, wasted, uwp = rules
    if not disabled(lowest_efficiency):
        t = parse_ratio("lowest-efficiency", lowest_efficiency)
        eff.status = "fail" if t > fig.efficiency else "pass"
        if eff.status == "fail":
            eff.message = f"image efficiency is too low (efficiency={fig.efficiency:.4f} < {t})"
    if not disabled(highest_wasted_bytes):
        n = parse_bytes(highest_wasted_bytes)
        wasted.status = "fail" if fig.wasted > n else "pass"
        if wasted.status == "fail":
            wasted.message = f"too many bytes wasted (wasted-bytes={fig.wasted} > {n})"
    if not disabled(highest_user_wasted_percent):
        t = parse_ratio("highest-user-wasted-percent", highest_user_wasted_percent)
        uwp.status = "fail" if fig.user_wasted > t else "pass"
        if uwp.status == "fail":
            uwp.message = ("too many bytes wasted, relative to the user bytes added "
                           f"(user-wasted={fig.user_wasted:.4f} > {t})")  # fmt: skip
    return rules


def passed(rules: list[Rule]) -> bool:
    return all(r.status != "fail" for r in rules)


def report(subject: Any, honest: Waste, dive: DiveFigures, gate: Figures,
           rules: list[Rule]) -> dict[str, Any]:  # fmt: skip
    """The ``--json`` document: what was explored, both formulas, the rules and the verdict."""
    return {
        "subject": {"kind": subject.kind, "name": subject.name, "image_id": subject.image_id},
        "layers": [{"index": x.index, "id": x.id, "label": x.label, "size": x.size,
                    "command": x.command, "diff_id": x.diff_id} for x in subject.layers],
        "honest": honest.as_json(),
        "dive": dive.as_json(),
        "gate": {"figures": gate.formula, "passed": passed(rules),
                 "rules": [r.as_json() for r in rules]},
    }  # fmt: skip
