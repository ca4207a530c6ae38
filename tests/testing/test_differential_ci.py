"""The CI differential run: the simulator against the real kernel on generated sequences.

600 sequences (100 per option profile) of 20-40 operations, deterministic, over stacks with
every file type, hard links, both whiteout forms, opaque and xwhiteouts dirs. Each case is
compared op by op (result, errno, bytes), at checkpoints (merged, upper, work), after umount,
after a remount, and across the two round trips (the kernel's layers mounted by the
simulator and the simulator's layers mounted by the kernel). Zero divergences allowed; a
failure prints the report and a shell script that replays the case on a real kernel.

Where mount(2) is not permitted the same cases run against the flat reference model.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from overlaysim.testing import differential as D
from overlaysim.testing import reference
from overlaysim.testing import strategies as S
from overlaysim.testing.kernel import can_mount, kernel_factory
from overlaysim.testing.simulator import simulator_factory

PER_PROFILE = 100
MIN_OPS = 20


@pytest.mark.parametrize("profile", sorted(S.PROFILES))
def test_simulator_matches_the_oracle(profile: str) -> None:
    use_kernel, _why = can_mount()
    ran: list[int] = []

    @settings(max_examples=PER_PROFILE, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(S.cases(profile, min_ops=MIN_OPS, max_ops=2 * MIN_OPS, hardlinks=use_kernel,
                   whiteouts=True))  # fmt: skip
    def check(case: S.Case) -> None:
        if use_kernel:
            report = D.run_case(case.stack, case.ops, case.options, simulator_factory,
                                oracle_factory=kernel_factory, round_trip=True)  # fmt: skip
        else:
            report = D.run_case(reference.sanitize(case.stack), case.ops, case.options,
                                simulator_factory, oracle_factory=reference.reference_factory,
                                compare=("merged",), ignore=("links", "inodes"))  # fmt: skip
        assert report.ok, f"profile {profile}\n{report}\n--- script ---\n{report.script()}"
        ran.append(len(case.ops))

    check()
    # The run is only evidence if it really happened at the size the issue asks for.
    assert len(ran) >= PER_PROFILE * 0.9, f"only {len(ran)} distinct cases generated"
    assert min(ran) >= MIN_OPS
