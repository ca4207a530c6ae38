"""Fixtures for the docker/runc/skopeo commands: the embedded demo image archive
(``overlaysim.demo_image``), a fresh world per test, and helpers to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.demo_image import write_demo_archive

FIXTURES = Path(os.environ.get("OVERLAYSIM_FIXTURES", "/work/shared/fixtures"))


def fixture_path(rel: str) -> str:
    p = FIXTURES / rel
    if not p.exists():
        pytest.skip(f"fixture {rel} not found under {FIXTURES} (set OVERLAYSIM_FIXTURES)")
    return str(p)


@pytest.fixture(scope="session")
def demo_tar(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("demo") / "demo.tar"
    with open(path, "wb") as f:
        write_demo_archive(f)
    return str(path)


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes = b""  # stdout as bytes (archives written to stdout)


@pytest.fixture
def world(tmp_path: Path) -> str:
    return str(tmp_path / "test.world")


@pytest.fixture
def cli(world: str) -> Callable[..., Result]:
    """Run ``overlaysim ARGS...`` in-process (click's CliRunner) on this test's world."""

    def run(*args: str, input: bytes | None = None) -> Result:
        runner = CliRunner(env={"OVERLAYSIM_WORLD": world})
        r = runner.invoke(main, list(args), input=input)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r.exit_code, r.stdout, r.stderr, r.stdout_bytes)

    return run


@pytest.fixture
def proc(world: str, tmp_path: Path) -> Callable[..., Result]:
    """Run the installed ``overlaysim`` as a real subprocess (cwd = tmp_path)."""
    exe = Path(sys.executable).with_name("overlaysim")
    if not exe.exists():
        pytest.skip(f"{exe} is not installed (pip install -e .)")

    def run(*args: str) -> Result:
        env = dict(os.environ, OVERLAYSIM_WORLD=world, LC_ALL="C.UTF-8")
        r = subprocess.run(
            [str(exe), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )
        return Result(r.returncode, r.stdout, r.stderr)

    return run


@pytest.fixture
def as_dockerd_20_10(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated machine speaks as the judge the expected values came from (the real
    dockerd 20.10.24 here; the default is 28): ``pytestmark = usefixtures(...)``."""
    monkeypatch.setenv("OVERLAYSIM_DOCKER_VERSION", "20.10")


@pytest.fixture
def dive(cli: Callable[..., Result]) -> Callable[..., Result]:
    """The dive fixture image loaded (modules that also need a container override this)."""
    assert cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar")).code == 0
    return cli
