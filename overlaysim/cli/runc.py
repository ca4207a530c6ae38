"""``overlaysim runc``: runc's commands over the simulated machine of the saved world.

Container state lives where runc keeps it (``--root``, default ``/run/runc``) inside the
world; bundles come from the world or, when absent there, from the real disk (imported at the
same path). Output shapes are runc's (``runc list`` table and JSON, ``runc state`` JSON);
errors are one line on stderr as runc's logger prints them, exit 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from overlaysim.cli.world_opt import world_option, world_session
from overlaysim.errors import OverlaySimError, RuntimeStateError, WorldError
from overlaysim.runtime.gofmt import tabwrite
from overlaysim.runtime.spec import locate_bundle, spec, write_spec
from overlaysim.runtime.state import RUNC_ROOT, Runc


class RuncGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorldError:
            raise  # not runc's: the root group prints it
        except (OverlaySimError, OSError) as e:
            text = " ".join(str(e).split()) if not isinstance(e, OSError) else _os_text(e)
            if sys.stderr.isatty():
                click.echo(f"ERRO[0000] {text}", err=True)
            else:
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                click.echo(f'time="{now}" level=error msg={json.dumps(text)}', err=True)
            sys.exit(1)


def _os_text(e: OSError) -> str:
    msg = (e.strerror or str(e)).lower()
    return f"{e.filename}: {msg}" if e.filename else msg


@contextmanager
def _runc(ctx: click.Context, world: str) -> Iterator[Runc]:
    with world_session(world) as w:
        yield Runc(w.fs, w.meta, root=ctx.obj["root"])


@click.group("runc", cls=RuncGroup)
@click.option("--root", default=RUNC_ROOT, show_default=True, help="Root of container state.")
@click.pass_context
def runc(ctx: click.Context, root: str) -> None:
    """runc on the simulated machine: spec, create, start, run, list, state, kill, delete.

    Container state lives in the world under --root. A bundle (--bundle, default the
    current directory) is taken from the world when that directory exists there; otherwise
    it is read from the real disk and imported into the world at the same path, where it
    stays (so the rootfs the container changes is the world's copy, not the disk's).

    \b
    Example (the runc README's flow; `image bundle` writes rootfs/ and config.json):
      overlaysim image bundle busybox.tar -o mycontainer && cd mycontainer
      # in config.json set "terminal": false and "args": ["sleep", "1d"], then:
      overlaysim runc run -d mycontainer
      overlaysim runc list
      overlaysim runc kill mycontainer KILL && overlaysim runc delete mycontainer
    """
    ctx.obj = {"root": root}


@runc.command("spec")
@click.option("-b", "--bundle", default=".", help="Where to write config.json (real disk).")
@click.option("--rootless", is_flag=True, help="A spec for a rootless container.")
@click.option(
    "--runc-version",
    type=click.Choice(["1.1", "1.2", "1.3", "1.4", "1.5"]),
    default="1.4",
    show_default=True,
    help="Which runc's `runc spec` to imitate (ociVersion, capability sets).",
)
def spec_cmd(bundle: str, rootless: bool, runc_version: str) -> None:
    """Write a new config.json exactly as `runc spec` does (on the real disk).

    \b
    Example:
      overlaysim runc spec && jq .process.args config.json
    """
    write_spec(bundle, spec(runc_version, rootless, os.geteuid(), os.getegid()))


spec_cmd.name = "spec"


@runc.command("create")
@click.argument("container_id")
@click.option("-b", "--bundle", default=".", help="Bundle directory (default: cwd).")
@world_option
@click.pass_context
def create(ctx: click.Context, container_id: str, bundle: str, world: str) -> None:
    """Create a container: its init waits until `runc start` (status "created").

    \b
    Example:
      overlaysim runc create --bundle ./bundle c1 && overlaysim runc start c1
    """
    with _runc(ctx, world) as r:
        path, data, _ = locate_bundle(r.fs, bundle)
        r.create(container_id, path, data, detach=True)


@runc.command("start")
@click.argument("container_id")
@world_option
@click.pass_context
def start(ctx: click.Context, container_id: str, world: str) -> None:
    """Start a created container (a process that finishes runs now, its output here).

    \b
    Example:
      overlaysim runc start c1
    """
    with _runc(ctx, world) as r:
        code = r.start(container_id, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)
    if code:
        sys.exit(code)


@runc.command("run")
@click.argument("container_id")
@click.option("-b", "--bundle", default=".", help="Bundle directory (default: cwd).")
@click.option("-d", "--detach", is_flag=True, help="Detach from the container's process.")
@click.option("--keep", is_flag=True, help="Do not delete the container after it exits.")
@world_option
@click.pass_context
def run(
    ctx: click.Context, container_id: str, bundle: str, detach: bool, keep: bool, world: str
) -> None:
    """Create and run a container from a bundle.

    \b
    Example:
      cd bundle && overlaysim runc run -d mycontainer
    """
    from overlaysim.docker.terminal import container_stdin

    stdin, lines = container_stdin(not detach)
    with _runc(ctx, world) as r:
        path, data, _ = locate_bundle(r.fs, bundle)
        r.create(container_id, path, data, detach=detach)
        if detach:
            code = r.start(container_id, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer) or 0
        else:
            code = r.run_foreground(
                container_id,
                stdout=sys.stdout.buffer,
                stderr=sys.stderr.buffer,
                stdin=stdin,
                lines=lines,
                keep=keep,
            )
    if code:
        sys.exit(code)


@runc.command("exec", context_settings={"allow_interspersed_args": False})
@click.argument("container_id")
@click.argument("command", nargs=-1, required=True)
@world_option
@click.pass_context
def exec_cmd(ctx: click.Context, container_id: str, command: tuple[str, ...], world: str) -> None:
    """Execute a new process inside a running container.

    \b
    Example:
      overlaysim runc exec mycontainer ls /
    """
    from overlaysim.runtime.process import NotFound, check_executable, run_in_root

    with _runc(ctx, world) as r:
        c = r.load(container_id)
        if c.status not in ("running", "created"):
            raise RuntimeStateError("cannot exec in a stopped container")
        try:
            check_executable(list(command), r.fs, c.rootfs)
        except NotFound as e:
            raise RuntimeStateError(
                f"exec failed: unable to start container process: {e}"
            ) from None
        cfg = r.config(container_id)
        code = run_in_root(
            r.fs,
            c.rootfs,
            list(command),
            stdout=sys.stdout.buffer,
            stderr=sys.stderr.buffer,
            env=list((cfg.get("process") or {}).get("env") or []),
            readonly=bool((cfg.get("config") or {}).get("readonlyfs")),
        )
    if code:
        sys.exit(code)


exec_cmd.name = "exec"


@runc.command("list")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("-q", "--quiet", is_flag=True, help="Display only container IDs.")
@world_option
@click.pass_context
def list_cmd(ctx: click.Context, fmt: str, quiet: bool, world: str) -> None:
    """List containers started by runc with the given root.

    \b
    Example:
      overlaysim runc list
      overlaysim runc --root /run/docker/runtime-runc/moby list   # Docker's containers
    """
    with _runc(ctx, world) as r:
        rows, errors = r.list()
    for e in errors:
        click.echo(e, err=True)
    if quiet:
        for c in rows:
            click.echo(c.id)
    elif fmt == "json":
        click.echo(json.dumps([c.to_json() for c in rows], separators=(",", ":")))
    else:
        table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        table += [[c.id, str(c.pid), c.status, c.bundle, c.created, c.owner] for c in rows]
        click.echo(tabwrite(table, 12, 3), nl=False)


list_cmd.name = "list"


@runc.command("state")
@click.argument("container_id")
@world_option
@click.pass_context
def state(ctx: click.Context, container_id: str, world: str) -> None:
    """Output the state of a container (JSON).

    \b
    Example:
      overlaysim runc state mycontainer
    """
    with _runc(ctx, world) as r:
        c = r.load(container_id)
    click.echo(json.dumps(c.to_json(), indent="  "))


@runc.command("kill")
@click.argument("container_id")
@click.argument("signal", default="SIGTERM")
@world_option
@click.pass_context
def kill(ctx: click.Context, container_id: str, signal: str, world: str) -> None:
    """Send a signal (default SIGTERM) to the container's init process.

    An init without a handler (sh, sleep) ignores SIGTERM, as on Linux; use KILL.

    \b
    Example:
      overlaysim runc kill mycontainer KILL
    """
    with _runc(ctx, world) as r:
        r.kill(container_id, signal)


@runc.command("delete")
@click.argument("container_id")
@click.option("-f", "--force", is_flag=True, help="Kill the container first if it is running.")
@world_option
@click.pass_context
def delete(ctx: click.Context, container_id: str, force: bool, world: str) -> None:
    """Delete a stopped container's state.

    \b
    Example:
      overlaysim runc delete mycontainer
    """
    with _runc(ctx, world) as r:
        r.delete(container_id, force)
