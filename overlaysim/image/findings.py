"""Findings: what an importer neutralised, tolerated or noticed, instead of failing.

A strict import rejects hostile input with a typed error; a lenient one drops or rewrites the
entry and records a Finding, so nothing is silently "fixed". Tolerated oddities of real
producers (kaniko's ``/`` root entry, naive-diff whiteouts) are findings too, at level "info".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["info", "warning", "neutralised"]


@dataclass(frozen=True)
class Finding:
    """One observation about an input, with a stable ``code`` tests and tools can match on."""

    code: str
    message: str
    path: str = ""
    layer: int | None = None
    level: Level = "warning"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"layer {self.layer}: " if self.layer is not None else ""
        path = f"{self.path}: " if self.path else ""
        return f"[{self.level}] {where}{path}{self.message} ({self.code})"


@dataclass
class Findings:
    """An append-only list of findings with a per-code cap (a million bad entries -> one line)."""

    items: list[Finding] = field(default_factory=list)
    per_code_cap: int = 1000
    _counts: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        code: str,
        message: str,
        path: str = "",
        layer: int | None = None,
        level: Level = "warning",
    ) -> None:
        n = self._counts.get(code, 0) + 1
        self._counts[code] = n
        if n <= self.per_code_cap:
            self.items.append(Finding(code, message, path, layer, level))
        elif n == self.per_code_cap + 1:
            self.items.append(Finding(code, "further findings of this kind omitted", "", layer))

    def extend(self, other: Findings) -> None:
        for f in other.items:
            self.add(f.code, f.message, f.path, f.layer, f.level)

    def codes(self) -> set[str]:
        return {f.code for f in self.items}

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
