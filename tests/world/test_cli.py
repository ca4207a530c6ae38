"""``overlaysim world info|reset`` and ``--world`` through click and through a real process."""

from __future__ import annotations

import json
import os
import subprocess

import click
import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.world_opt import world_option, world_session
from overlaysim.world import SCHEMA, load_world, save_world
from tests.world.helpers import build_rich, read_bytes
from tests.world.test_roundtrip import REPO

EXE = os.path.join(REPO, ".venv", "bin", "overlaysim")


@pytest.fixture
def path(tmp_path: object) -> str:
    return os.path.join(str(tmp_path), "cli.world")


def test_info_json_via_click(path: str) -> None:
    save_world(build_rich(), path)
    result = CliRunner().invoke(main, ["world", "info", "--json", "--world", path])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["path"] == os.path.abspath(path) and facts["exists"] is True
    assert facts["schema"] == SCHEMA and facts["seed"] == 42
    assert facts["size"] == os.path.getsize(path)
    assert facts["inodes"] >= 45
    assert "overlay /merged overlay rw,relatime,lowerdir=/l2:/l1,upperdir=/u,workdir=/w," \
           "uuid=on 0 0" in facts["mounts"]  # fmt: skip
    assert facts["meta_keys"] == ["component", "names"]


def test_info_reads_the_environment_and_creates_nothing(path: str) -> None:
    result = CliRunner().invoke(main, ["world", "info", "--json"], env={"OVERLAYSIM_WORLD": path})
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["exists"] is False and facts["path"] == os.path.abspath(path)
    assert not os.path.exists(path)


def test_default_is_in_the_current_directory(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("OVERLAYSIM_WORLD", raising=False)
    result = runner.invoke(main, ["world", "reset", "--seed", "9"])
    assert result.exit_code == 0, result.output
    assert load_world(os.path.join(str(tmp_path), "overlaysim.world")).seed == 9
    help_text = runner.invoke(main, ["world", "info", "--help"]).output
    assert "OVERLAYSIM_WORLD" in help_text and "./overlaysim.world" in help_text


def test_info_json_via_a_real_process(path: str) -> None:
    save_world(build_rich(), path)
    out = subprocess.run([EXE, "world", "info", "--json"], capture_output=True, text=True,
                         env={**os.environ, "OVERLAYSIM_WORLD": path}, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    assert facts["seed"] == 42 and facts["path"] == os.path.abspath(path)
    assert len(facts["mounts"]) == 7


def test_corrupt_world_is_one_line_and_exit_1(path: str) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(4096))
    before = read_bytes(path)
    for args in (["world", "info"], ["world", "info", "--json"], ["world", "reset"]):
        out = subprocess.run([EXE, *args, "--world", path], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
        assert out.returncode == 1
        assert out.stdout == ""
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("overlaysim: error: ")
        assert path in lines[0] and "not an overlaysim world" in lines[0]
    assert read_bytes(path) == before


def test_reset_force_replaces_a_broken_file(path: str) -> None:
    with open(path, "wb") as f:
        f.write(b"garbage" * 100)
    result = CliRunner().invoke(main, ["world", "reset", "--force", "--world", path])
    assert result.exit_code == 0, result.output
    assert load_world(path).fs.os.listdir("/root") == []


def test_reset_starts_over(path: str) -> None:
    save_world(build_rich(), path)
    result = CliRunner().invoke(main, ["world", "reset", "--seed", "3", "--world", path])
    assert result.exit_code == 0, result.output
    w = load_world(path)
    assert w.seed == 3 and w.meta == {} and not w.fs.os.path.exists("/merged")


def test_world_session_for_other_commands(path: str) -> None:
    """How a command of another group uses the option and the session."""

    @click.command()
    @world_option
    @click.argument("name")
    @click.option("--fail", is_flag=True)
    def mk(world: str, name: str, fail: bool) -> None:
        with world_session(world) as w:
            w.fs.os.mkdir(f"/root/{name}")
            if fail:
                raise click.ClickException("refused")

    runner = CliRunner()
    assert runner.invoke(mk, ["one", "--world", path]).exit_code == 0
    assert runner.invoke(mk, ["two", "--world", path, "--fail"]).exit_code == 1
    assert runner.invoke(mk, ["three"], env={"OVERLAYSIM_WORLD": path}).exit_code == 0
    assert sorted(load_world(path).fs.os.listdir("/root")) == ["one", "three"]
