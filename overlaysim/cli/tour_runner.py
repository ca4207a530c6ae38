"""How the tour shows a step: the command as the reader would type it, what it really printed,
and one sentence on what changed in lower/upper/work/merged.

Every ``overlaysim …`` line is executed by calling the real click command in this process on
the tour's world (exactly what the same line typed in a shell would run, minus the Python
start-up), so the output shown is the simulator's, never a transcript. Files on the real disk
are listed from the disk after the command wrote them. A command whose exit status is not the
expected one is reported and makes the whole tour exit 1, so a broken story cannot pass as fine.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import click
from rich.console import Console
from rich.text import Text

from overlaysim.cli.world_opt import ENVVAR
from overlaysim.world import World, open_world


@dataclass
class Result:
    status: int
    output: str  # stdout and stderr interleaved, as a terminal shows them


def invoke(args: list[str], world: str) -> Result:
    """Run ``overlaysim ARGS`` in this process with ``$OVERLAYSIM_WORLD=world``.

    stdout and stderr share one buffer (the order a terminal shows), stdin is empty, and
    nothing is a terminal, so no progress bar or colour ends up in the captured text.
    """
    from overlaysim.cli import main

    buf = io.BytesIO()
    text = io.TextIOWrapper(buf, encoding="utf-8", errors="replace", write_through=True)
    saved = sys.stdout, sys.stderr, sys.stdin, os.environ.get(ENVVAR)
    sys.stdout = sys.stderr = text
    sys.stdin = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    os.environ[ENVVAR] = world
    try:
        main.main(args, prog_name="overlaysim", standalone_mode=False)
        status = 0
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except click.ClickException as e:
        e.show()
        status = e.exit_code
    finally:
        text.flush()
        sys.stdout, sys.stderr, sys.stdin = saved[:3]
        if saved[3] is None:
            os.environ.pop(ENVVAR, None)
        else:
            os.environ[ENVVAR] = saved[3]
    return Result(status, buf.getvalue().decode("utf-8", "replace"))


@dataclass
class Tour:
    """The state of one tour run: where it writes, what it printed, what went wrong."""

    console: Console
    world: str
    number: int = 0
    failures: list[str] = field(default_factory=list)

    def step(self, title: str) -> None:
        self.number += 1
        self.console.print()
        self.console.rule(f"[bold]{self.number}. {title}", align="left")

    def run(self, *args: str, expect: int = 0) -> str:
        """Show and run ``overlaysim ARGS``; return its output."""
        self._command("overlaysim " + shlex.join(args))
        r = invoke(list(args), self.world)
        self._output(r.output)
        if r.status:
            self.console.print(Text(f"[exit status {r.status}]", style="dim"))
        if r.status != expect:
            self.failures.append(f"step {self.number}: `overlaysim {shlex.join(args)}` exited "
                                 f"{r.status}, expected {expect}")  # fmt: skip
        return r.output

    def sh(self, script: str, expect: int = 0) -> str:
        """A command line for the simulated machine's shell (``overlaysim sh -c``)."""
        return self.run("sh", "-c", script, expect=expect)

    def disk(self, shown: str, output: str) -> None:
        """A real-disk command the tour performed itself (``rm``, an edit, a listing)."""
        self._command(shown)
        self._output(output)

    def note(self, text: str) -> None:
        self.console.print(Text(text, style="dim"))

    def why(self, text: str) -> None:
        self.console.print(Text("→ " + text, style="italic green"))

    @contextmanager
    def look(self) -> Iterator[World]:
        """The world as the last command saved it (read-only), to state facts from it."""
        with open_world(self.world, create=False, write=False) as w:
            yield w

    def _command(self, line: str) -> None:
        self.console.print(Text(f"$ {line}", style="bold cyan"), soft_wrap=True)

    def _output(self, text: str) -> None:
        if text.strip():
            self.console.print(Text(text.rstrip("\n")), soft_wrap=True, highlight=False)
