"""Coverage stability: HypoFuzz learns from an input only if replaying it covers the same code.

When an input covers something new, HypoFuzz runs it a second time and adds it to its corpus
(and its branches to the behaviour count) only if both runs covered exactly the same branches.
Every replay of :class:`~overlaysim.testing.machine.OverlayMachine` differed, for two reasons:

* **HypoFuzz replayed another input.** It replays a recorded choice sequence through its own
  provider, but Hypothesis never asks a provider for a *forced* choice (a value the strategy
  fixed: "one more step" before a state machine's first step or a list's ``min_size``, "stop"
  at ``max_size``), while the recording holds those too. From the first forced choice on,
  each draw got the value recorded for the draw before it. Every state machine starts with a
  forced choice, so no replay of one was ever the same test case (HypoFuzz 25.11.1, the latest
  release, and its main branch as of 2026-05). :func:`realign_hypofuzz_replay` makes the
  provider step over forced positions, as Hypothesis's own replay does.
* **Code that only the first of several alike inputs runs**: memos filled on first use (the
  copy-up reason of each open flag set, the libc ``syscall`` lookup), lazy imports, the mount
  probe, strategies built and cached on first draw, and the wall clock (atime updates and stat
  caching compare timestamps). Fixed where they live; what is left runs once per process, and
  ``OverlayMachine.warm_up`` runs it before the first measured input.

:class:`LineCoverage` measures what HypoFuzz measures on Python 3.11 (line-to-line transitions,
with ``sys.settrace``) and :func:`replay_differences` replays inputs through Hypothesis's own
``fuzz_one_input``, so a test can hold a machine to this without HypoFuzz installed.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from types import FrameType, TracebackType
from typing import Any

#: Where overlaysim's own code lives: the default scope of :class:`LineCoverage`.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

Location = tuple[str, int]
Transition = tuple[Location, Location]

_realigned = False


def realign_hypofuzz_replay() -> bool:
    """Once HypoFuzz is loaded (a ``hypothesis fuzz`` worker, ``backend="hypofuzz"``), make its
    provider skip the recorded value of every forced choice, so that replaying a recorded input
    runs the same test case. Idempotent; True when the fix is in place, False when HypoFuzz is
    not loaded or its provider is not laid out as this fix expects (then nothing is changed).

    It wraps ``ConjectureData._draw`` (Hypothesis internals): draws made by any other provider,
    or replayed by Hypothesis from a prefix, are left as they are."""
    global _realigned
    if _realigned:
        return True
    module = sys.modules.get("hypofuzz.provider")
    provider = getattr(module, "HypofuzzProvider", None)
    if provider is None or not hasattr(provider, "_pop_choice"):
        return False
    from hypothesis.internal.conjecture.data import ConjectureData

    draw = ConjectureData._draw

    @functools.wraps(draw)
    def _draw(self: Any, *args: Any, **kwargs: Any) -> Any:
        prefix = getattr(self, "prefix", None)  # set when Hypothesis replays choices itself
        if kwargs.get("forced") is not None and kwargs.get("observe", True) \
                and isinstance(self.provider, provider) \
                and (prefix is None or self.index >= len(prefix)):  # fmt: skip
            state = getattr(self.provider, "_state", None)
            if state is not None:  # the provider's cursor in the choices it replays
                state.choice_index += 1
        return draw(self, *args, **kwargs)

    ConjectureData._draw = _draw  # type: ignore[method-assign]
    _realigned = True
    return True


class LineCoverage:
    """The line-to-line transitions run in files under ``roots`` while the context is open, as
    HypoFuzz collects them on Python < 3.12 (``sys.settrace``; the previous line is kept across
    files left out, so a call out of scope and back is one transition). On 3.12+ HypoFuzz uses
    ``sys.monitoring`` branch events instead: inputs whose transitions repeat repeat those too.
    Only the calling thread is traced, as with HypoFuzz."""

    def __init__(self, roots: Iterable[str] = (PACKAGE_ROOT,)) -> None:
        self.roots = tuple(roots)
        self.transitions: set[Transition] = set()
        self._last: Location | None = None
        self._in_scope: dict[str, bool] = {}
        self._previous: Any = None

    def _trace(self, frame: FrameType, event: str, arg: object) -> Callable[..., Any]:
        if event == "line":
            name = frame.f_code.co_filename
            keep = self._in_scope.get(name)
            if keep is None:
                keep = self._in_scope[name] = name.startswith(self.roots)
            if keep:
                here = (name, frame.f_lineno)
                if self._last is not None:
                    self.transitions.add((self._last, here))
                self._last = here
        return self._trace

    def __enter__(self) -> LineCoverage:
        self.transitions, self._last = set(), None
        self._previous = sys.gettrace()
        sys.settrace(self._trace)
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        sys.settrace(self._previous)


def replay_differences(run: Callable[[bytes], object], inputs: Sequence[bytes], *,
                       roots: Iterable[str] = (PACKAGE_ROOT,)) -> dict[int, set[Transition]]:  # fmt: skip
    """Run every input, then every input again (each replay thus follows other inputs, as in a
    fuzzing campaign), measuring each run with :class:`LineCoverage`. Returns, for each input
    whose two runs covered different transitions, those that only one of them covered.

    ``run`` is typically a Hypothesis test's ``.hypothesis.fuzz_one_input``: the same bytes are
    the same choices, forced ones included. An exception from ``run`` propagates."""
    scope = tuple(roots)

    def measure(data: bytes) -> set[Transition]:
        with LineCoverage(scope) as cov:
            run(data)
        return cov.transitions

    first = [measure(data) for data in inputs]
    again = [measure(data) for data in inputs]
    return {i: a ^ b for i, (a, b) in enumerate(zip(first, again, strict=True)) if a != b}


def describe(transitions: Iterable[Transition], limit: int = 20) -> str:
    """Transitions as ``file:line -> file:line`` lines (paths relative to the package)."""

    def loc(where: Location) -> str:
        name, line = where
        return f"{name.removeprefix(PACKAGE_ROOT)}:{line}"

    lines = sorted(f"{loc(a)} -> {loc(b)}" for a, b in transitions)
    more = [f"... and {len(lines) - limit} more"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more)
