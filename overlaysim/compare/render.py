"""A comparison for a terminal (rich, side by side, 80 columns) or as JSON."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from overlaysim.compare.contrast import Comparison, decision
from overlaysim.compare.side import Step
from overlaysim.compare.treediff import Row

_TOTALS = (("copied_bytes", "bytes copied up"), ("copy_ups", "copy-ups"),
           ("whiteouts", "whiteouts"), ("opaque", "opaque dirs"), ("redirects", "redirects"),
           ("exdev", "EXDEV refusals"), ("upper_entries", "entries in upper"),
           ("index_entries", "index entries"),
           ("failed_commands", "failed commands"))  # fmt: skip
_ALWAYS = ("copied_bytes", "upper_entries")


def _cell(s: Step | None) -> str:
    if s is None:
        return "(not run)"
    lines = [f"status {s.status}"]
    out = s.output.strip()
    if out:
        lines += [f"> {line}" for line in out.splitlines()[:4]]
    lines += [decision(e) for e in s.events] or ["no overlay decision"]
    return "\n".join(lines)


def _rows_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("path: what", ratio=5, overflow="fold")
    table.add_column("A", ratio=4, overflow="fold")
    table.add_column("B", ratio=4, overflow="fold")
    for r in rows:
        table.add_row(escape(f"{r.path}: {r.what}"), escape(r.a), escape(r.b))
    return table


def render(c: Comparison, out: IO[str], *, all_commands: bool = False, width: int | None = None) -> None:
    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    a, b = c.a, c.b
    console.print(f"lowers: {c.lowers.describe()}", markup=False)
    console.print(f"A: {a.options or '(defaults)'}", markup=False)
    console.print(f"B: {b.options or '(defaults)'}", markup=False)
    for side, label in ((a, "A"), (b, "B")):
        if side.refused:
            console.print(f"{label}: the mount is refused: {side.refused}", markup=False)
    steps = [d for d in c.steps if all_commands or not d.same]
    if steps:
        console.print("commands that differ:" if not all_commands else "commands:")
    for d in steps:
        table = Table(title=f"{d.index + 1}. {escape(d.command)}", title_justify="left",
                      expand=True)  # fmt: skip
        table.add_column("A", ratio=1)
        table.add_column("B", ratio=1)
        table.add_row(escape(_cell(d.a)), escape(_cell(d.b)))
        console.print(table)
    if not steps and c.steps:
        console.print(f"all {len(c.steps)} commands: same status, output and decisions")
    for rows, where in ((c.upper, "upper"), (c.work, "work")):
        if rows:
            console.print(_rows_table(rows, f"{where} dirs differ"))
    if not c.upper and a.upper is not None and b.upper is not None:
        console.print("upper dirs: the same")
    totals = Table(title="totals (* differs)", expand=False)
    totals.add_column("")
    totals.add_column("A", justify="right")
    totals.add_column("B", justify="right")
    ta, tb = c.totals(a), c.totals(b)
    for key, name in _TOTALS:
        same = ta[key] == tb[key]
        if same and not all_commands and key not in _ALWAYS:
            continue  # short by default (80 columns, make demo): what differs, and the sizes
        totals.add_row(name + ("" if same else " *"), str(ta[key]), str(tb[key]))
    console.print(totals)
