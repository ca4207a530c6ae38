"""Fixtures for the docker/runc/skopeo commands: a demo image archive built from
``overlaysim.demo_layers``, a fresh world per test, and helpers to run the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from overlaysim import HostFS
from overlaysim.cli import main
from overlaysim.demo_layers import build_app, build_base
from overlaysim.image import digest as dg
from overlaysim.image.export import layer_tar
from overlaysim.image.gojson import dumps, sorted_map
from overlaysim.image.model import ImageRef, LayerRef
from overlaysim.image.save import save_v25

FIXTURES = Path(os.environ.get("OVERLAYSIM_FIXTURES", "/work/shared/fixtures"))
CREATED = "2023-06-01T00:00:00Z"  # before the world clock's start (2024-01-01)


def fixture_path(rel: str) -> str:
    p = FIXTURES / rel
    if not p.exists():
        pytest.skip(f"fixture {rel} not found under {FIXTURES} (set OVERLAYSIM_FIXTURES)")
    return str(p)


def demo_image(tag: str = "demo:latest") -> tuple[ImageRef, list[bytes]]:
    """The embedded base + app layers as an image (2 layers, Cmd /bin/sh)."""
    fs = HostFS()
    build_base(fs.os, "/l0")
    build_app(fs.os, "/l1")
    tars = []
    for d in ("/l0", "/l1"):
        buf = io.BytesIO()
        layer_tar(fs.os, d, buf)
        tars.append(buf.getvalue())
    diff_ids = [dg.sha256(t) for t in tars]
    cfg: dict[str, Any] = {
        "architecture": "amd64",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
        },
        "created": CREATED,
        "history": [
            {"created": CREATED, "created_by": "ADD base /"},
            {"created": CREATED, "created_by": "ADD app /"},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    raw = dumps(sorted_map(cfg)).encode()
    layers = [LayerRef(i, f"l{i}", d) for i, d in enumerate(diff_ids)]
    return ImageRef("test", "config", raw, cfg, dg.image_id(raw), layers, [tag]), tars


@pytest.fixture(scope="session")
def demo_tar(tmp_path_factory: pytest.TempPathFactory) -> str:
    im, tars = demo_image()
    path = tmp_path_factory.mktemp("demo") / "demo.tar"
    with open(path, "wb") as f:
        save_v25([im], lambda _im, i: tars[i], f)
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
