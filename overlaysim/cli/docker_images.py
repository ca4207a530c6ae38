"""``overlaysim docker load|save|images|history|rmi|tag|commit``: the image side of docker.

Archives are read from and written to the real disk, so a reader can open them with real
``tar`` and ``jq``; the image store itself lives in the world under ``/var/lib/docker/image``.
The commands are registered on the ``docker`` group by ``overlaysim.cli.docker``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from overlaysim.cli.docker_common import DockerGroup, daemon_session, exit_with, listing, one_line
from overlaysim.cli.world_opt import world_option
from overlaysim.docker import imageops, listfmt, render, terminal
from overlaysim.docker.inspect import NoSuchObject
from overlaysim.errors import DaemonError


@click.command("load")
@click.option("-i", "--input", "path", default=None, help="Read from a tar file, not stdin.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
@world_option
def load(path: str | None, quiet: bool, world: str) -> None:
    """Load an image from a tar archive or stdin (any docker save format).

    \b
    Example:
      overlaysim image demo -o demo.tar && overlaysim docker load -i demo.tar
      overlaysim docker load < busybox.tar
    """
    failed: imageops.LoadFailed | None = None
    try:
        with (
            terminal.input_file(path) as src,
            daemon_session(world) as d,
            terminal.progress(not quiet) as bar,
        ):
            try:
                lines = imageops.load(
                    d, src, bar, lambda text: click.echo(f"overlaysim: {text}", err=True)
                )
            except imageops.LoadFailed as e:
                if not e.kept:
                    raise  # nothing was registered: the world is not saved
                failed, lines = e, e.lines  # what was loaded stays: the world is saved
    except imageops.LoadFailed as e:
        failed, lines = e, e.lines
    for line in lines:
        click.echo(line)
    if failed is not None:  # dockerd's error arrives in the stream: no daemon prefix
        click.echo(one_line(failed), err=True)
        exit_with(1)


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", default=None, help="Write to a file (real disk), not stdout.")
@click.option(
    "--save-format",
    type=click.Choice(["v25", "v1.2"]),
    default=None,
    help="Archive shape: Docker >= 25 (OCI layout + manifest.json) or Docker 1.10-24; "
    "default: the one of the Docker release spoken (--docker-version).",
)
@world_option
def save(images: tuple[str, ...], output: str | None, save_format: str | None, world: str) -> None:
    """Save one or more images to a tar archive (layers byte-identical to the loaded ones).

    \b
    Example:
      overlaysim docker save -o busybox.tar busybox && tar tvf busybox.tar
      overlaysim docker save busybox | tar t
    """
    with (
        daemon_session(world) as d,
        terminal.progress(True) as bar,
        terminal.output_file(output) as f,
    ):
        imageops.save(d, list(images), f, save_format or d.version.save_layout, bar)


_FORMAT_HELP = "Pretty-print with a Go template ('table ...' for a header), or 'json'."


class GoBool(click.ParamType):  # type: ignore[type-arg]
    """A Go flag's boolean: ``-H=false`` reaches us as ``=false``."""

    name = "boolean"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).removeprefix("=").lower()
        if text in ("1", "t", "true"):
            return True
        if text in ("0", "f", "false"):
            return False
        self.fail(f'invalid argument "{value}": parse error', param, ctx)


@click.command("images")
@click.argument("repository", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (incl. intermediate).")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("--format", "fmt", default=None, help=_FORMAT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@world_option
def images(
    repository: str | None,
    all_: bool,
    quiet: bool,
    no_trunc: bool,
    fmt: str | None,
    as_json: bool,
    world: str,
) -> None:
    """List images.

    \b
    Example:
      overlaysim docker images
      overlaysim docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}'
      overlaysim docker images --format 'table {{.ID}}\t{{.CreatedAt}}'
    """
    with daemon_session(world) as d:
        rows = imageops.rows(d, all_)
        now = d.now()
    if repository:
        repo, _, tag = repository.partition(":")
        rows = [r for r in rows if r["Repository"] == repo and (not tag or r["Tag"] == tag)]
    out = [render.image_row(r, now, no_trunc) for r in rows]
    listing(listfmt.IMAGES, out, fmt, quiet, as_json)


@click.command("history")
@click.argument("image")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option(
    "-H", "--human", type=GoBool(), default=True, show_default=True,
    help="Sizes and dates in human readable format (-H=false: RFC 3339 and bytes).",
)  # fmt: skip
@click.option("--format", "fmt", default=None, help=_FORMAT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@world_option
def history(
    image: str,
    no_trunc: bool,
    quiet: bool,
    human: bool,
    fmt: str | None,
    as_json: bool,
    world: str,
) -> None:
    """Show the history of an image: one row per step, with the size of its layer.

    \b
    Example:
      overlaysim docker history dive-test
      overlaysim docker history --format '{{.CreatedBy}} {{.Size}}' dive-test
    """
    with daemon_session(world) as d:
        rows = imageops.history(d, image)
        now = d.now()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    out = [render.history_row(r, now, no_trunc, human) for r in rows]
    listing(listfmt.HISTORY, out, fmt, quiet, False, human=human)


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image.")
@world_option
def rmi(images: tuple[str, ...], force: bool, world: str) -> None:
    """Remove one or more images (and the layers no other image uses).

    \b
    Example:
      overlaysim docker rmi busybox
    """
    failed = False
    with daemon_session(world) as d:
        for name in images:
            try:
                for line in imageops.rmi(d, name, force):
                    click.echo(line)
            except NoSuchObject as e:
                wrapped = d.version.cli_wraps_not_found or e.daemon is None
                text = f"Error: {e}" if wrapped else DockerGroup.prefix + str(e.daemon)
                click.echo(text, err=True)
                failed = True
            except DaemonError as e:
                click.echo(DockerGroup.prefix + one_line(e), err=True)
                failed = True
    exit_with(1 if failed else 0)


@click.command("tag")
@click.argument("source")
@click.argument("target")
@world_option
def tag(source: str, target: str, world: str) -> None:
    """Create a tag TARGET that refers to SOURCE.

    \b
    Example:
      overlaysim docker tag busybox me/busybox:1.0
    """
    with daemon_session(world) as d:
        imageops.tag(d, source, target)


@click.command("commit")
@click.argument("container")
@click.argument("reference", required=False)
@click.option("-a", "--author", default="", help='Author (e.g. "Jane <jane@example.com>").')
@click.option("-m", "--message", default="", help="Commit message.")
@world_option
def commit(container: str, reference: str | None, author: str, message: str, world: str) -> None:
    """Create a new image from a container's changes (its upper dir, diffed against -init).

    \b
    Example:
      overlaysim docker commit web busybox:touched
    """
    with daemon_session(world) as d:
        iid = imageops.commit(d, container, reference, author=author, message=message)
    click.echo(iid)


COMMANDS = (load, save, images, history, rmi, tag, commit)
