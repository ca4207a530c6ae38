"""Every ``overlaysim ... --help`` shows only paths a user has: no example path of the
development machine (the checkout, /work, a home directory, pytest's temporary dirs).

The command tree is walked at test time, so commands added later are covered too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import overlaysim
from overlaysim.cli import main

#: paths that exist only on the machine the simulator was written on
DEV_PATHS = [r"/work\b", r"/root\b", r"/tmp/pytest", r"pytest-of-", r"/home/[\w.-]+", r"/Users/",
             r"site-packages", r"\.venv\b", r"/shared/fixtures"]  # fmt: skip


def _local_paths() -> list[str]:
    """This checkout and this user's home, whatever they are where the test runs."""
    out = [re.escape(str(Path(overlaysim.__file__).resolve().parents[1]))]
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        out.append(re.escape(home) + r"\b")
    return out


def _commands(cmd: click.Command, path: list[str]) -> Iterator[tuple[list[str], str]]:
    ctx = click.Context(cmd, info_name=" ".join(path))
    yield path, cmd.get_help(ctx)
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, [*path, name])


ALL = list(_commands(main, ["overlaysim"]))


def test_the_walk_finds_the_command_tree() -> None:
    names = {" ".join(p[1:]) for p, _ in ALL}
    assert {"docker load", "docker run", "runc create", "tour", "world reset"} <= names


@pytest.mark.parametrize(("path", "text"), ALL, ids=[" ".join(p[1:]) or "main" for p, _ in ALL])
def test_help_mentions_no_development_path(path: list[str], text: str) -> None:
    bad = re.compile("|".join(DEV_PATHS + _local_paths()))
    found = [line.strip() for line in text.splitlines() if bad.search(line)]
    assert not found, f"`{' '.join(path)} --help` shows a development-machine path: {found}"


def test_help_flag_prints_the_same_text() -> None:
    """``--help`` as a user types it: exit 0 and the text the walk checked."""
    r = CliRunner().invoke(main, ["docker", "load", "--help"])
    assert r.exit_code == 0
    assert "overlaysim image demo -o demo.tar && overlaysim docker load -i demo.tar" in r.output
