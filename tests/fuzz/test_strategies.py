"""The public strategies module: re-exports without copies, and the pieces it adds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import overlaysim.strategies as S
from overlaysim.errors import UsageError
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing import strategies as internal
from overlaysim.testing.simulator import simulator_factory

FAST = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))  # fmt: skip


def test_reexports_are_the_internal_objects() -> None:
    # One implementation: the public names are the very generators the CI differential uses.
    for name in ("NAMES", "OP_KINDS", "PROFILES", "Case", "cases", "layers", "layer_stacks",
                 "op_sequences", "paths", "stack_paths", "files", "dirs", "leaves"):  # fmt: skip
        assert getattr(S, name) is getattr(internal, name), name
    assert S.layer_trees is internal.layers
    assert set(S.__all__) <= set(dir(S))


def test_mount_options_and_profile_names_follow_the_profile_table() -> None:
    for name, (options, upper) in S.PROFILES.items():
        assert S.mount_options(name) == options
        assert (name in S.profile_names(upper=True)) == upper
        assert (name in S.profile_names(upper=False)) == (not upper)
    assert set(S.profile_names()) == set(S.PROFILES)
    with pytest.raises(UsageError, match="unknown option profile"):
        S.mount_options("no-such-profile")
    with pytest.raises(UsageError):
        S.profiles(("default", "nope"))


def test_profiles_draw_only_the_given_names_and_shrink_to_default() -> None:
    assert find(S.profiles(), lambda _: True) == "default"
    chosen = ("userxattr", "volatile")
    assert find(S.profiles(chosen), lambda p: p in chosen) in chosen

    @FAST
    @given(S.profiles(chosen))
    def check(p: str) -> None:
        assert p in chosen

    check()


@pytest.mark.parametrize("profile", sorted(S.PROFILES))
def test_profile_stacks_have_the_profile_shape(profile: str) -> None:
    _, has_upper = S.PROFILES[profile]

    @FAST
    @given(S.profile_stacks(profile, hardlinks=False))
    def check(stack: L.LayerStack) -> None:
        assert (stack.upper is not None) == has_upper
        assert len(stack.lowers) >= 1
        for layer in stack.lowers:
            assert not any(isinstance(n, L.HardLink) for _, n in L.walk(layer))

    check()


def _has_metacopy(stack: L.LayerStack) -> bool:
    return any(isinstance(n, L.File) and L.TRUSTED_PREFIX + "metacopy" in n.xattrs
               for layer in stack.lowers for _, n in L.walk(layer))  # fmt: skip


def _shape(stack: L.LayerStack) -> tuple[bool, bool, bool]:
    return stack.upper is not None, bool(stack.data), stack.separate_fs


@pytest.mark.parametrize("profile", sorted(S.PROFILES))
def test_profile_stacks_have_the_shapes_cases_draw(profile: str) -> None:
    """profile_stacks repeats the stack half of cases() (see its docstring for why): the two
    must give stacks of the same shapes, so that a profile added to one shows up here."""
    seen: dict[str, set[tuple[bool, bool, bool]]] = {"cases": set(), "stacks": set()}
    metacopy: dict[str, bool] = {"cases": False, "stacks": False}

    def note(side: str, stack: L.LayerStack) -> None:
        seen[side].add(_shape(stack))
        metacopy[side] |= _has_metacopy(stack)

    @FAST
    @given(S.cases(profile, min_ops=0, max_ops=0))
    def from_cases(case: S.Case) -> None:
        note("cases", case.stack)

    @FAST
    @given(S.profile_stacks(profile))
    def from_stacks(stack: L.LayerStack) -> None:
        note("stacks", stack)

    from_cases()
    from_stacks()
    assert seen["cases"] == seen["stacks"]
    assert metacopy["cases"] == metacopy["stacks"]


def test_metacopy_profile_stacks_carry_metacopy_files() -> None:
    seen: list[bool] = []

    @FAST
    @given(S.profile_stacks("metacopy=on"))
    def sometimes(stack: L.LayerStack) -> None:
        seen.append(_has_metacopy(stack))

    sometimes()
    assert any(seen), "no metacopy file in 25 metacopy=on stacks"

    @FAST
    @given(S.profile_stacks("default"))
    def never_elsewhere(stack: L.LayerStack) -> None:
        assert not _has_metacopy(stack)

    never_elsewhere()


def test_operations_respect_kinds_and_favour_the_pool() -> None:
    @FAST
    @given(S.operations(frozenset({"mkdir", "unlink"})))
    def only_kinds(op: O.Op) -> None:
        assert isinstance(op, O.Mkdir | O.Unlink)

    only_kinds()
    # "zz" is not in the name pool: only the pool can produce it.
    op = find(S.operations(frozenset({"unlink"}), pool=("zz",)), lambda o: o.paths() == ("zz",))
    assert op == O.Unlink("zz")
    with pytest.raises(UsageError, match="unknown operation kinds"):
        S.operations(frozenset({"mkdir", "fork"}))
    with pytest.raises(UsageError):
        S.operations(frozenset())


def test_cases_apply_to_a_simulated_overlay() -> None:
    """Generated operations are well-formed for any os-like module: every outcome is a result
    or an errno, never an exception out of ``apply``."""
    ran = []

    @settings(max_examples=15, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(sorted(S.PROFILES)).flatmap(lambda p: S.cases(p, min_ops=5, max_ops=10)))
    def check(case: S.Case) -> None:
        m = simulator_factory(case.stack, case.options)
        try:
            results = [O.apply(op, m.os, m.mount_path) for op in case.ops]
        finally:
            m.close()
        assert len(results) == len(case.ops)
        assert all(r.errno is None or r.errno.startswith("E") for r in results)
        ran.append(case.profile)

    check()
    assert len(ran) >= 10
