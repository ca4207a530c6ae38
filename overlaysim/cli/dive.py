"""``overlaysim dive IMAGE|CONTAINER``: explore layers; ``--ci`` gates on their waste.

The world is opened read-only: exploring changes nothing. As dive does, ``CI=true`` in the
environment selects ``--ci`` (a CI job never hangs in a UI).
"""

from __future__ import annotations

import json
import os
import sys

import click

from overlaysim.cli.world_opt import world_option, world_session


@click.command("dive")
@click.argument("target", metavar="IMAGE|CONTAINER|FILE.tar")
@click.option("--source", type=click.Choice(["world", "docker-archive"]), default="world",
              show_default=True,
              help="world: an image or container of the saved machine; docker-archive: a "
                   "`docker save` (or OCI) tar file.")
@click.option("--image", "ref", metavar="REF",
              help="With docker-archive: the image to pick when the file holds several.")
@click.option("--ci", "ci_mode", is_flag=True,
              help="No UI: print the figures, check the rules, exit 1 if one fails "
                   "(also when CI=true is in the environment).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--lowest-efficiency", default="0.9", show_default=True,
              help="Fail below this efficiency (a ratio 0-1; 'disabled' to skip).")
@click.option("--highest-wasted-bytes", default="disabled", show_default=True,
              help="Fail above this many wasted bytes (20MB, 512KiB...; 'disabled').")
@click.option("--highest-user-wasted-percent", default="0.1", show_default=True,
              help="Fail above this wasted/user-bytes ratio (0-1; 'disabled').")
@click.option("--figures", type=click.Choice(["honest", "dive"]), default="honest",
              show_default=True,
              help="Which formula the rules check: ours (hidden bytes) or dive's.")
@world_option
def dive(target: str, source: str, ref: str | None, ci_mode: bool, as_json: bool,
         lowest_efficiency: str, highest_wasted_bytes: str, highest_user_wasted_percent: str,
         figures: str, world: str) -> None:  # fmt: skip
    """Explore the layers of an image or container: sizes, commands, each layer's
    added/modified/removed/opaque files, the merged view, and how many bytes are wasted.

    \b
    Wasted bytes are bytes a layer stores that the merged view never shows (deleted,
    overwritten, hidden by an opaque directory, re-added identically, or re-stored by a
    chmod); a hard link's data counts once. dive's own figures are shown next to them.

    \b
    Examples:
      overlaysim dive busybox
      overlaysim dive web                      # a container: its upper dir is the top layer
      overlaysim dive --ci --lowest-efficiency 0.9 --highest-wasted-bytes 20MB busybox
      overlaysim dive --source docker-archive --json image.tar
    """
    from overlaysim.dive import ci, render, sources
    from overlaysim.dive.diveformula import dive_figures
    from overlaysim.dive.waste import honest_waste

    if source == "docker-archive":
        subject = sources.from_archive(target, ref)
    else:
        with world_session(world, write=False) as w:
            subject = sources.from_world(w, target)
    honest = honest_waste(subject.layers)
    theirs = dive_figures(subject.layers)
    gate = ci.Figures.honest(honest) if figures == "honest" else ci.Figures.dive(theirs)
    rules = ci.evaluate(gate, lowest_efficiency, highest_wasted_bytes,
                        highest_user_wasted_percent)  # fmt: skip
    ci_mode = ci_mode or os.environ.get("CI", "").lower() == "true"
    if as_json:
        click.echo(json.dumps(ci.report(subject, honest, theirs, gate, rules), indent=2))
    elif ci_mode:
        click.echo(render.ci_text(subject, honest, theirs, gate.formula, rules))
    else:
        if not sys.stdout.isatty() or not sys.stdin.isatty():
            raise click.UsageError("the explorer needs a terminal: use --ci or --json")
        from overlaysim.dive.app import DiveApp

        DiveApp(subject, honest, theirs).run()
        return
    if ci_mode and not ci.passed(rules):
        sys.exit(1)
