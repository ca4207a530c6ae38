"""``overlaysim docker``: the docker CLI over the simulated daemon of the saved world.

Each command is one request to a daemon that remembers (``overlaysim.docker.Daemon``): its
state is read from ``/var/lib/docker`` inside the world and saved with it. Arguments, output
and exit codes follow the real CLI (``Error response from daemon: …``, exit 1; ``docker run``
exits 125 when the daemon refuses, else with the container's status). This module holds the
group and the container commands; the image commands are in ``docker_images``.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from typing import Any

import click

from overlaysim.cli import docker_images
from overlaysim.cli.docker_common import (
    NO_INTERSPERSED,
    DockerGroup,
    daemon_session,
    each_container,
    exit_with,
    listing,
)
from overlaysim.cli.world_opt import world_option
from overlaysim.docker import inspect as insp
from overlaysim.docker import listfmt, network, render, sysinfo, terminal, versions
from overlaysim.docker.daemon import Daemon
from overlaysim.errors import DaemonError
from overlaysim.image.gojson import dumps_indent


def _speak_as(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Choose the Docker version for this invocation (see ``overlaysim.docker.versions``)."""
    try:
        versions.use(value)
    except versions.UnknownDockerVersion as e:
        raise click.BadParameter(str(e), ctx, param) from None
    return value


@click.group("docker", cls=DockerGroup)
@click.option(
    "--docker-version",
    envvar=versions.ENV,
    default=None,
    metavar="VERSION",
    expose_value=False,
    is_eager=True,
    callback=_speak_as,
    help=f"Speak as this Docker release: 28 (the default) or 20.10; also ${versions.ENV}.",
)
def docker() -> None:
    """The docker CLI on the simulated machine (Docker 28 or 20.10, overlay2 graphdriver).

    \b
    Example:
      overlaysim docker load -i busybox.tar
      overlaysim docker run -d --name web busybox sleep infinity
      overlaysim docker exec web touch /tmp/foo
      overlaysim docker inspect -f '{{.GraphDriver.Data.UpperDir}}' web
    """


for _command in docker_images.COMMANDS:
    docker.add_command(_command)


# --- containers -----------------------------------------------------------------------------------
_create_options = [
    click.option("--name", default=None, help="Assign a name to the container."),
    click.option("-e", "--env", multiple=True, help="Set environment variables."),
    click.option("-w", "--workdir", default=None, help="Working directory inside the container."),
    click.option("-u", "--user", default=None, help="Username or UID (format: uid[:gid])."),
    click.option("-h", "--hostname", default=None, help="Container host name."),
    click.option("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT."),
    click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
    click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
    click.option(
        "--network",
        "--net",
        "network",
        default=None,
        help="Connect to a network: bridge (default), host, none, container:NAME.",
    ),
]


def _create_opts(f: Any) -> Any:
    for opt in reversed(_create_options):
        f = opt(f)
    return f


def _network_mode(value: str | None, command: str) -> str:
    """``--network ""`` is refused by the CLI itself (its own words, exit 125)."""
    try:
        return network.check_option(value)
    except DaemonError as e:
        path = click.get_current_context().command_path.partition(" ")[2]  # "docker run"
        click.echo(f"docker: {e}.\nSee '{path or command} --help'.", err=True)
        sys.exit(125)


def _create(d: Daemon, image: str, command: tuple[str, ...], attach: bool, **kw: Any) -> Any:
    return d.create(
        image,
        list(command) or None,
        name=kw["name"],
        entrypoint=kw["entrypoint"],
        env=list(kw["env"]),
        workdir=kw["workdir"],
        user=kw["user"],
        hostname=kw["hostname"],
        tty=kw["tty"],
        interactive=kw["interactive"],
        attach=attach,
        auto_remove=kw.get("rm", False),
        network_mode=kw["network_mode"],
    )


@docker.command("create", context_settings=NO_INTERSPERSED)
@click.argument("image")
@click.argument("command", nargs=-1)
@_create_opts
@world_option
def create(image: str, command: tuple[str, ...], world: str, **kw: Any) -> None:
    """Create a new container (its -init and read-write layers) without starting it.

    \b
    Example:
      overlaysim docker create --name c1 busybox sleep infinity
    """
    kw["network_mode"] = _network_mode(kw["network"], "create")
    with daemon_session(world) as d:
        # the docker client attaches stdout and stderr unless detached (create has no -d)
        c = _create(d, image, command, True, **kw)
    click.echo(c.id)


@docker.command("run", context_settings=NO_INTERSPERSED)
@click.argument("image")
@click.argument("command", nargs=-1)
@_create_opts
@click.option("-d", "--detach", is_flag=True, help="Run in the background, print the ID.")
@click.option("--rm", is_flag=True, help="Remove the container when it exits.")
@world_option
def run(image: str, command: tuple[str, ...], detach: bool, world: str, **kw: Any) -> None:
    """Create and start a container; without -d the command runs now, attached.

    \b
    Example:
      overlaysim docker run --rm busybox sh -c 'echo hi > /tmp/x; cat /tmp/x'
      overlaysim docker run -d --name web busybox sleep infinity
    """
    kw["network_mode"] = _network_mode(kw["network"], "run")
    stdin, lines = terminal.container_stdin(kw["interactive"] and not detach)
    refused: network.NetworkNotFound | None = None
    with daemon_session(world) as d:
        c = _create(d, image, command, not detach, **kw)
        try:
            if detach:
                d.start(c.id)
                code: int | None = 0
            else:
                code = d.run_attached(
                    c, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer, stdin=stdin, lines=lines
                )
        except network.NetworkNotFound as e:
            refused, code = e, 125
            if kw["rm"]:
                d.rm(c.id, force=True)
    if detach:
        click.echo(c.id)  # the CLI prints the ID as soon as the container is created
    if refused is not None:
        # dockerd 20.10.24: the container stays "created" (removed with --rm), exit 125
        click.echo(f"docker: Error response from daemon: {refused}.", err=True)
        sys.exit(125)
    if not detach and code is None:
        click.echo(
            f"overlaysim: {' '.join(c.argv)!r} never ends by itself: container {c.name} keeps "
            "running (stop it with: overlaysim docker stop " + c.name + ")",
            err=True,
        )
    exit_with(code or 0)


@docker.command("start")
@click.argument("containers", nargs=-1, required=True)
@world_option
def start(containers: tuple[str, ...], world: str) -> None:
    """Start one or more stopped containers (the rootfs is mounted at .../merged).

    \b
    Example:
      overlaysim docker start web
    """
    each_container(containers, world, lambda d, name: d.start(name), summary="start")


@docker.command("exec", context_settings=NO_INTERSPERSED)
@click.argument("container")
@click.argument("command", nargs=-1, required=True)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open (read it).")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY (no effect here).")
@click.option("-u", "--user", default=None, help="Username or UID (format: uid[:gid]).")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container.")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("--explain", is_flag=True,
              help="overlaysim: after the command, the overlay decisions it caused (on stderr).")
@world_option
def exec_(
    container: str,
    command: tuple[str, ...],
    interactive: bool,
    tty: bool,
    user: str | None,
    workdir: str | None,
    env: tuple[str, ...],
    world: str,
    explain: bool = False,
) -> None:
    """Run a command in a running container (the overlaysim shell, chrooted to merged/).

    \b
    Example:
      overlaysim docker exec web touch /tmp/foo
      overlaysim docker exec web sh -c 'ls -la /tmp; mount'
    """
    stdin, lines = terminal.container_stdin(interactive)
    with daemon_session(world) as d:
        from overlaysim.explain.live import Watcher
        from overlaysim.world.eventlog import sink

        # the world's event log takes this command's events; --explain also prints them
        watcher = Watcher(d.fs.events, sys.stderr if explain else None, relative=True,
                          sink=sink(d.fs, "docker exec"))  # fmt: skip
        code = d.exec(
            container,
            list(command),
            stdout=sys.stdout.buffer,
            stderr=sys.stderr.buffer,
            stdin=stdin,
            lines=lines,
            user=user,
            workdir=workdir,
            env=list(env),
        )
        watcher.report(shlex.join(command), code)
    exit_with(code)


exec_.name = "exec"


@docker.command("stop")
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--timeout", type=int, default=10, show_default=True, help="Seconds to wait.")
@click.option("-s", "--signal", "sig", default=None, help="Signal to send (default SIGTERM).")
@world_option
def stop(containers: tuple[str, ...], timeout: int, sig: str | None, world: str) -> None:
    """Stop running containers (SIGTERM, then SIGKILL after the timeout); merged/ goes away.

    \b
    Example:
      overlaysim docker stop web
    """
    each_container(containers, world, lambda d, name: d.stop(name, timeout, sig))


@docker.command("kill")
@click.argument("containers", nargs=-1, required=True)
@click.option("-s", "--signal", "sig", default="KILL", show_default=True, help="Signal to send.")
@world_option
def kill(containers: tuple[str, ...], sig: str, world: str) -> None:
    """Send a signal to the main process of running containers.

    \b
    Example:
      overlaysim docker kill web
    """
    each_container(containers, world, lambda d, name: d.kill(name, sig), missing="kill")


@docker.command("rm")
@click.argument("containers", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container.")
@world_option
def rm(containers: tuple[str, ...], force: bool, world: str) -> None:
    """Remove containers: their -init and read-write layer directories go away.

    \b
    Example:
      overlaysim docker rm web
    """
    each_container(containers, world, lambda d, name: d.rm(name, force), missing="client",
                   missing_ok=force)  # fmt: skip


@docker.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option(
    "--format", "fmt", default=None,
    help="Pretty-print with a Go template ('table ...' for a header), or 'json'.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@world_option
def ps(
    all_: bool, quiet: bool, size: bool, no_trunc: bool, fmt: str | None, as_json: bool, world: str
) -> None:
    """List containers.

    \b
    Example:
      overlaysim docker ps -a
      overlaysim docker ps --format '{{.Names}}\t{{.Status}}\t{{.Size}}'
    """
    if fmt and fmt not in ("table", "raw", "json"):
        zero = render.container_row_zero()
        listfmt.validate(fmt, zero)
    with daemon_session(world) as d:
        now = d.now()
        rows = [
            render.container_row(c, now, no_trunc, functools.partial(_size, d, c))
            for c in d.ps(all_)
        ]
        # rendered while the daemon is at hand: sizes are computed only if the format asks
        listing(listfmt.CONTAINERS, rows, fmt, quiet, as_json, size=size)


def _size(d: Daemon, c: Any) -> str:
    from overlaysim.docker.imageops import image_size

    return render.container_size(d.layers.rw_size(c.id), image_size(d, c.image_id))


@docker.command("diff")
@click.argument("container")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (Kind 0=C 1=A 2=D).")
@world_option
def diff(container: str, as_json: bool, world: str) -> None:
    """Changes in a container's filesystem against its image (A added, C changed, D deleted).

    \b
    Example:
      overlaysim docker diff web
    """
    with daemon_session(world) as d:
        changes = d.diff(container)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in changes], indent=2))
        return
    for ch in changes:
        click.echo(str(ch))


@docker.command("export")
@click.argument("container")
@click.option("-o", "--output", default=None, help="Write to a file (real disk), not stdout.")
@world_option
def export(container: str, output: str | None, world: str) -> None:
    """Export a container's filesystem (its merged view) as a tar archive.

    \b
    Example (a runc bundle's rootfs, as in runc's README):
      mkdir rootfs && overlaysim docker export $(overlaysim docker create busybox) \\
        | tar -C rootfs -xf -
    """
    with daemon_session(world) as d, terminal.output_file(output) as f:
        d.export(container, f)


@docker.command("logs")
@click.argument("container")
@world_option
def logs(container: str, world: str) -> None:
    """Show what a container's main process printed (the json-file log).

    \b
    Example:
      overlaysim docker logs web
    """
    with daemon_session(world) as d:
        lines = d.logs(container)
    for stream, text in lines:
        click.echo(text, nl=False, err=stream == "stderr")


def _inspect(names: tuple[str, ...], fmt: str | None, world: str, kind: str | None) -> None:
    """What the three inspect commands do (``kind`` None: a container, else an image)."""
    tmpl = None
    if fmt:
        try:
            tmpl = render.parse_template(fmt)
        except render.TemplateParseError as e:
            click.echo(f"template parsing error: {e}", err=True)
            sys.exit(64)
    docs, errors, out = [], [], []
    with daemon_session(world) as d:
        for name in names:
            try:
                docs.append(insp.any_object(d, name, kind))
            except insp.NoSuchObject as e:
                if e.daemon is None or d.version.cli_wraps_not_found:
                    errors.append(f"Error: {e}")
                else:
                    errors.append(DockerGroup.prefix + e.daemon)
            except DaemonError as e:
                errors.append(DockerGroup.prefix + str(e))
    if tmpl is not None:
        for doc in docs:
            try:
                out.append(render.go_template(tmpl, doc) + "\n")
            except render.TemplateError as e:
                errors.append(str(e))
        click.echo("".join(out) or "\n", nl=False)  # nothing to show: the CLI prints "\n"
    else:
        click.echo(dumps_indent(docs, "    ") if docs else "[]")
    for msg in errors:
        click.echo(msg, err=True)
    exit_with(1 if errors else 0)


_FORMAT = click.option("-f", "--format", "fmt", default=None, help="Format with a Go template.")


@docker.command("inspect")
@click.argument("names", nargs=-1, required=True)
@_FORMAT
@click.option("--type", "kind", type=click.Choice(["container", "image"]), default=None)
@world_option
def inspect(names: tuple[str, ...], fmt: str | None, kind: str | None, world: str) -> None:
    """Low-level information on containers or images (JSON with GraphDriver data).

    \b
    Example:
      overlaysim docker inspect web
      overlaysim docker inspect -f '{{.GraphDriver.Data.MergedDir}}' web
    """
    _inspect(names, fmt, world, kind)


def _inspect_of(kind: str) -> click.Command:
    """``docker image inspect`` / ``docker container inspect``: ``inspect --type KIND``."""

    @click.command("inspect", help=f"Low-level information on one or more {kind}s.")
    @click.argument("names", nargs=-1, required=True)
    @_FORMAT
    @world_option
    def inspect_kind(names: tuple[str, ...], fmt: str | None, world: str) -> None:
        _inspect(names, fmt, world, kind)

    return inspect_kind


@docker.command("info")
@click.option("--format", "fmt", default=None, help="'json' for the API's JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@world_option
def info(fmt: str | None, as_json: bool, world: str) -> None:
    """System-wide information (the overlay2 storage driver lines).

    \b
    Example:
      overlaysim docker info
    """
    with daemon_session(world) as d:
        data = insp.info(d)
    if as_json or fmt == "json":
        click.echo(json.dumps(data, indent=None if fmt == "json" else 2))
    else:
        click.echo(insp.info_text(data))


@docker.command("version")
def version() -> None:
    """Client and server versions of the Docker release spoken (see --docker-version).

    \b
    Example:
      overlaysim docker --docker-version 20.10 version
    """
    click.echo(sysinfo.version_text(versions.current()))


# --- management commands: the same command objects under `docker image` / `docker container` ---
@docker.group("image", cls=DockerGroup)
def image_group() -> None:
    """Manage images: inspect, ls, history, rm, save, load, tag (as docker image ...)."""


@docker.group("container", cls=DockerGroup)
def container_group() -> None:
    """Manage containers: inspect, ls, rm, start, stop, create, run, exec, diff, export,
    commit, logs, kill (as docker container ...)."""


for _name, _cmd in (
    ("inspect", _inspect_of("image")),
    ("ls", docker_images.images),
    ("history", docker_images.history),
    ("rm", docker_images.rmi),
    ("save", docker_images.save),
    ("load", docker_images.load),
    ("tag", docker_images.tag),
):
    image_group.add_command(_cmd, _name)

for _name, _cmd in (
    ("inspect", _inspect_of("container")),
    ("ls", ps),
    ("rm", rm),
    ("start", start),
    ("stop", stop),
    ("create", create),
    ("run", run),
    ("exec", exec_),
    ("diff", diff),
    ("export", export),
    ("commit", docker_images.commit),
    ("logs", logs),
    ("kill", kill),
):
    container_group.add_command(_cmd, _name)

# `docker mount NAME DIR` (ours): a container's merged view mounted for real (FUSE), in cli/mount.py
from overlaysim.cli.mount import docker_mount  # noqa: E402

docker.add_command(docker_mount)
