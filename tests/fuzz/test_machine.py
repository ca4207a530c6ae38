"""The state machine and the twin it drives: judged against the kernel where mount(2) is
permitted (else the flat reference model), a planted fault found, shrunk and reproduced."""

from __future__ import annotations

import errno
import json
import random
import shutil
import subprocess
import sys
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.internal.conjecture.choice import choice_permitted
from hypothesis.internal.conjecture.data import ConjectureData
from hypothesis.internal.conjecture.providers import PrimitiveProvider
from hypothesis.stateful import rule, run_state_machine_as_test

import overlaysim.strategies as S
from overlaysim.errors import UsageError
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing import stability
from overlaysim.testing.kernel import can_mount
from overlaysim.testing.machine import OverlayMachine, machine_settings
from overlaysim.testing.simulator import SimOverlay, simulator_factory
from overlaysim.testing.twin import (
    Judge,
    OverlayTwin,
    TwinDivergence,
    resolve_judge,
    stack_from_spec,
    tree_from_spec,
)

# What HypoFuzz finds and fuzzes (README, "Use it in your own tests"); in CI a short run.
TestOverlayMachine = OverlayMachine.TestCase
TestOverlayMachine.settings = machine_settings(max_examples=25, stateful_step_count=12,
                                               database=None, derandomize=True)  # fmt: skip

SMALL = machine_settings(max_examples=8, stateful_step_count=8, database=None, derandomize=True)


@pytest.mark.parametrize("profile", ["ro multi-lower", "redirect_dir=on", "userxattr", "volatile"])
def test_machine_agrees_on_other_profiles(profile: str) -> None:
    class Machine(OverlayMachine):
        pass

    Machine.profile = profile
    run_state_machine_as_test(Machine, settings=SMALL)


# --- a planted fault ------------------------------------------------------------------------
class _ModeLosingOs:
    """The simulator's os, except that mkdir forgets the mode it was given."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self._real.mkdir(path, 0o755)


def mode_losing_simulator(stack: L.LayerStack, options: str) -> SimOverlay:
    m = simulator_factory(stack, options)
    m.os = _ModeLosingOs(m.os)
    return m


class FaultyMachine(OverlayMachine):
    op_kinds = frozenset({"mkdir", "unlink", "listdir"})

    def simulator(self) -> Any:
        return mode_losing_simulator

    def stacks(self, judge: Judge) -> st.SearchStrategy[L.LayerStack]:
        # One fixed stack: shrinking then works on the steps alone (a drawn stack shrinks
        # too, but takes thousands of kernel mounts to do it).
        return st.just(stack_from_spec({"lowers": [{"a": "x", "d": {"e": ""}}], "upper": {}}))


def test_planted_fault_is_found_shrunk_and_reproduced() -> None:
    with pytest.raises(TwinDivergence) as info:
        run_state_machine_as_test(FaultyMachine, settings=machine_settings(
            max_examples=100, stateful_step_count=6, database=None, derandomize=True))  # fmt: skip
    err = info.value
    # Shrunk to at most five steps (the bar) ending with the operation that shows the
    # fault, a mkdir with a mode other than 0755 (stateful shrinking may keep a step or two
    # before it that it cannot prove redundant).
    runs = [line for line in err.script.splitlines() if line.startswith("run ")]
    assert 1 <= len(runs) <= 5, err.script
    assert "Mkdir(" in runs[-1] and "mode=448" in runs[-1]
    assert "mode" in "\n".join(err.divergence.detail)
    assert "--- reproducer" in str(err)
    if not can_mount()[0] or shutil.which("bash") is None:
        pytest.skip(f"the reproducer needs a real mount: {can_mount()[1]}")
    # The script, run on the kernel, shows what the kernel did: the new dir is drwx------.
    out = subprocess.run(["bash", "-c", err.script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"op {len(runs) - 1}: ok" in out.stdout
    assert "drwx------" in out.stdout


def test_subclass_hooks_restrict_operations_and_add_rules() -> None:
    seen: list[O.Op] = []
    extra: list[list[str]] = []

    class Narrow(OverlayMachine):
        op_kinds: ClassVar[frozenset[str] | None] = frozenset({"mkdir", "rmdir"})

        def operations(self, pool: tuple[str, ...]) -> st.SearchStrategy[O.Op]:
            return super().operations(pool).map(lambda op: seen.append(op) or op)  # type: ignore[func-returns-value]

        @rule()
        def list_root(self) -> None:
            if self.twin is not None and self.twin.mounted:
                extra.append(self.twin.os.listdir("."))

    run_state_machine_as_test(Narrow, settings=SMALL)
    assert seen and all(isinstance(op, O.Mkdir | O.Rmdir) for op in seen)
    assert extra, "the added rule never ran"


def test_judge_swapped_for_the_reference_model() -> None:
    judges: list[str] = []

    class Flat(OverlayMachine):
        judge_name = "reference"

        def make_judge(self) -> Judge:
            j = super().make_judge()
            judges.append(j.name)
            return j

    run_state_machine_as_test(Flat, settings=SMALL)
    assert set(judges) == {"reference"}


# --- the twin -------------------------------------------------------------------------------
def test_layer_specs() -> None:
    tree = tree_from_spec({"a": "text", "b": b"\0", "d": {"e": L.Symlink("a")}})
    assert tree == L.Dir({"a": L.File(b"text"), "b": L.File(b"\0"),
                          "d": L.Dir({"e": L.Symlink("a")})})  # fmt: skip
    assert stack_from_spec(None) == L.LayerStack((L.Dir(),), L.Dir())
    assert stack_from_spec({"lower": {"a": "x"}, "upper": None}) == L.LayerStack(
        (L.Dir({"a": L.File(b"x")}),), None)  # fmt: skip
    stack = L.LayerStack((L.Dir(),))
    assert stack_from_spec(stack) is stack
    for bad in ({"lowers": []}, {"lower": {}, "lowers": [{}]}, {"uper": {}},
                {"lower": {"a/b": "x"}}, {"lower": {"a": 3}}):  # fmt: skip
        with pytest.raises(UsageError):
            stack_from_spec(bad)


def test_twin_runs_both_sides_and_raises_the_shared_errno() -> None:
    spec = {"lowers": [{"d": {"e": "1"}}, {"a": "low"}], "upper": {}}
    with OverlayTwin(spec, judge="auto") as ov:
        assert ov.os.read("a") == b"low"
        assert ov.os.write("a", b"!", append=True) == 1
        assert ov.os.read("a") == b"low!"
        with pytest.raises(OSError) as e:
            ov.os.rmdir("d")
        assert e.value.errno == errno.ENOTEMPTY
        ov.os.unlink("d/e")
        ov.os.rmdir("d")
        assert ov.os.listdir() == ["a"]
        assert [type(o).__name__ for o in ov.ops][-4:-1] == ["Rmdir", "Unlink", "Rmdir"]
        assert ov.results[0][0] == ov.results[0][1] or ov.judge.factory is None


def test_twin_mount_refusals_are_compared() -> None:
    # Refused alike: the errno comes back as it would from mount(2).
    with pytest.raises(OSError) as e:
        OverlayTwin({"lower": {}}, "redirect_dir=bogus", judge="auto")
    assert e.value.errno == errno.EINVAL
    if not can_mount()[0]:
        pytest.skip(can_mount()[1])

    def refusing(stack: L.LayerStack, options: str) -> SimOverlay:
        raise OSError(errno.EINVAL, "refused")

    with pytest.raises(TwinDivergence, match="mount"):
        OverlayTwin({"lower": {}}, judge="kernel", simulator=refusing)


def test_kernel_judge_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import overlaysim.testing.kernel as K

    monkeypatch.setattr(K, "can_mount", lambda: (False, "needs root (test)"))
    with pytest.raises(UsageError, match=r"needs root \(test\)"):
        resolve_judge("kernel")
    assert resolve_judge("auto").name == "reference"
    assert resolve_judge("none").factory is None


def test_reference_judge_refuses_stacks_it_cannot_represent() -> None:
    with pytest.raises(UsageError, match="cannot represent"):
        OverlayTwin({"lower": {"a": "x", "b": L.HardLink("a")}}, judge="reference")


def test_a_fuzz_target_can_be_the_judge() -> None:
    """``simulator:volatile,default`` (overlaysim.fuzz.targets): the simulator with volatile
    judged against itself without; the kernel says they agree."""
    judge = resolve_judge("simulator")
    assert judge.judged is not None
    with OverlayTwin({"lower": {"a": "x"}}, S.mount_options("volatile"), judge=judge) as ov:
        ov.os.write("a", b"y")
        assert ov.os.read("a") == b"y"


# --- coverage stability (what HypoFuzz needs to learn) ---------------------------------------
_REPLAY = """
import json, random, sys
from hypothesis.stateful import get_state_machine_test
from overlaysim.testing.machine import OverlayMachine, machine_settings
from overlaysim.testing.stability import describe, replay_differences

class Machine(OverlayMachine):
    profile = sys.argv[1]

Machine.warm_up()  # what setUpClass does before HypoFuzz's first input
test = get_state_machine_test(Machine, settings=machine_settings(database=None, stateful_step_count=12))
rnd = random.Random(int(sys.argv[2]))
inputs = [rnd.randbytes(4000) for _ in range(int(sys.argv[3]))]
diffs = replay_differences(test.hypothesis.fuzz_one_input, inputs)
print(json.dumps({str(i): describe(d) for i, d in diffs.items()}))
"""


@pytest.mark.parametrize("profile", ["default", "nfs_export=on"])
def test_a_replayed_input_covers_the_same_code(profile: str) -> None:
    """HypoFuzz adds an input to its corpus, and its branches to the behaviour count, only if
    replaying it covers exactly the same code. Measured as HypoFuzz measures it on Python 3.11,
    in a fresh process (first-use state is per process): each input is replayed after all the
    others ran, and both runs must cover the same line transitions of overlaysim."""
    out = subprocess.run([sys.executable, "-c", _REPLAY, profile, "10", "10"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    unstable = json.loads(out.stdout.splitlines()[-1])
    assert unstable == {}, "\n\n".join(f"input {i}:\n{d}" for i, d in unstable.items())


def test_replay_differences_finds_first_use_code() -> None:
    memo: dict[bytes, int] = {}

    def first_use(data: bytes) -> None:
        if data[:1] not in memo:  # a memo filled on first use: the replay skips this line
            memo[data[:1]] = len(memo)

    diffs = stability.replay_differences(first_use, [b"a", b"b", b"a"], roots=[__file__])
    assert set(diffs) == {0, 1}  # the third run of b"a" already found the memo filled
    assert "test_machine.py" in stability.describe(diffs[0])
    assert stability.replay_differences(len, [b"a", b"b"], roots=[__file__]) == {}


class _HypoFuzzLikeProvider(PrimitiveProvider):
    """HypoFuzz's replay reduced to its cursor: the n-th draw asked of the provider gets the
    n-th recorded choice when it fits there, else a fresh one (as hypofuzz.provider does)."""

    lifetime = "test_case"

    def __init__(self, data: ConjectureData | None, choices: tuple[Any, ...], seed: int) -> None:
        super().__init__(data)
        self._state = SimpleNamespace(choices=choices, choice_index=0)
        self._random = random.Random(seed)

    def _pop_choice(self, kind: type, constraints: Any, fresh: Any) -> Any:
        i = self._state.choice_index
        self._state.choice_index += 1
        if i < len(self._state.choices):
            c = self._state.choices[i]
            fits = type(c) is kind  # checked first: choice_permitted reads constraints by type
            if fits and choice_permitted(c, constraints):
                return c
        return fresh

    def draw_boolean(self, p: float = 0.5) -> bool:
        return self._pop_choice(bool, {"p": p}, self._random.random() < p)  # type: ignore[no-any-return]

    def draw_integer(self, min_value: int | None = None, max_value: int | None = None, *,
                     weights: Any = None, shrink_towards: int = 0) -> int:  # fmt: skip
        assert min_value is not None and max_value is not None
        constraints = {"min_value": min_value, "max_value": max_value, "weights": weights,
                       "shrink_towards": shrink_towards}  # fmt: skip
        return self._pop_choice(int, constraints, self._random.randint(min_value, max_value))  # type: ignore[no-any-return]

    def draw_float(self, **kw: Any) -> float:
        raise AssertionError("not drawn here")

    def draw_string(self, intervals: Any, *, min_size: int = 0, max_size: int = 0) -> str:
        raise AssertionError("not drawn here")

    def draw_bytes(self, min_size: int = 0, max_size: int = 0) -> bytes:
        raise AssertionError("not drawn here")


def _draw_recorded(choices: tuple[Any, ...], seed: int) -> tuple[Any, tuple[Any, ...], int]:
    data = ConjectureData(provider=_HypoFuzzLikeProvider(None, choices, seed), random=None)
    value = data.draw(st.lists(st.integers(0, 10**6), min_size=3, max_size=5))
    forced = sum(n.was_forced for n in data.nodes)
    return value, tuple(n.value for n in data.nodes), forced


def test_hypofuzz_replay_is_realigned_over_forced_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list with a min_size starts with forced "one more" choices: HypoFuzz records them but
    Hypothesis never asks its provider for them, so its replay shifted every later choice."""
    value, recorded, forced = _draw_recorded((), seed=1)
    assert forced >= 3
    shifted, _, _ = _draw_recorded(recorded, seed=2)
    assert shifted != value  # the bug: the replay is another test case

    monkeypatch.setattr(ConjectureData, "_draw", ConjectureData._draw)  # restored afterwards
    monkeypatch.setattr(stability, "_realigned", False)
    monkeypatch.delitem(sys.modules, "hypofuzz.provider", raising=False)
    assert not stability.realign_hypofuzz_replay()  # HypoFuzz not loaded: nothing changed
    monkeypatch.setitem(sys.modules, "hypofuzz.provider",
                        SimpleNamespace(HypofuzzProvider=_HypoFuzzLikeProvider))  # fmt: skip
    assert stability.realign_hypofuzz_replay() and stability.realign_hypofuzz_replay()
    again, replayed, _ = _draw_recorded(recorded, seed=3)
    assert (again, replayed) == (value, recorded)


def test_testcase_warms_the_machine_up_once() -> None:
    runs: list[str] = []

    class Counted(OverlayMachine):
        judge_name = "none"

        def make_judge(self) -> Judge:
            runs.append("mount")
            return super().make_judge()

    class Sibling(Counted):
        pass

    Counted.TestCase.setUpClass()
    assert runs and Counted._warmed_up
    n = len(runs)
    Counted.TestCase.setUpClass()  # pytest and HypoFuzz may both call it
    assert len(runs) == n
    assert "_warmed_up" not in vars(Sibling)  # per class: each warms its own strategies
