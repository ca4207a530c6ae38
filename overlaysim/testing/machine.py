"""A Hypothesis state machine over a simulated overlay and its judge (the kernel twin).

Where :func:`~overlaysim.testing.differential.run_case` replays a drawn list of operations,
the machine chooses each step as it goes, so Hypothesis (and HypoFuzz's coverage guidance)
can steer towards states a fixed-length list rarely reaches, and shrinks a failure to the
fewest steps. Use it as is::

    from overlaysim.testing.machine import OverlayMachine, machine_settings
    TestOverlay = OverlayMachine.TestCase
    TestOverlay.settings = machine_settings(max_examples=200)

or subclass it: set :attr:`~OverlayMachine.profile`, :attr:`~OverlayMachine.judge_name` or
:attr:`~OverlayMachine.op_kinds`, override the hooks (:meth:`~OverlayMachine.stacks`,
:meth:`~OverlayMachine.operations`, :meth:`~OverlayMachine.make_judge`,
:meth:`~OverlayMachine.simulator`) or add ``@rule``/``@invariant`` methods that use
``self.twin`` (an :class:`~overlaysim.testing.twin.OverlayTwin`).

Under HypoFuzz the machine's coverage repeats when an input is replayed, which is what lets
HypoFuzz keep inputs and count behaviours (see :mod:`overlaysim.testing.stability`): importing
this module under HypoFuzz fixes its replay of forced choices, and the ``TestCase`` warms the
machine up (:meth:`OverlayMachine.warm_up`) before its first measured input.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from overlaysim import strategies as S
from overlaysim.testing.differential import MountFactory
from overlaysim.testing.layers import LayerStack
from overlaysim.testing.ops import Op
from overlaysim.testing.stability import realign_hypofuzz_replay
from overlaysim.testing.twin import Judge, OverlayTwin, resolve_judge

realign_hypofuzz_replay()  # in a HypoFuzz worker, before any input runs


def machine_settings(**overrides: Any) -> settings:
    """Hypothesis settings for a machine with a kernel twin: no deadline (mount times vary
    with load), no health checks about slow draws, and no explain phase, which replays the
    shrunk failure hundreds of times (each a kernel mount: two thirds of the time it took to
    find and shrink a planted fault). ``overrides`` go to :class:`hypothesis.settings`."""
    base: dict[str, Any] = {"deadline": None, "suppress_health_check": list(HealthCheck),
                            "phases": tuple(p for p in Phase if p is not Phase.explain)}  # fmt: skip
    return settings(**{**base, **overrides})


def _mounted(machine: OverlayMachine) -> bool:
    return machine.twin is not None and machine.twin.mounted


def _changed_since_remount(machine: OverlayMachine) -> bool:
    """Remounting an overlay nothing was done to since its last mount tests nothing new."""
    return _mounted(machine) and machine.twin is not None and len(machine.twin.ops) > machine.remounted_at


@functools.cache
def _remount_choice(one_in: int) -> st.SearchStrategy[bool]:
    # Shrinks towards False: a shrunk failure keeps a remount only if it needs one.
    return st.sampled_from([False] * (one_in - 1) + [True])


@functools.cache
def _profile_stacks(profile: str, hardlinks: bool) -> st.SearchStrategy[LayerStack]:
    # Built once: constructing and validating these strategies costs more than drawing.
    return S.profile_stacks(profile, hardlinks=hardlinks)


class OverlayMachine(RuleBasedStateMachine):
    """Mount a drawn stack on both sides, then apply drawn operations and remounts; after
    every step the results and the merged (and upper) trees must agree. A failure raises
    :class:`~overlaysim.testing.twin.TwinDivergence` with a shell reproducer."""

    #: A name of :data:`overlaysim.strategies.PROFILES`: the mount options and stack shape.
    profile: ClassVar[str] = "default"
    #: ``auto`` (kernel where mount(2) is permitted, else the reference model), ``kernel``,
    #: ``reference``, ``none`` (simulator alone), or a fuzz target spec.
    judge_name: ClassVar[str] = "auto"
    #: Operation kinds to draw (a subset of :data:`overlaysim.strategies.OP_KINDS`); None: all.
    op_kinds: ClassVar[frozenset[str] | None] = None
    #: Compare the trees after every step (False: only at remounts and at the end).
    check_every_step: ClassVar[bool] = True
    #: A step is a remount with odds 1 in this (0: never), once something changed.
    remount_one_in: ClassVar[int] = 8
    _warmed_up: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        realign_hypofuzz_replay()  # HypoFuzz loaded after this module (backend="hypofuzz")
        self.twin: OverlayTwin | None = None
        self.pool: tuple[str, ...] = ()
        self.remounted_at = 0  # len(twin.ops) at the last mount
        self._ops: st.SearchStrategy[Op] | None = None

    @classmethod
    def warm_up(cls) -> None:
        """Run two short test cases of this machine, once per class and process. The first
        test case of a process runs code no later one does (lazy imports, the mount(2) probe,
        strategies built and cached on first draw), so HypoFuzz, which measures each input and
        its replay, found the first input it ran unstable. The ``TestCase`` calls this from
        ``setUpClass``, which pytest, unittest and HypoFuzz run outside any measured input."""
        if cls.__dict__.get("_warmed_up"):
            return
        cls._warmed_up = True
        warm = machine_settings(max_examples=2, stateful_step_count=4, database=None,
                                derandomize=True, phases=(Phase.generate,))  # fmt: skip
        try:
            run_state_machine_as_test(cls, settings=warm)
        except Exception:  # a failure here is not a test result: the tests find their own
            pass

    @classmethod
    def _to_test_case(cls) -> Any:
        # Hypothesis's (private) factory of ``cls.TestCase``: warm up in its setUpClass. Were
        # the hook renamed, the TestCase would run as before, just without the warm-up.
        case = super()._to_test_case()
        if "setUpClass" not in vars(case):
            case.setUpClass = classmethod(lambda _case: cls.warm_up())  # type: ignore[method-assign, assignment]
        return case

    # --- hooks ---------------------------------------------------------------------------
    def make_judge(self) -> Judge:
        """The side the simulator is judged against (default: :attr:`judge_name`)."""
        return resolve_judge(self.judge_name)

    def simulator(self) -> MountFactory | None:
        """The judged side's mount factory (None: overlaysim's simulator)."""
        return None

    def options(self) -> str:
        """The extra mount options (default: those of :attr:`profile`)."""
        return S.mount_options(self.profile)

    def stacks(self, judge: Judge) -> st.SearchStrategy[LayerStack]:
        """Stacks to mount. A judge that cannot represent every stack (the reference model)
        gets stacks without hard links, which it then sanitises."""
        return _profile_stacks(self.profile, judge.hardlinks)

    def operations(self, pool: tuple[str, ...]) -> st.SearchStrategy[Op]:
        """The next operation; ``pool``: paths present in the stack, favoured."""
        return S.operations(self.op_kinds, pool)

    # --- rules -----------------------------------------------------------------------------
    @initialize(data=st.data())
    def mount(self, data: st.DataObject) -> None:
        judge = self.make_judge()
        stack = data.draw(self.stacks(judge), label="stack")
        if judge.sanitized:
            from overlaysim.testing.reference import sanitize

            stack = sanitize(stack)
        try:
            self.twin = OverlayTwin(stack, self.options(), judge=judge, simulator=self.simulator())
        except OSError:
            self.twin = None  # both sides refused the mount alike: nothing left to compare
            return
        self.pool = S.stack_paths(stack)
        self._ops = self.operations(self.pool)

    @rule(data=st.data())
    def operate(self, data: st.DataObject) -> None:
        """One step: a drawn operation, or now and then a remount. One rule rather than two:
        Hypothesis picks rules evenly and its swarm testing turns some off per test case, so
        a separate remount rule halved the operations run and, with a precondition, made a
        third of the test cases invalid."""
        # No precondition: after a mount refused alike on both sides (a volatile remount)
        # some rule must stay available, and doing nothing is what is left to do.
        if not _mounted(self):
            return
        assert self.twin is not None and self._ops is not None
        # Drawn whatever the state, so that every step has the same shape and the shrinker
        # can delete any one of them without shifting the draws of the next.
        wants = bool(self.remount_one_in) and data.draw(_remount_choice(self.remount_one_in),
                                                        label="remount")  # fmt: skip
        if wants and _changed_since_remount(self):
            self.remount()
            return
        op = data.draw(self._ops, label="op")
        self.twin.apply(op)

    def remount(self) -> None:
        """Unmount both sides (comparing work dirs) and mount again (comparing outcomes)."""
        assert self.twin is not None
        self.remounted_at = len(self.twin.ops)
        if self.twin.remount() != "mounted":
            self.twin.close(check=False)  # e.g. volatile: refused alike on both sides

    @invariant()
    def trees_agree(self) -> None:
        if self.check_every_step and self.twin is not None and self.twin.mounted:
            self.twin.check(f"after step {len(self.twin.ops)}")

    def teardown(self) -> None:
        if self.twin is not None:
            twin, self.twin = self.twin, None
            twin.close(check=True)

    def __repr__(self) -> str:
        extra: dict[str, Any] = {"profile": self.profile}
        if self.twin is not None:
            extra["judge"] = self.twin.judge.name
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in extra.items())})"
