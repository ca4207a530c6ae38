"""What every ``overlaysim docker`` command shares: the docker CLI's error lines and exit
codes, the daemon of the saved world, and the listing formats of ``images`` and ``ps``.

Kept apart from the commands so that the image commands (``docker_images``) and the container
commands (``docker``) use one definition of how docker reports a failure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from overlaysim.cli.world_opt import world_session
from overlaysim.docker import render
from overlaysim.docker.daemon import Daemon, ExecFailed
from overlaysim.errors import DaemonError, OverlaySimError, WorldError


class DockerGroup(click.Group):
    """Errors the way the docker CLI prints them: one line on stderr, exit 1 (125 for run)."""

    prefix = "Error response from daemon: "

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ExecFailed as e:
            self._fail(ctx, one_line(e) if e.raw else self.prefix + one_line(e), e.status)
        except WorldError:
            raise  # not the daemon's: the root group prints it
        except render.TemplateError as e:
            self._fail(ctx, one_line(e))
        except FileNotFoundError as e:
            self._fail(ctx, f"open {e.filename}: no such file or directory")
        except (OverlaySimError, OSError) as e:
            self._fail(ctx, self.prefix + one_line(e))

    def _fail(self, ctx: click.Context, text: str, status: int | None = None) -> None:
        sub = ctx.invoked_subcommand or ""
        if sub in ("run", "create"):
            click.echo(f"docker: {text}", err=True)
            sys.exit(status or 125)
        click.echo(text, err=True)
        sys.exit(status or 1)


def one_line(e: BaseException) -> str:
    """An error as docker prints it: one line, the OS message with its path when there is one."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return " ".join(str(e).split()) or type(e).__name__


@contextmanager
def daemon_session(world: str) -> Iterator[Daemon]:
    """The world's daemon; the world is saved only if the body returns normally.

    A container that failed to start (:class:`ExecFailed`) is a recorded outcome, as with
    dockerd: the world is saved with the container's error, then the error is raised.
    """
    failed: list[ExecFailed] = []
    with world_session(world) as w:
        try:
            yield Daemon(w.fs, w.meta, w.seed)
        except ExecFailed as e:
            failed.append(e)
    if failed:
        raise failed[0]


def exit_with(code: int) -> None:
    """Exit with ``code`` unless it is 0 (then the command returns normally)."""
    if code:
        sys.exit(code)


# Options after the image or container name belong to the command run in the container.
NO_INTERSPERSED = {"allow_interspersed_args": False}


def each_container(
    names: tuple[str, ...], world: str, action: Callable[[Daemon, str], Any]
) -> None:
    """Apply ``action`` to each container as docker does: print the name on success, one
    ``Error response from daemon`` line per failure, exit 1 if any failed (the successful
    ones are saved)."""
    failed = False
    with daemon_session(world) as d:
        for name in names:
            try:
                action(d, name)
            except ExecFailed as e:
                click.echo(one_line(e) if e.raw else DockerGroup.prefix + one_line(e), err=True)
                failed = True
            except DaemonError as e:
                click.echo(DockerGroup.prefix + one_line(e), err=True)
                failed = True
            else:
                click.echo(name)
    exit_with(1 if failed else 0)


def listing(
    fields: list[dict[str, str]],
    as_json: bool,
    fmt: str | None,
    quiet: bool,
    table: Callable[[], str],
) -> None:
    """``--json`` (an array), ``--format json`` (a line each), ``-q`` (unique IDs), or a table."""
    if as_json:
        click.echo(json.dumps(fields, indent=2))
    elif fmt == "json":
        for f in fields:
            click.echo(render.json_line(f))
    elif quiet:
        for ident in dict.fromkeys(f["ID"] for f in fields):
            click.echo(ident)
    else:
        click.echo(table(), nl=False)
