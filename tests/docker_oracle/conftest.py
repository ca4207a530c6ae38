"""A private real dockerd for the whole session (the judge), a fresh simulated world per test.

The daemon is started once (a few seconds) and emptied between tests (containers removed with
``rm -f``, images with ``rmi -f``), which also checks that both sides clean up the same way.
Where it cannot start (not root, no docker.io) every test here skips with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from overlaysim.testing.dockerd.compare import Pair
from overlaysim.testing.dockerd.daemon import DockerdUnavailable, RealDockerd
from overlaysim.testing.dockerd.sides import RealSide, SimSide
from overlaysim.world import World, save_world
from tests.docker.conftest import fixture_path

__all__ = ["empty", "fixture_path"]



@pytest.fixture(scope="session")
def dockerd() -> Iterator[RealDockerd]:
    d = RealDockerd()
    try:
        d.start()
    except DockerdUnavailable as e:
        pytest.skip(f"real dockerd unavailable: {e}")
    try:
        yield d
    finally:
        d.stop()


def empty(side: RealSide) -> None:
    """Remove every container and image of the real daemon."""
    ids = side.docker("ps", "-aq").text.split()
    if ids:
        side.docker("rm", "-f", *ids)
    images = side.docker("images", "-aq").text.split()
    if images:
        side.docker("rmi", "-f", *sorted(set(images)))


@pytest.fixture
def pair(dockerd: RealDockerd, tmp_path: Path) -> Iterator[Pair]:
    real = RealSide(dockerd)
    empty(real)
    world = str(tmp_path / "sim.world")
    save_world(World.new(wall=True), world)
    yield Pair(real, SimSide(world))
    empty(real)
