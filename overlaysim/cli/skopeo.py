"""``overlaysim skopeo copy SRC DST``: copy images between the world's Docker daemon and OCI
layouts or archives on the real disk, as skopeo does (gzip layers in OCI layouts)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from overlaysim.cli.world_opt import world_option, world_session
from overlaysim.docker.daemon import Daemon
from overlaysim.docker.transports import open_source, parse_location, write
from overlaysim.errors import OverlaySimError, WorldError


class SkopeoGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorldError:
            raise  # not skopeo's: the root group prints it
        except (OverlaySimError, OSError) as e:
            text = " ".join(str(e).split())
            if isinstance(e, OSError) and e.strerror:
                text = f"{e.filename}: {e.strerror.lower()}" if e.filename else e.strerror
            click.echo(f"FATA[0000] {text}", err=True)
            sys.exit(1)


@click.group("skopeo", cls=SkopeoGroup)
def skopeo() -> None:
    """skopeo on the simulated machine: copy images between transports.

    \b
    Transports: docker-daemon:NAME (the world's Docker), oci:DIR[:REF],
    oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG] (on the real disk).
    """


@contextlib.contextmanager
def _maybe_daemon(needed: bool, world: str) -> Iterator[Daemon | None]:
    if not needed:
        yield None
        return
    with world_session(world) as w:
        yield Daemon(w.fs, w.meta, w.seed)


@skopeo.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("-q", "--quiet", is_flag=True, help="Do not print progress lines.")
@world_option
def copy(source: str, destination: str, quiet: bool, world: str) -> None:
    """Copy an image from SOURCE to DESTINATION.

    \b
    Example:
      overlaysim skopeo copy docker-daemon:busybox:latest oci:busybox-oci:latest
      jq . busybox-oci/index.json
      overlaysim skopeo copy oci:busybox-oci:latest docker-archive:busybox.tar:busybox:latest
    """
    src, dst = parse_location(source), parse_location(destination)
    needed = "docker-daemon" in (src.transport, dst.transport)
    with _maybe_daemon(needed, world) as d, open_source(src, d) as (im, layers):
        lines = write(dst, im, layers, d)
    if not quiet:
        for line in lines:
            click.echo(line)
