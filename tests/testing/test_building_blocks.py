"""The oracle toolkit's building blocks on the real filesystem (no mount needed).

Layers are written with the real ``os`` into temp dirs and read back with the snapshot code;
operations run on a plain directory. Whiteouts, devices and trusted.* xattrs need root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from overlaysim.testing import layers as L
from overlaysim.testing import observe, reference, strategies
from overlaysim.testing import ops as O

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts, devices and trusted.* xattrs need root")

SPEC = L.Dir(
    {
        "f": L.File(b"data", mode=0o640, uid=1000, gid=100, xattrs={"user.k": b"v"}, mtime_ns=10**18),
        "d": L.Dir({"x": L.File(b"1"), "wh": L.Whiteout(), "xw": L.Whiteout("xattr")}, opaque="y"),
        "s": L.Symlink("f"),
        "h": L.HardLink("f"),
        "dev": L.Device("chr", 1, 3),
        "p": L.Fifo(),
    },
    mode=0o711,
)  # fmt: skip


@needs_root
def test_build_writes_every_kind(tmp_path: Path) -> None:
    root = str(tmp_path / "layer")
    L.build(SPEC, os, root)
    snap = observe.snapshot(os, root, upper_prefix=L.TRUSTED_PREFIX)
    e = snap.entries
    assert e[""].mode == 0o711
    assert (e["f"].type, e["f"].mode, e["f"].uid, e["f"].gid, e["f"].size) == ("file", 0o640, 1000, 100, 4)
    assert ("user.k", b"v") in e["f"].xattrs and e["f"].links == ("h",) and e["h"].links == ("f",)
    assert os.stat(f"{root}/f").st_mtime_ns == 10**18
    assert e["d/wh"].type == "whiteout" and e["s"].target == "f"
    assert ("trusted.overlay.opaque", b"y") in e["d"].xattrs
    assert ("trusted.overlay.whiteout", b"y") in e["d/xw"].xattrs and e["d/xw"].size == 0
    assert e["dev"].rdev == (1, 3) and e["p"].type == "fifo"


@needs_root
def test_build_stack_and_options(tmp_path: Path) -> None:
    stack = L.LayerStack(lowers=(L.Dir({"a": L.File()}), L.Dir(opaque=None)), upper=L.Dir())
    paths = L.build_stack(stack, os, str(tmp_path / "a,b"), options="userxattr")
    assert paths.lowers == (f"{tmp_path}/a,b/l0", f"{tmp_path}/a,b/l1")
    assert paths.options("index=off") == (
        f"lowerdir={tmp_path}/a\\,b/l0:{tmp_path}/a\\,b/l1,upperdir={tmp_path}/a\\,b/u,"
        f"workdir={tmp_path}/a\\,b/w,index=off"
    )
    assert L.xattr_prefix_for("index=off,userxattr") == L.USER_PREFIX


def test_ops_results_on_a_plain_directory(tmp_path: Path) -> None:
    root = str(tmp_path)
    run = lambda op: O.apply(op, os, root)  # noqa: E731
    assert run(O.Mkdir("d")) == O.Result()
    assert run(O.Open("d/f", os.O_WRONLY | os.O_CREAT, write=b"abc", read=None)).value == 3
    assert run(O.Open("d/f", os.O_RDONLY, read=16)).data == b"abc"
    assert run(O.Write("d/f", b"de", append=True)).ok
    want = ("file", 0o644 & ~_umask(), os.geteuid(), os.getegid(), 5, 1, None)
    assert run(O.Stat("d/f")).value == want
    assert run(O.Rmdir("d")).errno == "ENOTEMPTY"
    assert run(O.Rename("d/f", "d/g", O.RENAME_NOREPLACE)).ok
    run(O.Open("d/f", os.O_WRONLY | os.O_CREAT))
    assert run(O.Rename("d/f", "d/g", O.RENAME_NOREPLACE)).errno == "EEXIST"
    assert run(O.Rename("d/f", "d/g", O.RENAME_EXCHANGE)).ok
    assert run(O.Listdir("d")).value == ["f", "g"]
    assert run(O.Symlink("g", "d/s")).ok and run(O.Readlink("d/s")).value == "g"
    assert run(O.SetXattr("d/g", "user.a", b"1", os.XATTR_REPLACE)).errno == "ENODATA"
    assert run(O.Unlink("nope")).errno == "ENOENT" and run(O.Unlink("d")).errno == "EISDIR"
    with pytest.raises(ValueError):
        run(O.Unlink("../escape"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_work_snapshot_normalisation_and_rules() -> None:
    snap = observe.Snapshot({"": observe.Entry("dir", 0o755), "work": observe.Entry("dir", 0),
                             "work/#1f": observe.Entry("whiteout")})  # fmt: skip
    assert observe.check_work(snap) == []
    snap.entries["work/#20"] = observe.Entry("whiteout")
    snap.entries["index"] = observe.Entry("dir", 0)
    problems = observe.check_work(snap)
    assert "2 whiteout masters left in work/" in problems and "unexpected 'index' in the work dir" in problems
    assert observe.check_work(snap, index=True) == ["2 whiteout masters left in work/"]


@needs_root
def test_snapshot_work_renames_temp_names(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "work").mkdir(parents=True)
    os.mknod(root / "work" / "#a3", stat.S_IFCHR, os.makedev(0, 0))
    os.chmod(root / "work", 0)
    snap = observe.snapshot_work(os, str(root))
    assert set(snap.entries) == {"", "work", "work/#"} and snap.entries["work"].listing == ("#",)


def test_reference_merge_follows_the_lookup_rules() -> None:
    stack = L.LayerStack(
        upper=L.Dir({"gone": L.Whiteout(), "o": L.Dir({"u": L.File()}, opaque="y")}),
        lowers=(
            L.Dir({"dfd": L.Dir({"one": L.File()}), "f": L.File(b"top"), "o": L.Dir({"hidden": L.File()})}),
            L.Dir({"dfd": L.File(), "f": L.File(b"low"), "gone": L.File(), "d": L.Dir({"x": L.File()})}),
            L.Dir({"dfd": L.Dir({"three": L.File()}), "d": L.Dir({"y": L.File()},
                   xattrs={"trusted.overlay.overlay.k": b"1", "trusted.overlay.opaque": b"x"})}),
        ),
    )  # fmt: skip
    tree, origin = reference.merge(stack)
    assert set(tree.entries) == {"dfd", "f", "o", "d"}
    assert set(tree.entries["dfd"].entries) == {"one"}  # a file in L2 stops the merge
    assert tree.entries["f"] == L.File(b"top") and set(tree.entries["o"].entries) == {"u"}
    assert set(tree.entries["d"].entries) == {"x", "y"}
    assert origin == {"", "dfd", "d"}  # "o" is opaque in the upper: a pure upper dir
    # private xattrs are hidden; escaped ones show one level unescaped
    assert dict(tree.entries["d"].xattrs) == {} and reference.merge(L.LayerStack(
        lowers=(L.Dir({"z": L.Dir(xattrs={"trusted.overlay.overlay.k": b"1"})}),))
    )[0].entries["z"].xattrs == {"trusted.overlay.k": b"1"}  # fmt: skip


def test_sanitize_keeps_only_what_a_flat_dir_can_show() -> None:
    stack = L.LayerStack(
        upper=L.Dir({"pure": L.Dir({"stray": L.Whiteout()}), "m": L.Dir({"wo": L.Whiteout()})}),
        lowers=(L.Dir({"m": L.Dir({"wo": L.File()}), "h": L.HardLink("m/wo"),
                       "x": L.Whiteout("xattr"), "o": L.Dir(opaque="x")}),),
    )  # fmt: skip
    clean = reference.sanitize(stack)
    assert clean.upper is not None and clean.upper.entries["pure"] == L.Dir()
    assert "wo" in clean.upper.entries["m"].entries  # a whiteout in a merged dir is kept
    assert set(clean.lowers[0].entries) == {"m", "o"} and clean.lowers[0].entries["o"] == L.Dir()


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(strategies.cases())
def test_generated_cases_stay_inside_and_are_long_enough(case: strategies.Case) -> None:
    assert 2 <= len(case.stack.lowers) <= 4 and len(case.ops) >= 20
    assert (case.stack.upper is None) == (case.profile == "ro multi-lower")
    for op in case.ops:
        assert all(not p.startswith("/") and ".." not in p.split("/") for p in op.paths())
    for layer in case.stack.lowers:
        for _, node in L.walk(layer):
            if isinstance(node, L.Symlink):
                assert not node.target.startswith("/") and ".." not in node.target.split("/")
