"""Every kernel scenario with every layer on a real tmpfs mapped by ``hostdir`` (what
``overlaysim mount --live`` mounts), against the kernel on the same kind of tmpfs.

On a mapping the engine writes a real upper: its times, xattrs and file handles are the real
filesystem's. With index=on and nfs_export=on the handles the engine writes and decodes are
the real ones (name_to_handle_at, open_by_handle_at), so W/index names, ``origin``/``upper``
xattrs, refusals (ESTALE) and the handles given through the overlay follow the real inodes
(before, these layers fell back to index=off); a copy-up puts the real upper parent's times
back as ovl_set_timestamps does (before, its mtime became the copy-up's time).
"""

from __future__ import annotations

import pytest

from tests.overlay import (
    scenarios_datadir,
    scenarios_index,
    scenarios_metacopy,
    scenarios_nfs_export,
    scenarios_redirect,
    scenarios_xino,
)
from tests.overlay.oharness import can_mount, kernel_side
from tests.overlay.scenarios import SCENARIOS
from tests.overlay.test_rename_onto_whiteout import _diff, _observe, mapped_side

assert scenarios_metacopy.MC and scenarios_redirect.RD and scenarios_datadir.MC
assert scenarios_index.IX and scenarios_nfs_export.NF and scenarios_xino.XI  # registered


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_on_a_mapped_tmpfs(name: str) -> None:
    why = can_mount()
    if why is not None:
        pytest.skip(why)
    with kernel_side() as k:
        want = _observe(k, SCENARIOS[name])
    with mapped_side() as m:
        got = _observe(m, SCENARIOS[name])
    assert not _diff(want, got), f"{name} differs on hostdir layers:\n{_diff(want, got)}"


def test_the_scenarios_are_there() -> None:
    names = set(SCENARIOS)
    assert len(names) >= 70 and {"index_verify_refusals", "nfs_handles_decode",
                                  "copy_up_parents_and_attrs"} <= names  # fmt: skip
