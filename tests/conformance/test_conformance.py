"""HostFS must answer every scenario exactly as the kernel (tmpfs) does.

Each scenario runs on a fresh real tmpfs through ``os`` (forked, optionally setresuid'd)
and on a fresh ``HostFS`` through ``fs.os``; the normalised observation dicts must be equal.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from .catalog import all_scenarios
from .harness import (
    SCENARIOS,
    diff,
    hostfs_unavailable,
    kernel_unavailable,
    run_hostfs,
    run_kernel,
)

MIN_OBSERVATIONS = 200

@functools.cache
def _kernel_reason() -> str | None:
    return kernel_unavailable()


@functools.cache
def kernel_obs(name: str) -> dict[str, Any]:
    """Kernel observations of one scenario, computed once per session."""
    return run_kernel(SCENARIOS[name])


def _need_kernel() -> None:
    reason = _kernel_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.kernel
@pytest.mark.parametrize("name", [sc.name for sc in all_scenarios()])
def test_scenario_matches_kernel(name: str) -> None:
    _need_kernel()
    reason = hostfs_unavailable()
    if reason is not None:
        pytest.skip(reason)
    expected = kernel_obs(name)
    actual = run_hostfs(SCENARIOS[name])
    d = diff(expected, actual)
    assert not d, f"scenario {name}: {len(d.splitlines()) // 3} observation(s) differ\n{d}"


@pytest.mark.kernel
def test_observation_count() -> None:
    """The suite is only a proof if it observes enough (counted on the kernel side)."""
    _need_kernel()
    total = sum(len(kernel_obs(sc.name)) for sc in all_scenarios())
    assert total >= MIN_OBSERVATIONS, total


@pytest.mark.kernel
def test_kernel_side_is_deterministic() -> None:
    """Normalisation must make a second kernel run identical (spot check, 3 scenarios)."""
    _need_kernel()
    for name in ("times_rename", "scandir_dtypes", "perm_basic"):
        assert run_kernel(SCENARIOS[name]) == kernel_obs(name), name


def test_diff_reports_every_changed_key() -> None:
    """The diff helper itself: changed, missing and extra keys all show up."""
    d = diff({"a": 1, "b": [1], "c": 0}, {"a": 1, "b": [2], "x": 3})
    assert "b:" in d and "c:" in d and "x:" in d and "a:" not in d
