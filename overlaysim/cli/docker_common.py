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
from overlaysim.docker import listfmt, render, versions
from overlaysim.docker.containers import NoSuchContainer
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
        except NoSuchContainer as e:
            # the 20.10 client rewords a 404 of these endpoints itself
            wraps = ctx.invoked_subcommand in ("exec", "logs") and versions.current().cli_wraps_not_found
            self._fail(ctx, f"Error: {e}" if wraps else self.prefix + one_line(e))
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
        if sub == "run" or (sub == "create" and not versions.current().legacy_container_errors):
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
    names: tuple[str, ...],
    world: str,
    action: Callable[[Daemon, str], Any],
    summary: str | None = None,
    *,
    missing: str = "daemon",
    missing_ok: bool = False,
) -> None:
    """Apply ``action`` to each container as docker does: print the name on success, one
    ``Error response from daemon`` line per failure, exit 1 if any failed (the successful
    ones are saved). ``summary`` ("start") adds docker's closing line naming the failed ones:
    ``Error: failed to start containers: a, b``. A missing container is reported as the
    daemon says it (``missing="daemon"``), as the 20.10 client rewords a 404 (``"client"``,
    ``rm``) or as dockerd's router wraps it (``"kill"``: ``Cannot kill container: NAME: ...``);
    ``missing_ok`` (``rm -f``) prints it without failing."""
    failed: list[str] = []
    with daemon_session(world) as d:
        for name in names:
            try:
                action(d, name)
            except NoSuchContainer as e:
                if missing == "client" and d.version.cli_wraps_not_found:
                    click.echo(f"Error: {e}", err=True)
                elif missing == "daemon" or missing == "client":
                    click.echo(DockerGroup.prefix + one_line(e), err=True)
                else:
                    click.echo(f"{DockerGroup.prefix}Cannot {missing} container: {name}: {e}", err=True)
                if not missing_ok:
                    failed.append(name)
            except ExecFailed as e:
                click.echo(one_line(e) if e.raw else DockerGroup.prefix + one_line(e), err=True)
                failed.append(name)
            except DaemonError as e:
                click.echo(DockerGroup.prefix + one_line(e), err=True)
                failed.append(name)
            else:
                click.echo(name)
    if failed and summary:
        click.echo(f"Error: failed to {summary} containers: {', '.join(failed)}", err=True)
    exit_with(1 if failed else 0)


def listing(
    kind: listfmt.Kind,
    rows: list[listfmt.Row],
    fmt: str | None,
    quiet: bool,
    as_json: bool,
    *,
    size: bool = False,
    human: bool = True,
) -> None:
    """Print rows as the docker CLI does for ``--format`` (Go template; ``table ...`` for a
    header and aligned columns), ``-q`` and the default table; ``--json`` (one array) is ours.
    ``--format json`` is the CLI's shorthand for ``{{json .}}`` since Docker 24 (20.10 prints
    the word ``json`` once per row)."""
    v = versions.current()
    if as_json:
        click.echo(json.dumps([r.fields() for r in rows], indent=2))
    elif fmt == "json" and v.format_json_shorthand:
        for r in rows:
            click.echo(r.go_json())
    else:
        if quiet and not fmt and kind is listfmt.IMAGES and v.images_quiet_unique:
            rows = list({r.value("ID"): r for r in rows}.values())
        chosen = listfmt.choose(kind, fmt, quiet, size=size, human=human)
        click.echo(listfmt.write(kind, chosen, rows), nl=False)
