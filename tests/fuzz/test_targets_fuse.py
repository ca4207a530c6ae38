"""``--against fuse-overlayfs``: the real binary judged against the kernel.

Each documented finding (tests/fuzz/fuse_findings.py, README "fuse-overlayfs findings") is
replayed on both and must still diverge exactly as recorded; if fuse-overlayfs changes, this
fails and the README table needs updating. The factory must never leave a FUSE mount or a
daemon behind.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from overlaysim.errors import TargetError
from overlaysim.fuzz import fuse_overlayfs as F
from overlaysim.fuzz.targets import kernel_mount, resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing import strategies as S
from overlaysim.testing.differential import run_case
from overlaysim.testing.kernel import mount_table
from tests.fuzz.fuse_findings import FINDINGS, Finding

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _fuse() -> None:
    ok, why = F.probe()
    if not ok:
        pytest.skip(why)


def _fuse_mounts() -> list[str]:
    return [m.mount_point for m in mount_table() if "/ovl-fuse-" in m.mount_point]


@pytest.mark.parametrize("finding", FINDINGS, ids=lambda f: f.name)
def test_each_finding_still_diverges_as_recorded(finding: Finding) -> None:
    report = run_case(finding.stack, finding.ops, finding.options, F.fuse_factory,
                      oracle_factory=kernel_mount, compare=F.COMPARE, stop_at_first=False)  # fmt: skip
    text = str(report)
    for line in finding.expect:
        assert line in text, f"{finding.name}: expected {line!r} in\n{text}"
    with open(finding.script_path, encoding="utf-8") as f:
        assert f.read() == F.fuse_script(finding.stack, finding.ops, finding.options), (
            "stale reproducer: run python -m tests.fuzz.fuse_findings")


def test_excluded_findings_are_what_the_sanitizer_removes() -> None:
    for f in FINDINGS:
        assert (F.sanitize(f.stack) != f.stack) == f.excluded, f.name


def test_factory_life_cycle_leaves_nothing_behind() -> None:
    stack = L.LayerStack((L.Dir({"a": L.File(b"x")}),), L.Dir())
    m = F.fuse_factory(stack, "")
    proc = m.proc
    assert proc is not None and proc.poll() is None
    try:
        fd = m.os.open(os.path.join(m.mount_path, "a"), os.O_WRONLY | os.O_APPEND)
        m.os.write(fd, b"y")
        m.os.close(fd)
        m.umount()
        assert proc.poll() is not None  # the daemon exits once unmounted and is reaped
        m.remount()
        with open(os.path.join(m.mount_path, "a"), "rb") as f:
            assert f.read() == b"xy"
    finally:
        m.close()
    assert not os.path.exists(m.base) and m.proc is None
    assert m.mount_path not in _fuse_mounts()


@pytest.mark.parametrize("options, words", [
    ("redirect_dir=on", "only supports redirect_dir=off"),
    ("lowerdir=/nonexistent-overlaysim", "cannot read lower dirs"),
])  # fmt: skip
def test_refused_mounts_are_oserrors_with_its_message(options: str, words: str) -> None:
    with pytest.raises(OSError, match=words):
        F.fuse_factory(L.LayerStack((L.Dir(),), L.Dir()), options)


def test_a_small_campaign_runs_clean() -> None:
    """Every case ends with both sides unmounted; divergences are reports, not crashes."""
    t = resolve_target("fuse-overlayfs")
    assert t.available()[0] and t.sides() == (kernel_mount, F.fuse_factory)
    seen = {"cases": 0, "divergent": 0}

    @seed(20261204)
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(t.profiles).flatmap(
        lambda p: S.cases(p, min_ops=10, max_ops=20, hardlinks=t.hardlinks)))  # fmt: skip
    def run(case: S.Case) -> None:
        report = t.run(case.stack, case.ops, t.options_for(case.profile))
        seen["cases"] += 1
        seen["divergent"] += not report.ok

    run()
    assert seen["cases"] == 30 and seen["divergent"] > 0  # the findings above show up
    assert not _fuse_mounts()


def test_profiles_it_cannot_run_are_refused() -> None:
    t = resolve_target("fuse-overlayfs")
    assert set(t.profiles) <= set(S.PROFILES)
    with pytest.raises(TargetError, match="cannot run profile"):
        t.options_for("redirect_dir=on")
    report = t.run(L.LayerStack((L.Dir({"a": L.Whiteout("xattr")}),), L.Dir()),
                   [O.Stat("a")], "")
    assert report.ok  # the sanitizer turned the xattr whiteout into a char 0/0 one


def test_campaign_reproducers_mount_both_sides_up_to_the_divergence() -> None:
    t = resolve_target("fuse-overlayfs")
    f = next(x for x in FINDINGS if x.name == "rename-whiteout-flag")
    report = t.run(f.stack, (*f.ops, O.Mkdir("z")), f.options)  # stops at op 0
    assert t.script is not None and not report.ok
    text = t.script(report)
    assert "mount -t overlay" in text and "fuse-overlayfs -o" in text
    assert "run 0 " in text and "run 1 " not in text
