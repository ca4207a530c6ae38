"""``overlaysim sh [-c CMD]``: a root shell on the saved simulated machine.

Commands run on the world's HostFS through ``overlaysim.shell`` (ls, cat, mount, getfattr...);
the world is saved after the session, whatever the exit status of the last command, because
a failing command still leaves its earlier effects on the machine, as on a real one.
"""

from __future__ import annotations

import sys

import click

from overlaysim.cli.world_opt import world_option, world_session
from overlaysim.shell.context import id_names
from overlaysim.shell.executor import Shell


def _interactive(shell: Shell) -> int:
    """Read and run one line at a time, with a ``# `` prompt, until EOF or ``exit``."""
    status = 0
    while not shell.exited:
        sys.stderr.write("# ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            sys.stderr.write("\n")
            break
        status = shell.run(line)
    return status


@click.command("sh")
@click.option("-c", "command", metavar="CMD", help="Run CMD and exit with its status.")
@click.option("--explain", is_flag=True,
              help="After each command, the overlay decisions it caused (on stderr).")
@click.option("--json", "as_json", is_flag=True, help="With --explain: one JSON line each.")
@world_option
def sh(command: str | None, world: str, explain: bool = False, as_json: bool = False) -> None:
    """A shell over the simulated machine (root, cwd /).

    Without -c, commands are read from standard input (with a prompt on a terminal).
    Compound commands (if/for/while) are not supported; pipes, ;, &&, ||, $?, $(...),
    globs and the redirections >, >>, <, 2>&1 are.

    Example: overlaysim sh -c 'mkdir -p /l/etc && echo hi > /l/etc/motd && ls -la /l/etc'
    """
    with world_session(world) as w:
        fs = w.fs
        shell = Shell(
            fs.os, mounts=fs.mounts, mount=fs.mount, umount=fs.umount,
            stdout=sys.stdout.buffer, stderr=sys.stderr.buffer, cwd="/",
            passwd=id_names(fs.os, "/etc/passwd") or None,
            group=id_names(fs.os, "/etc/group") or None,
            clock=lambda: fs.clock() / 1e9,
        )  # fmt: skip
        from overlaysim.explain.live import Watcher
        from overlaysim.world.eventlog import sink

        # each command's events go to the world's event log; --explain also prints them
        out = sys.stderr if explain or as_json else None
        shell.after_command = Watcher(fs.events, out, as_json, sink=sink(fs, "sh")).after_command
        if command is not None:
            status = shell.run(command)
        elif sys.stdin.isatty():
            status = _interactive(shell)
        else:
            status = shell.run(sys.stdin.read())
    sys.stdout.flush()
    sys.exit(status)
