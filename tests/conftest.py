"""Session set-up shared by every test directory."""

from __future__ import annotations

import os

import pytest

#: A new world's clock starts today (overlaysim.world.clock); the tests pin it to
#: 2024-01-01T00:00:00Z so that every date they print is the same on every run.
os.environ["SOURCE_DATE_EPOCH"] = "1704067200"


def pytest_configure(config: pytest.Config) -> None:
    """As root, make this process's mounts private before any test mounts anything, so a
    container that a real dockerd creates meanwhile cannot copy (and keep alive) the kernel
    oracle's overlays (see overlaysim.testing.kernel.private_mounts)."""
    if os.geteuid() == 0:
        from overlaysim.testing.kernel import private_mounts

        private_mounts()
