"""The kernel oracle toolkit against real overlay mounts.

The differential runner is exercised three ways: kernel against kernel (every normalisation
must hold, so there is nothing to report), kernel against the reference model on generated
sequences where both must agree, and against deliberately wrong simulators (the divergence
must be reported). Generated shell scripts are run and must reproduce the kernel's results.
"""

from __future__ import annotations

import errno
import os
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim.testing import differential as D
from overlaysim.testing import kernel as K
from overlaysim.testing import layers as L
from overlaysim.testing import observe, reference
from overlaysim.testing import ops as O
from overlaysim.testing import strategies as S

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _mountable() -> None:
    ok, why = K.can_mount()
    if not ok:
        pytest.skip(why)


STACK = L.LayerStack(
    lowers=(
        L.Dir({"f": L.File(b"lower f"), "d": L.Dir({"a": L.File()}), "g": L.File(b"g")}),
        L.Dir({"d": L.Dir({"b": L.File()}), "e": L.Dir()}),
    ),
)
FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))  # fmt: skip


def test_kernel_overlay_mounts_umounts_and_cleans_up() -> None:
    with K.KernelOverlay(STACK, "redirect_dir=on") as k:
        info = K.mount_info(k.mount_path)
        assert info is not None and info.fstype == "overlay"
        assert info.super_options == f"rw,{k.options},uuid=on"
        assert sorted(os.listdir(k.mount_path)) == ["d", "e", "f", "g"]
        k.umount()
        assert K.mount_info(k.mount_path) is None
        k.remount()
        assert sorted(os.listdir(f"{k.mount_path}/d")) == ["a", "b"]
        base = k.base
    assert not os.path.exists(base)


def test_snapshots_record_the_kernels_decisions() -> None:
    with K.KernelOverlay(STACK) as k:
        for op in (O.Unlink("f"), O.Unlink("d/a"), O.Unlink("d/b"), O.Rmdir("d"), O.Mkdir("d"),
                   O.Write("g", b"+", append=True), O.Rename("e", "e2")):  # fmt: skip
            O.apply(op, os, k.mount_path)
        assert k.upper_root is not None and k.work_root is not None
        up = observe.snapshot(os, k.upper_root, upper_prefix=L.TRUSTED_PREFIX).entries
        assert up["f"].type == "whiteout"
        assert ("trusted.overlay.opaque", b"y") in up["d"].xattrs  # mkdir over a whiteout
        assert ("trusted.overlay.origin", None) in up["g"].xattrs  # presence only
        assert ("trusted.overlay.impure", b"y") in up[""].xattrs
        assert ("trusted.overlay.uuid", None) in up[""].xattrs
        assert "e2" not in up  # dir rename gives EXDEV by default: nothing happened
        merged = observe.snapshot(os, k.mount_path)
        assert merged.distinct_devs == 1 and merged.entries["d"].listing == ()
        k.umount()
        work = observe.snapshot_work(os, k.work_root)
        assert set(work.entries) == {"", "work", "work/#"}  # the whiteout master stays
        assert observe.check_work(work) == []


@settings(FAST, max_examples=8)
@given(st.data())
def test_kernel_agrees_with_itself(data: st.DataObject) -> None:
    """Two kernel mounts of the same case: whatever differs must have been normalised."""
    case = data.draw(S.cases(min_ops=20, max_ops=25))
    report = D.run_case(case.stack, case.ops, case.options, K.kernel_factory,
                        ignore=("links", "inodes") if case.profile == "userxattr" else ())  # fmt: skip
    assert report.ok, str(report)
    assert len(report.results) == len(case.ops)


@pytest.mark.parametrize("profile", sorted(S.PROFILES))
def test_kernel_agrees_with_reference_model(profile: str) -> None:
    """On stacks without listing quirks, the flat reference model must match the kernel's
    merged view op by op (userxattr: hard links to special files change st_ino there;
    nfs_export=on: every copy-up is indexed, so after a remount a single-link file counts its
    index entry too, st_nlink 2 on Linux 6.18 — a link count the flat model does not keep)."""
    ignore: tuple[str, ...] = ()
    if profile == "userxattr":
        ignore = ("links", "inodes")
    elif profile == "nfs_export=on":
        ignore = ("nlink",)

    @settings(FAST, max_examples=25)
    @given(S.cases(profile, hardlinks=False))
    def check(case: S.Case) -> None:
        stack = reference.sanitize(case.stack)
        report = D.run_case(stack, case.ops, case.options, reference.reference_factory,
                            compare=("merged",), ignore=ignore)  # fmt: skip
        assert report.ok, f"{report}\n{report.script()}"

    check()


class _NoExdev(reference.ReferenceModel):
    """A wrong simulator: renames lower directories as if redirect_dir were on."""

    def __init__(self, stack: L.LayerStack, options: str) -> None:
        super().__init__(stack, options)
        self.os.redirect = True


def test_divergences_are_reported() -> None:
    report = D.run_case(STACK, [O.Rename("d", "d2"), O.Listdir(".")], "", _NoExdev)
    assert not report.ok and report.divergences[0].where == "op 0"
    assert (report.divergences[0].oracle, report.divergences[0].simulator) == (
        O.Result(errno="EXDEV"), O.Result())
    stray = L.LayerStack(lowers=(L.Dir({"d": L.Dir({"w": L.Whiteout()})}), L.Dir()))
    report = D.run_case(stray, [O.Listdir("d")], "", reference.reference_factory, compare=("merged",))
    assert "op 0" in str(report) and "'w'" in str(report)  # listed by the kernel, not stat-able

    def refuses(stack: L.LayerStack, options: str) -> Any:
        raise OSError(errno.EINVAL, "no")

    report = D.run_case(STACK, [], "index=off", refuses)
    assert [str(d) for d in report.divergences] == ["mount: oracle mounted, simulator EINVAL"]
    assert D.run_case(STACK, [], "bogus", refuses).ok  # both refuse the mount: agreement


def test_script_replays_a_case_on_the_kernel() -> None:
    stack = L.LayerStack(
        lowers=(L.Dir({"f": L.File(b"a\0b\n", mode=0o600, uid=7, xattrs={"user.k": b"\x01"}),
                       "s": L.Symlink("f"), "w": L.Whiteout(), "c": L.Device("chr", 1, 3),
                       "h": L.HardLink("f"), "d": L.Dir({"x": L.Fifo()}, opaque="y",
                                                        mtime_ns=10**18)}),
                L.Dir({"w": L.File(), "d": L.Dir({"hidden": L.File()})})),
    )  # fmt: skip
    ops = [O.Open("f", os.O_RDONLY, read=8), O.Listdir("."), O.Listdir("d"), O.Stat("w"),
           O.Mknod("z", "chr", 0, 0), O.Rename("d", "d2"), O.Rename("f", "g", O.RENAME_WHITEOUT),
           O.Write("h", b"!", append=True), O.GetXattr("f", "user.k"), O.Readlink("s")]  # fmt: skip
    with K.KernelOverlay(stack) as k:
        expected = [O.apply(op, os, k.mount_path) for op in ops]
    script = D.CaseReport(stack, ops, "").script()
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    lines = [line for line in out.stdout.splitlines() if line.startswith("op ")]
    assert len(lines) == len(ops), out.stderr
    for line, want in zip(lines, expected, strict=True):
        got = line.split(": ", 1)[1]
        assert got.split()[0] == ("ok" if want.ok else want.errno), (line, want)
    assert "data=b'a\\x00b\\n'" in lines[0] and "['c', 'd', 'f', 'h', 's']" in lines[1]
