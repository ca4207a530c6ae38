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

from tests.overlay.test_kernel_scenarios import SCENARIOS  # every scenario module registered
from tests.overlay.test_rename_onto_whiteout import _diff, kernel_and_mapped


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_on_a_mapped_tmpfs(name: str) -> None:
    want, got = kernel_and_mapped(SCENARIOS[name])
    assert not _diff(want, got), f"{name} differs on hostdir layers:\n{_diff(want, got)}"


def test_the_scenarios_are_there() -> None:
    names = set(SCENARIOS)
    assert len(names) >= 70 and {"index_verify_refusals", "nfs_handles_decode",
                                  "copy_up_parents_and_attrs"} <= names  # fmt: skip
