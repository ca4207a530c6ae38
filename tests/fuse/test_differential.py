"""The kernel-differential sequences through the FUSE mount: the simulator served by
``overlaysim mount`` (the daemon, in a forked child) judged against ``mount -t overlay``.

About 210 generated sequences (spread over the profiles the FUSE front end runs, seeded and deterministic),
each compared op by op (result, errno, bytes; st_ino kept across copy-up), on the merged view
at checkpoints and after a remount, and on the upper and work dirs the daemon writes back at
unmount. Nothing is masked: what FUSE cannot express is the explicit list
``overlaysim_fuse.CANNOT_EXPRESS`` and each item says why the comparison still holds. The
profiles left out are ``overlaysim_fuse.NOT_RUN``, each for a divergence of the front end whose
shrunk reproducer is replayed below and must still diverge as recorded.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from overlaysim.errors import TargetError
from overlaysim.fuzz import overlaysim_fuse as F
from overlaysim.fuzz.targets import kernel_mount, resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing import strategies as S
from overlaysim.testing.differential import run_case
from overlaysim.testing.kernel import mount_table

OK, WHY = F.probe()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not OK, reason=WHY)]

# About 210 sequences in all, fewer per profile as profiles come back (CI time).
PER_PROFILE = -(-210 // len(F.PROFILES)) if F.PROFILES else 0
MIN_OPS = 20
TARGET = resolve_target(F.NAME) if OK else None


def _fuse_mounts() -> list[str]:
    return [m.mount_point for m in mount_table() if m.fstype.startswith("fuse")]


def test_the_ci_run_is_at_least_200_sequences() -> None:
    assert len(F.PROFILES) * PER_PROFILE >= 200


@pytest.mark.parametrize("profile", F.PROFILES)
def test_sequences_through_fuse_match_the_kernel(profile: str) -> None:
    assert TARGET is not None
    ran: list[int] = []
    start = time.monotonic()

    # No shrinking (each example mounts twice per side): the failure prints the case and a
    # script; `overlaysim fuzz --against overlaysim-fuse` shrinks.
    @settings(max_examples=PER_PROFILE, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(S.cases(profile, min_ops=MIN_OPS, max_ops=2 * MIN_OPS, hardlinks=True, whiteouts=True))
    def check(case: S.Case) -> None:
        report = TARGET.run(case.stack, case.ops, TARGET.options_for(profile))
        script = TARGET.script(report) if TARGET.script else ""
        assert report.ok, f"profile {profile}\n{report}\n--- script ---\n{script}"
        ran.append(len(case.ops))

    check()
    assert len(ran) >= PER_PROFILE * 0.9, f"only {len(ran)} distinct cases generated"
    assert min(ran) >= MIN_OPS
    assert not _fuse_mounts(), "a FUSE mount was left behind"
    print(f"{profile}: {len(ran)} sequences in {time.monotonic() - start:.1f}s")


# Shrunk reproducers of NOT_RUN (kernel 6.18 here): profile -> (stack, ops, options, lines
# the report must contain). When one stops diverging, its profile can run above again.
REPRODUCERS: dict[str, tuple[L.LayerStack, list[O.Op], str, list[str]]] = {
    "xino=on multi-fs": (L.LayerStack((L.Dir({"b": L.Whiteout("xattr")}),), L.Dir(),
                                      separate_fs=True), [], "xino=on",
                         ["start: merged", "b: only in simulator"]),
}  # fmt: skip


# Reproducers of divergences since fixed in the front end (their profiles run above again):
# each now agrees with the kernel through the FUSE mount, write-back and remount included.
FIXED: dict[str, tuple[L.LayerStack, list[O.Op], str]] = {
    # no upperdir: a lowers-only, read-only overlay (the root is the top lower's), no scratch
    "ro multi-lower": (L.LayerStack((L.Dir(mode=0o700), L.Dir()), None), [O.Mkdir("x", 0o755)], ""),
    # upper and work written back together: the index entry stays a link of its upper file
    "index=on": (L.LayerStack((L.Dir({"a": L.File(b"x"), "b": L.HardLink("a")}),), L.Dir()),
                 [O.Chmod("a", 0o600)], "index=on"),
    "nfs_export=on": (L.LayerStack((L.Dir({"a": L.File(b"x")}),), L.Dir()),
                      [O.Chmod("a", 0o600)], "nfs_export=on"),
}  # fmt: skip


@pytest.mark.parametrize("profile", sorted(FIXED))
def test_fixed_reproducers_now_agree_with_the_kernel(profile: str) -> None:
    stack, ops, options = FIXED[profile]
    assert profile in F.PROFILES or profile in UNSHRUNK
    report = run_case(stack, ops, options, F.sim_fuse_factory,
                      oracle_factory=kernel_mount, compare=F.COMPARE, stop_at_first=False)  # fmt: skip
    assert report.ok, f"{profile}:\n{report}"


def test_an_upper_the_remount_changes_is_compared_after_the_next_umount() -> None:
    """Found by ``fuzz --against overlaysim-fuse`` (seed 29): under userxattr a lower symlink
    moved into a new dir is copied up without origin, the dir marked impure; after the remount
    the first listing of that dir drops the useless impure xattr, on the kernel's upper at once,
    on the daemon's only when it writes back. The comparison used to read the daemon's upper
    as the first umount left it (a false divergence); it now compares both after unmounting."""
    stack = L.LayerStack((L.Dir({"a": L.Whiteout(), "c": L.Symlink("a")}),
                          L.Dir({"a": L.File(), "b": L.File(), "c": L.Dir()})), L.Dir())  # fmt: skip
    ops: list[O.Op] = [O.Mkdir("a", 0o755), O.Rename("c", "a/g")]
    report = run_case(stack, ops, "userxattr", F.sim_fuse_factory, oracle_factory=kernel_mount,
                      compare=F.COMPARE, stop_at_first=False)  # fmt: skip
    assert report.ok, str(report)


# Left out with no shrunk reproducer yet: the generated run of the profile diverges.
UNSHRUNK = {"nfs_export=on"}


def test_every_profile_left_out_has_a_reproducer() -> None:
    assert set(REPRODUCERS) | UNSHRUNK == set(F.NOT_RUN)
    assert set(F.PROFILES) | set(F.NOT_RUN) == set(S.PROFILES)


@pytest.mark.parametrize("profile", sorted(REPRODUCERS))
def test_profiles_left_out_still_diverge_as_recorded(profile: str) -> None:
    stack, ops, options, expect = REPRODUCERS[profile]
    report = run_case(stack, ops, options, F.sim_fuse_factory,
                      oracle_factory=kernel_mount, compare=F.COMPARE, stop_at_first=False)  # fmt: skip
    text = str(report)
    for line in expect:
        assert line in text, f"{profile}: expected {line!r} in\n{text}"
    # The same case in-process (no FUSE): the engine itself agrees with the kernel, so
    # the divergence is the front end's.
    from overlaysim.testing.simulator import simulator_factory

    assert run_case(stack, ops, options, simulator_factory, oracle_factory=kernel_mount).ok


def test_reads_past_st_size_are_what_the_sanitizer_removes() -> None:
    """A metacopy file recording less than its data's size: the kernel reads the data to its
    end, FUSE stops at st_size. Padded by F.sanitize, both read the same."""
    marks = {L.TRUSTED_PREFIX + "metacopy": b"", L.TRUSTED_PREFIX + "redirect": b"/a"}
    stack = L.LayerStack((L.Dir({"a": L.File(b"", xattrs=marks)}),), L.Dir(),
                         data=(L.Dir({"a": L.File(b"xyz")}),))  # fmt: skip
    ops = [O.Open("a", os.O_RDONLY, 0o644, None, 16)]
    raw = run_case(stack, ops, "metacopy=on", F.sim_fuse_factory, oracle_factory=kernel_mount,
                   compare=F.COMPARE, stop_at_first=False)  # fmt: skip
    assert [(str(k), str(f)) for k, f in raw.results] == [("ok data=b'xyz'", "ok data=b''")]
    padded = F.sanitize(stack)
    assert padded.data == stack.data and padded.upper == stack.upper
    assert padded.lowers[0].entries["a"] == L.File(b"\0\0\0", xattrs=marks)
    assert TARGET is not None and TARGET.run(stack, ops, "metacopy=on").ok


def test_cannot_express_is_one_explicit_list() -> None:
    assert F.IGNORE == ()  # accounted for item by item, never by dropping a field
    assert F.CANNOT_EXPRESS and all(x.what and x.why and x.handled for x in F.CANNOT_EXPRESS)
    assert len({x.what for x in F.CANNOT_EXPRESS}) == len(F.CANNOT_EXPRESS)


def test_the_target_is_the_kernel_judging_the_fuse_mount() -> None:
    assert TARGET is not None
    assert TARGET.sides() == (kernel_mount, F.sim_fuse_factory)
    assert TARGET.compare == ("merged", "upper", "work") and TARGET.available()[0]
    for left_out in F.NOT_RUN:
        with pytest.raises(TargetError, match="cannot run profile"):
            TARGET.options_for(left_out)


def test_life_cycle_writes_the_upper_back_and_leaves_nothing() -> None:
    stack = L.LayerStack((L.Dir({"a": L.File(b"x"), "b": L.File(b"y")}),), L.Dir())
    m = F.sim_fuse_factory(stack, "")
    assert isinstance(m, F.SimFuseOverlay)
    proc = m.proc
    try:
        assert proc is not None and proc.poll() is None
        assert m.upper_root is None and m.work_root is None  # not on disk until written back
        with open(os.path.join(m.mount_path, "a"), "ab") as f:
            f.write(b"z")
        os.unlink(os.path.join(m.mount_path, "b"))
        m.umount()
        assert proc.poll() == 0 and m.upper_root is not None
        with open(os.path.join(m.upper_root, "a"), "rb") as f:
            assert f.read() == b"xz"  # copied up, written back
        wh = os.lstat(os.path.join(m.upper_root, "b"))
        assert (os.major(wh.st_rdev), os.minor(wh.st_rdev)) == (0, 0)  # a char 0/0 whiteout
        m.remount()
        assert sorted(os.listdir(m.mount_path)) == ["a"]
    finally:
        m.close()
    assert not os.path.exists(m.base) and m.proc is None
    assert m.mount_path not in _fuse_mounts()


def test_a_refused_mount_is_an_oserror_with_the_daemons_reason() -> None:
    with pytest.raises(OSError, match="overlaysim mount refused the mount"):
        F.sim_fuse_factory(L.LayerStack((L.Dir(),), L.Dir()), "redirect_dir=bogus")
    assert not _fuse_mounts()


def test_a_diverging_case_gets_a_script_mounting_both() -> None:
    assert TARGET is not None and TARGET.script is not None
    stack, ops, options, _ = next(iter(REPRODUCERS.values()))
    report = TARGET.run(stack, [O.Stat("."), *ops], options)
    assert not report.ok
    text = TARGET.script(report)
    assert 'overlaysim mount -o "lowerdir=' in text and "mount -t overlay" in text
    assert 'overlaysim umount "$B"/f/m' in text


def test_overlaysim_fuzz_against_the_fuse_mount(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from overlaysim.cli import main

    out = str(tmp_path / "o")
    r = CliRunner().invoke(main, ["fuzz", "--against", F.NAME, "--sequences", "3", "--shard-size",
                                  "3", "--ops", "5", "--json", "--out", out])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["sequences"] == 3
    assert summary["target"] == F.NAME and summary["signatures"] == {}
    assert set(summary["profiles"]) == set(F.PROFILES)
    for left_out in F.NOT_RUN:
        refused = CliRunner().invoke(main, ["fuzz", "--against", F.NAME, "--profile", left_out,
                                            "--out", str(tmp_path / "r")])  # fmt: skip
        assert refused.exit_code == 2 and "cannot run profile" in refused.stderr
    assert not _fuse_mounts()
