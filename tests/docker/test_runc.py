"""``overlaysim runc``: spec bytes, bundle import, list/state shapes, signals, delete."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from overlaysim.image.bundle import runc_spec_json
from tests.docker.conftest import Result

Cli = Callable[..., Result]


@pytest.fixture
def bundle(cli: Cli, demo_tar: str, tmp_path: Path) -> Path:
    """A bundle on the real disk: rootfs from the demo image, config.json from runc spec."""
    b = tmp_path / "bundle"
    assert cli("image", "bundle", demo_tar, "-o", str(b)).code == 0
    os.unlink(b / "config.json")
    return b


def _edit(b: Path, readonly: bool = True, **process: object) -> None:
    spec = json.loads((b / "config.json").read_text())
    spec["process"].update(process)
    spec["root"]["readonly"] = readonly
    (b / "config.json").write_text(json.dumps(spec))


def test_spec_writes_runc_bytes_and_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    r = cli("runc", "spec", "--bundle", str(tmp_path))
    assert r.code == 0
    data = (tmp_path / "config.json").read_bytes()
    assert data == runc_spec_json("1.4", True) and data.startswith(b'{\n\t"ociVersion": "1.3.0"')
    r = cli("runc", "spec", "--bundle", str(tmp_path))
    assert r.code == 1 and r.err.count("\n") == 1
    assert "File config.json exists. Remove it first" in r.err
    (tmp_path / "rl").mkdir()
    cli("runc", "spec", "--rootless", "--bundle", str(tmp_path / "rl"))
    rl = json.loads((tmp_path / "rl" / "config.json").read_text())
    assert list(rl["linux"])[:2] == ["uidMappings", "gidMappings"]
    assert "resources" not in rl["linux"]
    assert [n["type"] for n in rl["linux"]["namespaces"]][-1] == "user"


def test_run_detached_list_kill_delete(cli: Cli, bundle: Path) -> None:
    cli("runc", "spec", "--bundle", str(bundle))
    r = cli("runc", "run", "-d", "--bundle", str(bundle), "c1")
    assert r.code == 1
    assert "cannot allocate tty if runc will detach without setting console socket" in r.err
    _edit(bundle, terminal=False, args=["sleep", "infinity"])
    assert cli("runc", "run", "-d", "--bundle", str(bundle), "c1").code == 0
    lines = cli("runc", "list").out.splitlines()
    cells = lines[1].split()
    # tabwriter(minwidth 12, padding 3): widest cell + 3, at least 12; OWNER is not padded
    widths = [12, 12, 12, len(str(bundle)) + 3, max(12, len(cells[4]) + 3)]
    names = ["ID", "PID", "STATUS", "BUNDLE", "CREATED"]
    assert lines[0] == "".join(n.ljust(w) for n, w in zip(names, widths, strict=True)) + "OWNER"
    assert lines[1] == "".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + "root"
    assert cells[0] == "c1" and cells[2] == "running" and cells[3] == str(bundle)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", cells[4]) and cells[5] == "root"
    (row,) = json.loads(cli("runc", "list", "--format", "json").out)
    assert list(row) == [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ]
    assert row["rootfs"] == str(bundle / "rootfs")
    # sleep as pid 1 has no SIGTERM handler: the default kill does nothing
    assert cli("runc", "kill", "c1").code == 0
    assert json.loads(cli("runc", "state", "c1").out)["status"] == "running"
    r = cli("runc", "delete", "c1")
    assert r.code == 1 and "cannot delete container c1 that is not stopped: running" in r.err
    assert cli("runc", "kill", "c1", "KILL").code == 0
    state = json.loads(cli("runc", "state", "c1").out)
    assert (state["status"], state["pid"]) == ("stopped", 0)
    r = cli("runc", "kill", "c1", "KILL")
    assert r.code == 1 and "container not running" in r.err
    assert cli("runc", "delete", "c1").code == 0
    assert cli("runc", "list", "-q").out == ""
    r = cli("runc", "state", "c1")
    assert r.code == 1 and "container does not exist" in r.err


def test_run_foreground_uses_the_imported_rootfs(cli: Cli, bundle: Path) -> None:
    cli("runc", "spec", "--bundle", str(bundle))
    _edit(bundle, False, terminal=False, args=["sh", "-c", "cat /etc/motd; touch /made-here"])
    r = cli("runc", "run", "--bundle", str(bundle), "fg")
    assert (r.code, r.out) == (0, "Welcome! This motd comes from the app layer.\n")
    assert cli("runc", "list", "-q").out == ""  # run without -d deletes the container
    assert not (bundle / "rootfs" / "made-here").exists()  # the real disk is not touched
    assert cli("sh", "-c", f"ls {bundle}/rootfs/made-here").code == 0  # the world's copy is


def test_create_then_start(cli: Cli, bundle: Path) -> None:
    cli("runc", "spec", "--bundle", str(bundle))
    _edit(bundle, terminal=False, args=["sleep", "1d"])
    assert cli("runc", "create", "--bundle", str(bundle), "c2").code == 0
    assert json.loads(cli("runc", "state", "c2").out)["status"] == "created"
    assert cli("runc", "start", "c2").code == 0
    assert json.loads(cli("runc", "state", "c2").out)["status"] == "running"


def test_docker_containers_are_visible_to_runc(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    cid = cli("docker", "run", "-d", "demo", "sleep", "infinity").out.strip()
    r = cli("runc", "--root", "/run/docker/runtime-runc/moby", "list", "--format", "json")
    (row,) = json.loads(r.out)
    assert row["id"] == cid and row["status"] == "running"
    assert row["rootfs"].endswith("/merged")


def test_unknown_program_fails_at_create(cli: Cli, bundle: Path) -> None:
    cli("runc", "spec", "--bundle", str(bundle))
    _edit(bundle, terminal=False, args=["nosuch"])
    r = cli("runc", "run", "-d", "--bundle", str(bundle), "c3")
    assert r.code == 1 and r.err.count("\n") == 1
    assert 'exec: \\"nosuch\\": executable file not found in $PATH' in r.err
    assert cli("runc", "list", "-q").out == ""


def test_read_only_root_refuses_writes_as_runc_does(cli: Cli, bundle: Path) -> None:
    cli("runc", "spec", "--bundle", str(bundle))  # "root": {"readonly": true}
    _edit(bundle, terminal=False, args=["sleep", "infinity"])
    assert cli("runc", "run", "-d", "--bundle", str(bundle), "ro").code == 0
    r = cli("runc", "exec", "ro", "touch", "/tmp/x")
    assert r.code == 1 and r.err == "touch: cannot touch '/tmp/x': Read-only file system\n"
    r = cli("runc", "exec", "ro", "sh", "-c", "cat /etc/motd; mount")
    assert r.out.startswith("Welcome!") and "overlay on / type overlay (ro," in r.out
    assert "overlaysim-ro" not in cli("sh", "-c", "mount; ls -a /run").out  # gone afterwards
    r = cli("runc", "exec", "ro", "nosuch")
    assert r.code == 1 and 'exec: \\"nosuch\\": executable file not found' in r.err


def test_every_runc_and_skopeo_command_has_an_example(cli: Cli) -> None:
    for cmd in ("spec", "create", "start", "run", "exec", "list", "state", "kill", "delete"):
        r = cli("runc", cmd, "--help")
        assert r.code == 0 and "Example" in r.out, cmd
    assert "Example:" in cli("skopeo", "copy", "--help").out
