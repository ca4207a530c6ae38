"""Every scenario of tests/overlay/scenarios.py gives the same observations on the kernel
overlay and on the simulator (section 10 of the kernel spec says what is normalised)."""

from __future__ import annotations

import json
from functools import cache

import pytest

from tests.overlay import (
    scenarios_datadir,
    scenarios_index,
    scenarios_metacopy,
    scenarios_nfs_export,
    scenarios_redirect,
    scenarios_xino,
)
from tests.overlay.oharness import Obs, Rec, SimSide, can_mount, kernel_side
from tests.overlay.scenarios import SCENARIOS

assert scenarios_metacopy.MC  # registers the metacopy scenarios in SCENARIOS
assert scenarios_redirect.RD  # and the redirect audit's
assert scenarios_datadir.MC  # and the data-only layers'
assert scenarios_index.IX  # and the inodes index's
assert scenarios_xino.XI  # and the xino ones (layers on filesystems of their own)
assert scenarios_nfs_export.NF  # and the nfs_export ones (file handles)


@cache
def _skip_reason() -> str | None:
    return can_mount()


def run_kernel(name: str) -> Obs:
    with kernel_side() as k:
        r = Rec(k)
        SCENARIOS[name](k, r)
        return r.obs


def run_sim(name: str) -> Obs:
    s = SimSide()
    r = Rec(s)
    SCENARIOS[name](s, r)
    return r.obs


def _diff(a: Obs, b: Obs) -> str:
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append(f"{k}:\n  kernel: {json.dumps(a.get(k))}\n  sim:    {json.dumps(b.get(k))}")
    return "\n".join(lines)


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_overlay_scenario(name: str) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    kern = run_kernel(name)
    sim = run_sim(name)
    d = _diff(kern, sim)
    assert not d, f"{name} differs:\n{d}"
