"""Running `overlaysim` commands on a world file in-process, as the CLI tests of several rooms
(explain, world, report, procfs, clock) do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from overlaysim.cli import main
from overlaysim.cli.world_opt import ENVVAR
from overlaysim.demo_image import write_demo_archive


def cli(world: str, *args: str, check: bool = True) -> Result:
    """``overlaysim ARGS`` on ``world``; an exception inside the command is raised as itself
    (not hidden in the result), and with ``check`` a non-zero exit fails the test."""
    r = CliRunner(env={ENVVAR: world}).invoke(main, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    if check:
        assert r.exit_code == 0, r.output
    return r


def demo_web(tmp_path: Path) -> Callable[..., str]:
    """A world in ``tmp_path`` with the embedded demo image loaded and container ``web``
    running; returns ``run(*args)``, the stdout of a command that must succeed there."""
    world = str(tmp_path / "w.world")
    archive = tmp_path / "demo.tar"
    with open(archive, "wb") as f:
        write_demo_archive(f)

    def run(*args: str) -> str:
        return cli(world, *args).stdout

    run("docker", "load", "-i", str(archive))
    run("docker", "run", "-d", "--name", "web", "demo", "sleep", "infinity")
    return run
