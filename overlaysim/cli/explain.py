"""``overlaysim explain PATH``: where a path of a container, image or overlay mount comes from.

The world is opened without saving (an image's scratch overlay and the trial operations never
reach the file); see :mod:`overlaysim.explain`.
"""

from __future__ import annotations

import json

import click

from overlaysim.cli.world_opt import world_option, world_session


@click.command("explain")
@click.argument("path", metavar="PATH")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@world_option
def explain(path: str, as_json: bool, world: str) -> None:
    """Explain PATH: its layers, what hides them, its overlay xattrs, and what the next
    write, chmod, rename and unlink would do (tried on a throwaway copy of the world).

    \b
    PATH is one of:
      CONTAINER:/path   a path in a container's root (mounted for the answer if stopped)
      IMAGE:/path       a path in an image (its layers under a scratch overlay)
      /path             a path under any overlay mount of the world

    \b
    Example:
      overlaysim explain web:/etc/passwd
      overlaysim explain --json busybox:/bin/sh
    """
    from overlaysim.explain import explain as run
    from overlaysim.explain.render import text

    with world_session(world, write=False) as w:
        report = run(w, path)
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else text(report))
