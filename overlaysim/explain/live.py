"""``sh --explain`` and ``docker exec --explain``: after each command, what the engine did.

A watcher remembers where the world's event log stood and, after each command, writes the
overlay decisions since then (copy-ups with bytes, whiteouts, opaque and redirect xattrs) in
plain words to stderr, so the command's own output on stdout stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from overlaysim.events import Event
from overlaysim.explain import narrate


def command_text(node: Any) -> str:
    """A readable rendering of a parsed command list (quotes and expansions approximated)."""

    def word(w: Any) -> str:
        out = ""
        for p in w.parts:
            if p.kind == "var":
                out += "${" + p.text + "}"
            elif p.kind == "sub":
                out += "$(" + p.text + ")"
            else:
                out += p.text
        return out

    def command(c: Any) -> str:
        parts = [f"{n}={word(v)}" for n, v in c.assigns] + [word(w) for w in c.words]
        parts += [f"{r.op}{word(r.target)}" for r in c.redirs]
        return " ".join(parts)

    def pipeline(pl: Any) -> str:
        return ("! " if pl.negate else "") + " | ".join(command(c) for c in pl.commands)

    text = pipeline(node.first)
    for op, pl in node.rest:
        text += f" {op} {pipeline(pl)}"
    return text


class Watcher:
    """Reports the events of ``events`` (an EventLog) that appeared since the last report.

    ``out`` None prints nothing; ``sink`` (the world's event log, ``world.eventlog.sink``) is
    handed each command's label and events, so the saved log and ``--explain`` agree."""

    def __init__(self, events: Any, out: IO[str] | None, as_json: bool = False,
                 relative: bool = False,
                 sink: Callable[[str, list[Event]], None] | None = None) -> None:  # fmt: skip
        self.sink = sink
        self.relative = relative  # paths from the overlay's root (a container's view)
        self.events = events
        self.out = out
        self.as_json = as_json
        self.mark = len(events)

    def report(self, label: str, status: int | None = None) -> None:
        new = [e for e in self.events.since(self.mark) if e.kind not in narrate.QUIET]
        self.mark = len(self.events)
        if self.sink is not None:
            self.sink(label, new)
        if self.out is None:
            return
        if self.as_json:
            row = {"command": label, "status": status, "events": [narrate.as_json(e, self.relative) for e in new]}
            self.out.write(json.dumps(row, sort_keys=True) + "\n")
        else:
            self.out.write(f"explain: {label}\n")
            said = narrate.lines(new, self.relative)
            for line in said or ["no overlay decision (no copy-up, whiteout or xattr written)"]:
                self.out.write(f"explain:   {line}\n")
        self.out.flush()

    def after_command(self, node: Any, status: int) -> None:
        self.report(command_text(node), status)
