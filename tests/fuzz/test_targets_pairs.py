"""``--against simulator`` only asserts what two kernel mounts confirm.

Each :data:`SIM_PAIRS` entry runs the same generated cases on two real overlays, one per
profile, and must agree on every result and on the pair's trees; each :data:`NOT_PAIRS`
entry has a witness case on which the kernel itself disagrees. The simulator is then held
to the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from overlaysim.errors import TargetError
from overlaysim.fuzz.targets import NOT_PAIRS, SIM_PAIRS, resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing import strategies as S
from overlaysim.testing.differential import OverlayMount, run_case
from overlaysim.testing.kernel import can_mount, kernel_factory

CASES = 100


@pytest.fixture
def kernel() -> None:
    ok, why = can_mount()
    if not ok:
        pytest.skip(why)


@dataclass(frozen=True)
class KernelWith:
    """A kernel overlay with fixed options (the second mount of a pair)."""

    options: str

    def __call__(self, stack: L.LayerStack, options: str) -> OverlayMount:
        return kernel_factory(stack, self.options)


@pytest.mark.kernel
@pytest.mark.parametrize("pair", sorted(SIM_PAIRS), ids="/".join)
def test_the_kernel_confirms_each_simulator_pair(pair: tuple[str, str], kernel: None) -> None:
    p = SIM_PAIRS[pair]
    first, second = (KernelWith(S.PROFILES[name][0]) for name in pair)

    @seed(20261204)
    @settings(max_examples=CASES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(p.stacks).flatmap(lambda prof: S.cases(prof, min_ops=10, max_ops=25)))
    def run(case: S.Case) -> None:
        report = run_case(case.stack, case.ops, "", first, oracle_factory=second,
                          compare=p.compare, remount=p.remount)  # fmt: skip
        assert report.ok, f"the kernel disagrees with SIM_PAIRS[{pair}]:\n{report}"

    run()


# One case per refused pair on which two kernel mounts disagree (first vs second).
WITNESSES: dict[tuple[str, str], tuple[L.LayerStack, tuple[O.Op, ...], str]] = {
    ("redirect_dir=on", "default"): (L.LayerStack((L.Dir({"d": L.Dir()}),), L.Dir()),
                                     (O.Rename("d", "e"),), "op 0"),
    ("metacopy=on", "default"): (L.LayerStack((L.Dir({"d": L.Dir()}),), L.Dir()),
                                 (O.Rename("d", "e"),), "op 0"),
    ("userxattr", "default"): (L.LayerStack((L.Dir({"d": L.Device("chr", 1, 3)}),), L.Dir()),
                               (O.Link("d", "e"),), "merged"),
}  # fmt: skip


@pytest.mark.kernel
@pytest.mark.parametrize("pair", sorted(NOT_PAIRS), ids="/".join)
def test_refused_pairs_disagree_on_the_kernel(pair: tuple[str, str], kernel: None) -> None:
    stack, ops, where = WITNESSES[pair]
    first, second = (KernelWith(S.PROFILES[name][0]) for name in pair)
    report = run_case(stack, ops, "", first, oracle_factory=second, compare=("merged",),
                      stop_at_first=False)  # fmt: skip
    assert not report.ok and any(where in d.where for d in report.divergences), str(report)
    with pytest.raises(TargetError, match="disagrees"):
        resolve_target(f"simulator:{pair[0]},{pair[1]}")


@pytest.mark.parametrize("spec", ["simulator", *(f"simulator:{a},{b}" for a, b in SIM_PAIRS)])
def test_the_simulator_keeps_the_pairs_the_kernel_keeps(spec: str) -> None:
    t = resolve_target(spec)

    @seed(20261205)
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(t.profiles).flatmap(lambda prof: S.cases(prof, min_ops=10, max_ops=25)))
    def run(case: S.Case) -> None:
        report = t.run(case.stack, case.ops, t.options_for(case.profile))
        assert report.ok, f"{spec}\n{report}"

    run()
