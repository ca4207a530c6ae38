"""The ``overlaysim`` command: a click group that composes one sub-group per concern."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import click

from overlaysim.errors import OverlaySimError


class _Group(click.Group):
    """Turn our typed errors and OSErrors into one line on stderr and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as a tool killed by SIGPIPE does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)
        except (OverlaySimError, OSError) as exc:
            click.echo(f"overlaysim: error: {_one_line(exc)}", err=True)
            sys.exit(1)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="overlaysim")
def main() -> None:
    """overlaysim: a userspace simulator of Linux overlayfs and Docker's overlay2 driver."""


def _register() -> None:
    # Sub-groups live in their own modules; each exposes one click command or group.
    from overlaysim.cli import image

    main.add_command(image.image)
    from overlaysim.cli import tour

    main.add_command(tour.tour)
    from overlaysim.cli import world_opt

    main.add_command(world_opt.world)
    from overlaysim.cli import sh

    main.add_command(sh.sh)
    from overlaysim.cli import docker

    main.add_command(docker.docker)
    from overlaysim.cli import runc

    main.add_command(runc.runc)
    from overlaysim.cli import skopeo

    main.add_command(skopeo.skopeo)
    from overlaysim.cli import replay

    main.add_command(replay.replay_group)
    from overlaysim.cli import fuzz

    main.add_command(fuzz.fuzz)
    from overlaysim.cli import explain

    main.add_command(explain.explain)
    from overlaysim.cli import dive

    main.add_command(dive.dive)
    from overlaysim.cli import report

    main.add_command(report.report)
    from overlaysim.cli import compare

    main.add_command(compare.compare)
    from overlaysim.cli import mount

    for command in mount.commands():
        main.add_command(command)


_register()
