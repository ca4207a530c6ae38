"""The ``overlaysim`` command: a click group that composes one sub-group per concern."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

import click

from overlaysim.errors import OverlaySimError


class _Group(click.Group):
    """Turn our typed errors and OSErrors into one line on stderr and exit 1, never a traceback;
    load each sub-command's module when the command is first asked for (``_LAZY``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_LAZY))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attr = _LAZY[cmd_name]
            command = getattr(importlib.import_module(f"overlaysim.cli.{module}"), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

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


#: Sub-commands by name -> (module in overlaysim.cli, attribute): each lives in its own module
#: and is imported when first asked for (a run of ``overlaysim mount`` does not pay for
#: importing docker, dive, report... : ~0.3 s here); ``--help`` lists them all.
_LAZY: dict[str, tuple[str, str]] = {
    "image": ("image", "image"),
    "tour": ("tour", "tour"),
    "world": ("world_opt", "world"),
    "sh": ("sh", "sh"),
    "docker": ("docker", "docker"),
    "runc": ("runc", "runc"),
    "skopeo": ("skopeo", "skopeo"),
    "replay": ("replay", "replay_group"),
    "fuzz": ("fuzz", "fuzz"),
    "explain": ("explain", "explain"),
    "dive": ("dive", "dive"),
    "report": ("report", "report"),
    "compare": ("compare", "compare"),
    "mount": ("mount", "mount"),
    "umount": ("mount", "umount"),
    "overlay": ("mount", "mount_fuse_form"),
}
