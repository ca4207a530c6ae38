"""The world's event log: a command's overlay decisions saved with the world, by container,
bounded, gone with ``docker rm``, and an older (schema 1) world loads with an empty log."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from overlaysim.explain.whatif import frozen
from overlaysim.world import SCHEMA, World, load_world, open_world, save_world
from overlaysim.world.eventlog import MAX_PER_CONTAINER
from tests.worldcli import cli

FIXTURE = "/work/shared/fixtures/dive/test-docker-image.tar"


@pytest.fixture
def docker_world(tmp_path: Path) -> str:
    if not os.path.exists(FIXTURE):
        pytest.skip(f"dive's test image is not present ({FIXTURE})")
    path = str(tmp_path / "w.world")
    cli(path, "docker", "load", "-i", FIXTURE)
    cli(path, "docker", "run", "-d", "--name", "web", "dive-test", "sleep", "infinity")
    return path


def _size_before(world: str, spec: str) -> int:
    """The merged file's size as the engine reports it before any copy-up (the lower's)."""
    r = json.loads(cli(world, "explain", "--json", spec).output)
    assert r["layers_with_path"][0]["layer"]["role"] != "upper"
    return int(r["merged"]["size"])


def test_exec_is_logged_with_bytes_command_and_container(docker_world: str) -> None:
    size = _size_before(docker_world, "web:/root/saved.txt")
    cmd = "echo x >> /root/saved.txt; rm /somefile.txt"
    cli(docker_world, "docker", "exec", "web", "sh", "-c", cmd)
    cid = cli(docker_world, "docker", "inspect", "-f", "{{.Id}}", "web").output.strip()
    w = load_world(docker_world)
    mine = w.log.of(cid)
    ups = {e.path: e for e in mine if e.kind == "copy_up"}
    assert ups["/root/saved.txt"].detail["bytes"] == size
    assert ups["/root/saved.txt"].source == "docker exec"
    assert ups["/root/saved.txt"].command == f"sh -c '{cmd}'"
    assert [e.path for e in mine if e.kind == "whiteout"] == ["/somefile.txt"]
    # kept across save/load: the rows read back are the rows written
    again = World.from_snapshot(frozen(w.snapshot()), "copy")
    assert again.log.rows() == w.log.rows()
    save_world(w, docker_world)
    assert load_world(docker_world).log.rows() == w.log.rows()
    # `world log` prints the same rows, by container name
    rows = json.loads(cli(docker_world, "world", "log", "web", "--json").output)
    assert [(r["seq"], r["kind"], r["path"]) for r in rows] == [(e.seq, e.kind, e.path) for e in mine]
    assert all(r["container_name"] == "web" for r in rows)
    text = cli(docker_world, "world", "log", "web").output
    assert f"docker exec: sh -c '{cmd}'" in text and f"{size} bytes copied" in text


def test_docker_rm_removes_the_container_log(docker_world: str) -> None:
    cli(docker_world, "docker", "exec", "web", "touch", "/root/saved.txt")
    assert load_world(docker_world).log.entries
    cli(docker_world, "docker", "rm", "-f", "web")
    w = load_world(docker_world)
    assert w.log.entries == [] and w.log.dropped == {}


def test_run_rm_keeps_nothing(docker_world: str) -> None:
    before = load_world(docker_world).log.rows()
    cli(docker_world, "docker", "run", "--rm", "dive-test", "touch", "/root/saved.txt")
    assert load_world(docker_world).log.rows() == before


def _host_overlay(w: World, files: int) -> None:
    o = w.fs.os
    for d in ("/l", "/u", "/w", "/m"):
        o.mkdir(d)
    for i in range(files):
        with w.fs.open(f"/l/f{i}", "w") as f:
            f.write("x" * (i + 1))
    w.fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")


def test_log_is_bounded_per_container_and_counts_what_it_drops(tmp_path: Path) -> None:
    assert MAX_PER_CONTAINER == 10_000
    path = str(tmp_path / "w.world")
    with open_world(path) as w:
        _host_overlay(w, 5)
        w.log.limit = 3
        for i in range(5):
            w.fs.os.chmod(f"/m/f{i}", 0o600)  # a copy-up each
    w2 = load_world(path)
    kept = w2.log.of("")  # the host's own overlay
    assert [e.path for e in kept] == ["/f2", "/f3", "/f4"]  # the newest are kept
    assert [e.detail["bytes"] for e in kept] == [w2.fs.os.stat(f"/l/f{i}").st_size for i in (2, 3, 4)]
    assert w2.log.dropped == {"": 2}
    assert all(e.mount == "/m" and e.source for e in kept)


def test_sh_on_the_host_logs_each_command(tmp_path: Path) -> None:
    path = str(tmp_path / "w.world")
    with open_world(path) as w:
        _host_overlay(w, 2)
    cli(path, "sh", "-c", "chmod 600 /m/f0; echo y >> /m/f1")
    log = load_world(path).log.entries
    assert [(e.path, e.command, e.source) for e in log] == [
        ("/f0", "chmod 600 /m/f0", "sh"), ("/f1", "echo y >>/m/f1", "sh")]  # fmt: skip


def test_an_old_world_loads_with_an_empty_log_and_gains_the_table(tmp_path: Path) -> None:
    path = str(tmp_path / "w.world")
    with open_world(path) as w:
        _host_overlay(w, 1)
        w.fs.os.chmod("/m/f0", 0o600)
    assert load_world(path).log.entries
    conn = sqlite3.connect(path)  # make it what schema 1 wrote: no events table
    conn.execute("DROP TABLE events")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema'")
    conn.commit()
    conn.close()
    assert load_world(path).log.entries == []
    with open_world(path) as w:
        w.fs.os.chmod("/m/f0", 0o644)  # already copied up: no event
    conn = sqlite3.connect(path)
    schema = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    assert int(schema) == SCHEMA == 2 and count == 0
