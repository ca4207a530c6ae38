"""Each planted fault is found by a campaign and shrunk to at most five operations.

This is the evidence that the fuzzer finds bugs, not just that the simulator has none: the
faults are real-looking bugs patched into the engine from outside (overlaysim.fuzz.faults),
judged against the kernel (the reference model where mount(2) is not permitted).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from overlaysim.fuzz import reproduce
from overlaysim.fuzz.campaign import Campaign, Config, exit_code
from overlaysim.fuzz.faults import FAULTS
from overlaysim.fuzz.progress import Reporter, Stats
from overlaysim.fuzz.store import Store
from overlaysim.testing.kernel import can_mount

TARGET = "kernel" if can_mount()[0] else "reference"


class _Silent(Reporter):
    def tick(self, stats: Stats, force: bool = False) -> None:
        pass

    def start(self, stats: Stats, text: str) -> None:
        pass

    def divergence(self, stats: Stats, sig: str, info: dict[str, Any], new: bool) -> None:
        pass


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_planted_fault_is_found_and_shrunk(name: str, tmp_path: Any) -> None:
    fault = FAULTS[name]
    config = Config(target=TARGET, profiles=(fault.profile,), sequences=300, shard_size=10,
                    min_ops=8, max_ops=16, fault=name, exitfirst=True)  # fmt: skip
    store = Store(str(tmp_path / "out"))
    stats = Campaign(config, store, _Silent()).run()
    assert exit_code(stats) == 1 and stats.signatures, f"{name} not found in 300 cases"
    store_state = store.load(config.identity((fault.profile,)))
    best = min(store_state["signatures"].values(), key=lambda v: v["ops"])
    assert best["shrunk"] and best["ops"] <= 5, best
    rec = reproduce.load(os.path.join(store.out, best["dir"], "case.json"))
    assert not reproduce.replay(rec).ok  # the written case still shows the fault...
    assert reproduce.replay({**rec, "fault": None}).ok  # ...and only the fault
