"""The two machines a scenario runs on, behind one interface: a real dockerd and the simulator.

A side runs docker CLI commands (argv after ``docker``) and opens its data root through an
os-like module, so one observer reads ``/var/lib/docker`` of both: the real directory through
``os``, the simulated one through the world's ``HostFS.os``. Commands on the simulated side go
through ``overlaysim docker`` in-process (click's runner), one world-file transaction each, as
a user typing them would.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol

from overlaysim.testing.dockerd.daemon import RealDockerd

#: Seconds a real command may take before the scenario fails (a hung ``run`` is a finding).
TIMEOUT = 120.0


@dataclass(frozen=True)
class Result:
    code: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def error(self) -> str:
        return self.err.decode("utf-8", "replace")


@dataclass(frozen=True)
class View:
    """A side's data root as read now: an os-like module, the root path, and the mount table
    as (target, fstype, options)."""

    o: Any
    root: str
    mounts: list[tuple[str, str, str]]
    shown: str = ""  # the root as the side's own outputs print it (default: ``root``)


class Side(Protocol):
    name: str

    def docker(self, *args: str, stdin: bytes | None = None) -> Result: ...

    def view(self) -> View: ...


class RealSide:
    """The real daemon, through its own client binary."""

    name = "dockerd"

    def __init__(self, daemon: RealDockerd) -> None:
        self.daemon = daemon

    def docker(self, *args: str, stdin: bytes | None = None) -> Result:
        r = subprocess.run([*self.daemon.client, *args], input=stdin, capture_output=True,
                           timeout=TIMEOUT, check=False)  # fmt: skip
        return Result(r.returncode, r.stdout, r.stderr)

    def view(self) -> View:
        # Read through the daemon's own mount namespace (it has one, see daemon.py), so a
        # running container's merged dir shows its overlay root, as on the daemon's host.
        pid = self.daemon.proc.pid if self.daemon.proc is not None else "self"
        with open(f"/proc/{pid}/mounts", encoding="utf-8", errors="replace") as f:
            lines = [ln.split() for ln in f]
        mounts = [(_unescape(p[1]), p[2], p[3]) for p in lines if len(p) >= 4]
        root = self.daemon.data_root
        return View(os, f"/proc/{pid}/root{root}", mounts, root)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


class SimSide:
    """The simulated machine saved at ``world``, speaking as Docker ``version``."""

    name = "simulator"

    def __init__(self, world: str, version: str = "20.10") -> None:
        self.world = world
        self.env = {"OVERLAYSIM_WORLD": world, "OVERLAYSIM_DOCKER_VERSION": version}

    def docker(self, *args: str, stdin: bytes | None = None) -> Result:
        from click.testing import CliRunner

        from overlaysim.cli import main

        runner = CliRunner()
        r = runner.invoke(main, ["docker", *args], input=stdin, env=self.env,
                          catch_exceptions=True)  # fmt: skip
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r.exit_code, r.stdout_bytes, r.stderr_bytes or b"")

    def view(self) -> View:
        from overlaysim.world import load_world

        fs = load_world(self.world).fs
        return View(fs.os, "/var/lib/docker", [(m.target, m.fstype, m.options) for m in fs.mounts()])
