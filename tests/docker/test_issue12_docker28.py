"""Issue 12's points where Docker 28 (the simulator's default release) differs from 20.10.

The 20.10 side is what a real dockerd 20.10.24 printed (tests/docker/test_format_listings.py,
test_inspect_groups_network.py, test_archive_headers.py); the 28 side keeps what the
simulator did before, which follows upstream's newer CLI and daemon.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docker.conftest import Result, fixture_path

Cli = Callable[..., Result]


@pytest.fixture
def dive(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("OVERLAYSIM_DOCKER_VERSION", raising=False)
    assert cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar")).code == 0
    assert cli("docker", "tag", "dive-test", "other:v1").code == 0
    return cli


def test_format_json_and_quiet_listing(dive: Cli) -> None:
    rows = [json.loads(x) for x in dive("docker", "images", "--format", "json").out.splitlines()]
    assert [r["Repository"] for r in rows] == ["dive-test", "other"]
    assert dive("docker", "images", "-q").out == "75ae28b8ebf8\n"
    # dockerd 20.10.24's client: "json" is a template without actions; no de-duplication
    old = ("docker", "--docker-version", "20.10", "images")
    assert dive(*old, "--format", "json").out == "json\njson\n"
    assert dive(*old, "-q").out == "75ae28b8ebf8\n75ae28b8ebf8\n"


def test_network_mode_and_not_found_texts(dive: Cli) -> None:
    dive("docker", "create", "--name", "aa", "dive-test", "true")
    dive("docker", "--docker-version", "20.10", "create", "--name", "bb", "dive-test", "true")
    fmt = "{{.HostConfig.NetworkMode}} {{json .NetworkSettings.Networks}}"
    modes = [dive("docker", "inspect", "-f", fmt, n).out.split()[0] for n in ("aa", "bb")]
    assert modes == ["bridge", "default"]
    r = dive("docker", "image", "inspect", "aa")
    assert r.err == "Error response from daemon: No such image: aa:latest\n"
    r = dive("docker", "--docker-version", "20.10", "image", "inspect", "aa")
    assert r.err == "Error: No such image: aa\n"


def test_archives_without_type_bits_or_names(dive: Cli, tmp_path: Path) -> None:
    dive("docker", "create", "--name", "aa", "dive-test", "true")
    for version, out in (("28", "new.tar"), ("20.10", "old.tar")):
        r = dive("docker", "--docker-version", version, "export", "-o", str(tmp_path / out), "aa")
        assert r.code == 0, r
    new, old = (tmp_path / "new.tar").read_bytes(), (tmp_path / "old.tar").read_bytes()
    with tarfile.open(tmp_path / "new.tar") as t:
        first = t.next()
    assert first is not None and first.name == ".dockerenv"  # a file of the -init layer
    # the raw mode field and uname of the first header (tarfile masks the type bits)
    assert (new[100:107], new[265:269]) == (b"0000755", b"\0\0\0\0")
    assert (old[100:107], old[265:269]) == (b"0100755", b"root")
