"""``--world FILE`` for every command that acts on the simulated machine, and ``world`` itself.

Commands take ``@world_option`` (a ``world`` argument holding the path) and run their body in
``with world_session(world) as w:``: the machine is loaded (or created), changed, and saved
in one transaction only if the body returns normally, so a failed command changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from overlaysim.errors import WorldError
from overlaysim.world import SCHEMA, World, open_world, save_world, store
from overlaysim.world.snapshot import capture, sizes

DEFAULT_WORLD = "./overlaysim.world"
ENVVAR = "OVERLAYSIM_WORLD"

F = TypeVar("F", bound=Callable[..., Any])


def world_option(f: F) -> F:
    """Add ``--world FILE`` (``$OVERLAYSIM_WORLD``, default ``./overlaysim.world``) as ``world``."""
    return click.option(
        "--world",
        "world",
        metavar="FILE",
        envvar=ENVVAR,
        default=DEFAULT_WORLD,
        show_default=True,
        show_envvar=True,
        help="The saved machine (an SQLite file, created on first use).",
    )(f)


@contextmanager
def world_session(path: str, *, write: bool = True) -> Iterator[World]:
    """Load or create the world at ``path``, yield it, save it atomically if the body succeeds."""
    with open_world(path, create=True, write=write) as w:
        yield w


@click.group("world")
def world() -> None:
    """The saved machine: what it holds, and starting over."""


def _info(path: str) -> dict[str, Any]:
    exists = not store.is_absent(path) or os.path.isdir(path)
    with open_world(path, create=True, write=False) as w:
        counts = sizes(capture(w.fs))
        mounts = [m.line() for m in w.fs.mounts()]
        seed = w.seed
        meta_keys = sorted(w.meta)
    return {
        "path": os.path.abspath(path),
        "exists": exists,
        "schema": SCHEMA,
        "size": os.stat(path).st_size if exists else 0,
        "inodes": counts["inodes"],
        "data_bytes": counts["data_bytes"],
        "mounts": mounts,
        "seed": seed,
        "meta_keys": meta_keys,
    }


@world.command("info")
@world_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(world: str, as_json: bool) -> None:
    """Show the world file: path, schema, size, inodes, mounts, seed."""
    facts = _info(world)
    if as_json:
        click.echo(json.dumps(facts, indent=2, sort_keys=True))
        return
    state = "" if facts["exists"] else " (not created yet: the first command creates it)"
    click.echo(f"world:   {facts['path']}{state}")
    click.echo(f"schema:  {facts['schema']}")
    click.echo(f"size:    {facts['size']} bytes")
    click.echo(f"seed:    {facts['seed']}")
    click.echo(f"inodes:  {facts['inodes']} ({facts['data_bytes']} bytes of file data)")
    click.echo(f"mounts:  {len(facts['mounts'])}")
    for line in facts["mounts"]:
        click.echo(f"  {line}")


@world.command("log")
@click.argument("container", required=False)
@world_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def log(container: str | None, world: str, as_json: bool) -> None:
    """Print the world's event log: the overlay decisions each command made, oldest first
    (the newest 10,000 per container are kept; a container's go with docker rm).

    \b
    Example:
      overlaysim world log web
      overlaysim world log --json
    """
    from overlaysim.world.eventlog import for_cli

    with open_world(world, create=True, write=False) as w:
        rows, dropped = for_cli(w, container)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for r in rows:
        who = r["container_name"] or r["mount"]
        click.echo(f"{r['time']}  {who}  {r['source']}: {r['command']}\n    {r['text']}")
    if dropped:
        click.echo(f"({dropped} older events were dropped: the log keeps the newest "
                   "10,000 per container)")
    if not rows:
        click.echo("the event log is empty" + (f" for {container}" if container else ""))


@world.command("reset")
@world_option
@click.option("--seed", type=int, default=None, help="Seed of the new machine (default 0); a "
              "seeded machine's clock starts at 2024-01-01, so its output is reproducible.")
@click.option("--force", is_flag=True, help="Also replace a file that is not a readable world.")
@click.option("--clock", type=click.Choice(["step", "wall"]), default="step", show_default=True,
              help="step: a deterministic clock from now ($SOURCE_DATE_EPOCH if set, "
              "2024-01-01 with --seed), one microsecond per reading; wall: the host's time "
              "(to compare 'Up 2 seconds' with a real docker).")
def reset(world: str, seed: int | None, force: bool, clock: str) -> None:
    """Start over: replace the world with a fresh machine."""
    fresh = World.new(seed, wall=clock == "wall")
    if os.path.isdir(world):
        raise WorldError(f"{world}: is a directory, not a world file")
    if store.is_absent(world):
        store.write_new(world, fresh.snapshot())
    else:
        try:
            save_world(fresh, world)
        except WorldError:
            if not force:
                raise
            store.write_new(world, fresh.snapshot())
    click.echo(f"fresh world at {os.path.abspath(world)} (seed {fresh.seed})")
