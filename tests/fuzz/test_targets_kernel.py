"""Protocol servers judged against the real kernel: the protocol must lose nothing.

The simulator served over the protocol and the example third-party server (the kernel's own
overlay behind plain ``os`` calls, examples/fuzz_server_os.py) are both compared with a real
overlay on every tree; neither may diverge.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from overlaysim.fuzz.targets import ALL_TREES, Target, kernel_mount, resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import strategies as S
from overlaysim.testing.kernel import KernelOverlay, can_mount, mount_table

pytestmark = pytest.mark.kernel
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "fuzz_server_os.py")


@pytest.fixture(autouse=True)
def _kernel() -> None:
    ok, why = can_mount()
    if not ok:
        pytest.skip(why)


def _against_kernel(spec: str) -> Target:
    t = resolve_target(spec)
    ok, why = t.available()
    assert ok, why
    return dataclasses.replace(t, versus=kernel_mount, compare=ALL_TREES)


def _campaign(t: Target, cases: int, seed_: int) -> int:
    n = {"cases": 0}

    @seed(seed_)
    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(sorted(S.PROFILES)).flatmap(
        lambda p: S.cases(p, min_ops=10, max_ops=20, hardlinks=True)))  # fmt: skip
    def run(case: S.Case) -> None:
        report = t.run(case.stack, case.ops, t.options_for(case.profile))
        n["cases"] += 1
        assert report.ok, f"{t.name} vs kernel, {case.profile}\n{report}\n{report.script()}"

    run()
    return n["cases"]


def test_served_simulator_equals_the_kernel() -> None:
    assert _campaign(_against_kernel(f"{sys.executable} -m overlaysim.fuzz.serve"), 200, 1) == 200


def test_example_os_server_equals_the_kernel() -> None:
    t = _against_kernel(f"{sys.executable} {EXAMPLE}")
    assert _campaign(t, 40, 2) == 40
    factory = t.factory
    factory.server().stop()  # type: ignore[attr-defined]  # end of input: it unmounts, exits
    assert not [m for m in mount_table() if "/fuzz-server-" in m.mount_point]


def test_kernel_target_judges_the_simulator_with_round_trips() -> None:
    t = resolve_target("kernel")
    assert t.available()[0]
    oracle, _ = t.sides()
    stack = L.LayerStack((L.Dir({"a": L.File(b"x")}),), L.Dir())
    mount = oracle(stack, "")
    try:
        assert isinstance(mount, KernelOverlay)  # run_case's round trips need the real one
    finally:
        mount.close()
    assert _campaign(t, 10, 3) == 10
