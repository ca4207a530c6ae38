"""``overlaysim compare``: one script (or trace) under two option sets, side by side."""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

import click

from overlaysim.cli.world_opt import world_option
from overlaysim.errors import UsageError


@click.command("compare", context_settings={"ignore_unknown_options": False})
@click.option("--options", "-o", "options", multiple=True, metavar="OPTS",
              help="An option set (mount -o style, e.g. redirect_dir=on,metacopy=on); give it "
                   "twice: A then B. An empty string is the defaults.")  # fmt: skip
@click.option("--lowerdir", metavar="L1:L2", help="Real lower dirs (uppermost first), read only.")
@click.option("--image", "archive", metavar="ARCHIVE|NAME",
              help="The layers of an image as the lowers: an archive file (docker save, OCI "
                   "layout tar) or, if no such file, an image of the saved world (--world).")
@click.option("--ref", metavar="REF", help="With --image ARCHIVE: which image of the archive.")
@click.option("-f", "script_file", type=click.File("r"), help="Read the script from FILE.")
@click.option("--trace", metavar="TRACE", help="Replay a trace (strace -f log or JSONL) instead.")
@click.option("--all", "all_commands", is_flag=True, help="Show every command and total, not only those that differ.")
@click.option("--json", "as_json", is_flag=True, help="The comparison as one JSON object.")
@click.argument("script", nargs=-1)
@world_option
def compare(options: tuple[str, ...], lowerdir: str | None, archive: str | None, ref: str | None,
            script_file: TextIO | None, trace: str | None, all_commands: bool,
            as_json: bool, script: tuple[str, ...], world: str) -> None:  # fmt: skip
    """Run the same operations under two option sets on the same lowers and show what differs.

    The script is the overlaysim shell's (after --, or -f FILE), run as root in the merged
    view; without --lowerdir or --image the lowers are the embedded demo layers. Shown per
    command: status, output and the engine's decisions (copy-ups with bytes, whiteouts,
    opaque dirs, redirects, EXDEV); then the upper and work dirs entry by entry (index entries), and totals.

    \b
    Examples:
      overlaysim compare -o redirect_dir=off -o redirect_dir=on -- 'mv /etc /etc2'
      overlaysim compare -o '' -o metacopy=on -- 'chmod 600 /etc/passwd'
      overlaysim compare -o '' -o index=on --lowerdir ./l1:./l2 -f script.sh
      overlaysim compare -o '' -o xino=on --image demo -- 'mkdir /new'
    Exit status 0 whether or not the sides differ; 1 on bad input.
    """
    from overlaysim.compare import Lowers
    from overlaysim.compare import compare as run_compare
    from overlaysim.compare.render import render

    if len(options) != 2:
        raise UsageError(f"give --options twice (A and B), not {len(options)} time(s)")
    if lowerdir and archive:
        raise UsageError("--lowerdir and --image both give the lowers: choose one")
    sources = [x for x in (bool(script), script_file is not None, trace is not None) if x]
    if len(sources) != 1:
        raise UsageError("give the operations once: a script after --, -f FILE, or --trace TRACE")
    text = " ".join(script) if script else (script_file.read() if script_file else None)
    if archive and not os.path.exists(archive):  # not a file: an image of the saved world
        if ref:
            raise UsageError(f"--ref picks an image of an archive; {archive} is not a file")
        lowers = Lowers(world=world, image=archive)
    else:
        lowers = Lowers(tuple(lowerdir.split(":")) if lowerdir else (), archive, ref)
    c = run_compare(lowers, options[0], options[1], script=text, trace=trace)
    if as_json:
        json.dump(c.as_json(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        render(c, sys.stdout, all_commands=all_commands)
