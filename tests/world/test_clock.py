"""A new world's clock reads today (as ls, docker ps and docker images on a real host do),
follows the host between commands, and is pinned by SOURCE_DATE_EPOCH or a seed."""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.errors import WorldError
from overlaysim.vfs.superblock import StepClock
from overlaysim.world import World, load_world, save_world
from overlaysim.world import clock as wclock
from tests.worldcli import demo_web

#: a fixed "today" for these tests: 2026-12-04T13:00:00Z
TODAY = calendar.timegm((2026, 12, 4, 13, 0, 0)) * 10**9


class HostTime:
    """The host's time as the world module sees it, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now_ns: int) -> None:
        self.now = now_ns
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        monkeypatch.setattr(wclock, "host_ns", lambda: self.now)


def test_unpinned_world_starts_today_and_catches_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = HostTime(monkeypatch, TODAY + 123_456_789)
    w = World.new()
    assert isinstance(w.fs.clock, wclock.TodayClock)
    first = w.fs.clock()
    assert TODAY < first < TODAY + 10**9  # the host's second, then 1 us per reading
    path = tmp_path / "w.world"
    save_world(w, path)
    host.now = TODAY + 3600 * 10**9
    loaded = load_world(path)
    assert isinstance(loaded.fs.clock, wclock.TodayClock)
    assert loaded.fs.clock() > TODAY + 3600 * 10**9
    host.now = TODAY - 10**12  # the host went back: the world's time never does
    assert load_world(path).fs.clock() > first


def test_source_date_epoch_pins_the_clock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host = HostTime(monkeypatch, TODAY)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    w = World.new()
    assert type(w.fs.clock) is StepClock
    assert 0 < w.fs.clock() - 1_700_000_000 * 10**9 < 10**6  # making the machine read it
    path = tmp_path / "w.world"
    save_world(w, path)
    saved = w.fs.clock.now
    host.now = TODAY + 10**12
    assert load_world(path).fs.clock() == saved + 1_000  # the next reading: no catch-up


def test_a_seed_pins_the_clock_to_2024(monkeypatch: pytest.MonkeyPatch) -> None:
    HostTime(monkeypatch, TODAY)
    w = World.new(seed=3)
    assert type(w.fs.clock) is StepClock and w.seed == 3
    assert time.gmtime(w.fs.clock() // 10**9)[:3] == (2024, 1, 1)
    assert World.new().seed == 0


@pytest.mark.parametrize("bad", ["x", "-5", "1.5", "17e8"])
def test_malformed_source_date_epoch_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", bad)
    with pytest.raises(WorldError, match="SOURCE_DATE_EPOCH"):
        World.new()
    r = CliRunner().invoke(main, ["world", "reset", "--world", "/nonexistent/w.world"])
    assert r.exit_code == 1 and "SOURCE_DATE_EPOCH" in r.output and "Traceback" not in r.output


def test_ls_docker_ps_and_images_read_today(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The commands a reader compares with a real host: a file made now shows today's date,
    a container run 2 minutes ago says so, and an image's age counts from today."""
    host = HostTime(monkeypatch, TODAY)
    run = demo_web(tmp_path)
    assert re.search(r"\bDec  4 13:00 f\n", run("sh", "-c", "touch /tmp/f; ls -l /tmp"))
    host.now = TODAY + 130 * 10**9
    ps = run("docker", "ps")
    assert "2 minutes ago" in ps and "Up 2 minutes" in ps
    created = run("docker", "image", "inspect", "-f", "{{.Created}}", "demo").strip()
    born = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    # go-units HumanDuration: whole years of 365 days, counted from today
    years = (TODAY // 10**9 + 130 - born) // 3600 // 24 // 365
    assert f"{years} years ago" in run("docker", "images")
    assert re.search(r"\bDec  4 13:02 g\n", run("sh", "-c", "touch /tmp/g; ls -l /tmp"))
