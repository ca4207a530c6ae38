"""Divergence signatures group sightings of one bug and separate different bugs."""

from __future__ import annotations

from overlaysim.fuzz.signature import dirname, signature
from overlaysim.testing import differential as D
from overlaysim.testing import layers as L
from overlaysim.testing import observe
from overlaysim.testing import ops as O
from overlaysim.testing.ops import Result

STACK = L.LayerStack((L.Dir(),))


def _sig(*divs: D.Divergence) -> str:
    return signature(D.CaseReport(STACK, [], "", divergences=list(divs)))


def test_a_passing_case_has_no_signature() -> None:
    assert signature(D.CaseReport(STACK, [], "")) == ""


def test_op_results_group_by_kind_and_errno_pair_not_path() -> None:
    a = _sig(D.Divergence("op 3", O.Unlink("a/b"), Result(errno="ENOENT"), Result()))
    b = _sig(D.Divergence("op 17", O.Unlink("c"), Result(errno="ENOENT"), Result()))
    other_errno = _sig(D.Divergence("op 3", O.Unlink("a/b"), Result(errno="EISDIR"), Result()))
    other_op = _sig(D.Divergence("op 3", O.Rmdir("a/b"), Result(errno="ENOENT"), Result()))
    assert a == b
    assert len({a, other_errno, other_op}) == 3
    assert "unlink" in a and "ENOENT" in a and "a/b" not in a


def test_rename_flags_and_stat_fields_are_part_of_the_kind() -> None:
    plain = _sig(D.Divergence("op 0", O.Rename("a", "b"), Result(errno="EXDEV"), Result()))
    exch = _sig(D.Divergence("op 0", O.Rename("a", "b", O.RENAME_EXCHANGE), Result(errno="EXDEV"),
                             Result()))  # fmt: skip
    assert plain != exch and "exchange" in exch
    mode = _sig(D.Divergence("op 0", O.Stat("a"), Result(("file", 0o644, 0, 0, 1, 1, None)),
                             Result(("file", 0o600, 0, 0, 1, 1, None))))  # fmt: skip
    size = _sig(D.Divergence("op 0", O.Stat("a"), Result(("file", 0o644, 0, 0, 1, 1, None)),
                             Result(("file", 0o644, 0, 0, 2, 1, None))))  # fmt: skip
    assert mode != size and "mode" in mode and "size" in size


def _tree_div(where: str, a: dict[str, observe.Entry], b: dict[str, observe.Entry]) -> D.Divergence:
    return D.Divergence(where, detail=observe.diff(observe.Snapshot(a), observe.Snapshot(b)))


def test_tree_divergences_name_the_field_and_xattr_but_not_the_path() -> None:
    f = observe.Entry("file", 0o644, 0, 0, 0, 1)
    red = observe.Entry("dir", 0o755, 0, 0, xattrs=(("trusted.overlay.redirect", b"/x"),))
    bare = observe.Entry("dir", 0o755, 0, 0)
    x = _sig(_tree_div("after op 9: upper", {"a": red}, {"a": bare}))
    y = _sig(_tree_div("after op 19: upper", {"q/r": red}, {"q/r": bare}))
    assert x == y and "overlay.redirect" in x and "q/r" not in x
    wh = _sig(_tree_div("after op 9: merged", {"a": f}, {"a": observe.Entry("whiteout")}))
    gone = _sig(_tree_div("after op 9: merged", {"a": f}, {}))
    assert len({x, wh, gone}) == 3
    assert _sig(_tree_div("after remount: merged", {"a": f}, {})) != gone  # stage matters


def test_which_user_xattrs_were_lost_does_not_split_a_bug() -> None:
    def lost(*names: str) -> str:
        with_x = observe.Entry("file", 0o644, 0, 0, 0, 1, xattrs=tuple((n, b"1") for n in names))
        return _sig(_tree_div("after op 9: merged", {"a": with_x},
                              {"a": observe.Entry("file", 0o644, 0, 0, 0, 1)}))  # fmt: skip

    assert lost("user.x") == lost("user.x", "trusted.t") == lost("user.y")
    assert lost("user.x") != lost("trusted.overlay.opaque")


def test_crashes_group_by_exception_and_function() -> None:
    def crash(kind: str, fn: str) -> str:
        return _sig(D.Divergence("crash", oracle="-", simulator=f"{kind}: boom",
                                 detail=[f'  File "x.py", line 3, in {fn}', f"{kind}: boom"]))  # fmt: skip

    assert crash("KeyError", "copy_up") == crash("KeyError", "copy_up")
    assert len({crash("KeyError", "copy_up"), crash("KeyError", "rename"),
                crash("ValueError", "copy_up")}) == 3  # fmt: skip


def test_dirnames_are_safe_and_distinct() -> None:
    sigs = ["checkpoint.merged.extra+listing", "checkpoint/merged extra", "x" * 300,
            "rename(exchange).result.EXDEV~ok"]  # fmt: skip
    names = [dirname(s) for s in sigs]
    assert len(set(names)) == len(names)
    assert all("/" not in n and " " not in n and len(n) < 100 for n in names)
