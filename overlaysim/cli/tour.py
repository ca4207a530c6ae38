"""``overlaysim tour``: the Docker/runc story on the embedded image, narrated (``make demo``).

The tour starts a fresh world in its own directory (so it never touches the reader's
``./overlaysim.world``), runs every step through the real commands, and leaves the world and
the files it wrote behind, ending with the commands that continue from there.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
import sys

import click
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from overlaysim.cli.tour_runner import Tour
from overlaysim.cli.tour_story import NEXT, story
from overlaysim.cli.world_opt import ENVVAR
from overlaysim.errors import UsageError

DEFAULT_DIR = "overlaysim-tour"
WORLD_FILE = "tour.world"
# Everything the tour writes in its directory: a rerun may delete these, and only these.
OWN = {WORLD_FILE, "demo.tar", "saved.tar", "demo-oci", "bundle"}


def prepare(where: str) -> None:
    """Make ``where`` an empty tour directory, refusing to delete anything the tour did not write."""
    if os.path.lexists(where) and not os.path.isdir(where):
        raise UsageError(f"{where} exists and is not a directory; choose another with --dir")
    if os.path.isdir(where):
        foreign = sorted(set(os.listdir(where)) - OWN)
        if foreign:
            raise UsageError(f"{where} holds files the tour did not write ({', '.join(foreign)})"
                             "; choose another directory with --dir")  # fmt: skip
        for name in os.listdir(where):
            p = os.path.join(where, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
    os.makedirs(where, exist_ok=True)


def next_commands(world: str) -> list[str]:
    """The closing lines: how to point the commands at the tour's world, then what to try."""
    lines = [f"export {ENVVAR}={shlex.quote(world)}   # or add --world FILE to each command"]
    lines += ["overlaysim " + shlex.join(args) for args in NEXT]
    return lines


def run_tour(console: Console, where: str) -> list[str]:
    """Tell the story in ``where``; return the failures (commands with an unexpected status)."""
    prepare(where)
    world = posixpath.join(where, WORLD_FILE)
    console.print(Panel.fit(
        "overlaysim tour: Docker's overlay2 and runc on a simulated Linux machine.\n"
        "Each `$ overlaysim ...` line below really runs (on the world file named next); the "
        "text under it is its output.\nThe green line says what changed in lower, upper, "
        "work and merged, and why.", title="overlaysim"))  # fmt: skip
    console.print(Text(f"$ export {ENVVAR}={shlex.quote(world)}", style="bold cyan"))
    t = Tour(console, world)
    story(t, where)
    console.print()
    console.rule("[bold]Continue on your own", align="left")
    console.print(f"The machine is saved in {world}; archives and the bundle are in {where}/ "
                  "(open them with tar, jq, ls). Try:", highlight=False)  # fmt: skip
    for line in next_commands(world):
        console.print(Text("  " + line), soft_wrap=True, highlight=False)
    console.print(Text("  overlaysim sh            # an interactive root shell on the machine\n"
                       "  overlaysim world reset   # start over\n"
                       "  overlaysim --help        # every command"), highlight=False)  # fmt: skip
    return t.failures


@click.command()
@click.option(
    "--dir",
    "where",
    default=DEFAULT_DIR,
    show_default=True,
    metavar="DIR",
    help="Where the tour keeps its world and files (recreated; only the tour's own files).",
)
def tour(where: str) -> None:
    """Walk through Docker's overlay2 and runc on the embedded image (what `make demo` runs).

    Starts a fresh world in DIR, runs docker load/run/inspect/exec/diff/stop/rm/save, skopeo
    copy and runc spec/run/list/kill/delete, showing each command's real output, and leaves
    the world there for you to continue.

    \b
    Example:
      overlaysim tour | less -R
      overlaysim tour --dir /tmp/tour
    """
    failures = run_tour(Console(highlight=False), where)
    for f in failures:
        click.echo(f"overlaysim: tour: {f}", err=True)
    if failures:
        sys.exit(1)
