"""Hypothesis strategies for union-mount testing: layer trees, option profiles, operations.

The public face of :mod:`overlaysim.testing.strategies` (the generators the kernel
differential runs on, re-exported here unchanged) plus the pieces a user composes into their
own tests. Everything draws from a small name pool (:data:`NAMES`, depth <= 3) so that layers
and operations collide: one name a file here, a directory there, whited out above, renamed
onto by an operation. That is where union filesystems go wrong.

Layer trees are :mod:`overlaysim.testing.layers` values (``Dir``, ``File``, ``Symlink``,
``Whiteout``, ``Device``, ``Fifo``, ``HardLink``): they build identically on the real disk
(for the kernel or another implementation) and in a simulated HostFS. Operations are
:mod:`overlaysim.testing.ops` values, applied through any os-like module with
:func:`overlaysim.testing.ops.apply`. Example::

    from hypothesis import given
    from overlaysim import strategies as S
    from overlaysim.testing.twin import OverlayTwin

    @given(S.cases("default", min_ops=1, max_ops=10))
    def test_my_overlay(case):
        with OverlayTwin(case.stack, case.options, judge="auto") as ov:
            for op in case.ops:
                ov.apply(op)      # raises TwinDivergence with a shell reproducer

For a stateful test, subclass :class:`overlaysim.testing.machine.OverlayMachine`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from hypothesis import strategies as st

from overlaysim.errors import UsageError
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing.strategies import (
    DATA_ONLY_PROFILES,
    MULTI_FS_PROFILES,
    NAMES,
    OP_KINDS,
    PROFILES,
    XATTR_NAMES,
    Case,
    _op_strategies,
    cases,
    dirs,
    files,
    layer_stacks,
    layers,
    leaves,
    metacopy_files,
    op_sequences,
    paths,
    stack_paths,
)

__all__ = [
    "NAMES", "OP_KINDS", "PROFILES", "XATTR_NAMES", "Case", "cases", "dirs", "files",
    "layer_stacks", "layer_trees", "layers", "leaves", "metacopy_files", "mount_options",
    "op_sequences", "operations", "paths", "profile_names", "profile_stacks", "profiles",
    "stack_paths",
]  # fmt: skip

#: One layer (a ``layers.Dir``); the same strategy as :func:`layers`, under a clearer name.
layer_trees = layers


def _check_profile(name: str) -> None:
    if name not in PROFILES:
        raise UsageError(f"unknown option profile {name!r}; known: {', '.join(sorted(PROFILES))}")


def mount_options(profile: str) -> str:
    """The extra mount options of a profile (the layer options are added by whoever mounts)."""
    _check_profile(profile)
    return PROFILES[profile][0]


def profile_names(*, upper: bool | None = None) -> tuple[str, ...]:
    """Profile names, "default" first, then sorted; ``upper`` keeps only those with (True) or
    without (False) an upper layer."""
    chosen = [n for n, (_, up) in PROFILES.items() if upper is None or up == upper]
    return tuple(sorted(chosen, key=lambda n: (n != "default", n)))


def profiles(names: tuple[str, ...] | None = None) -> st.SearchStrategy[str]:
    """A profile name from ``names`` (default: every profile of :data:`PROFILES`); shrinks
    towards the first name ("default" in :func:`profile_names` order)."""
    chosen = tuple(names) if names is not None else profile_names()
    for n in chosen:
        _check_profile(n)
    if not chosen:
        raise UsageError("no option profile to draw from")
    return st.sampled_from(chosen)


def profile_stacks(profile: str, **layer_kw: Any) -> st.SearchStrategy[L.LayerStack]:
    """Layer stacks fit for a profile, exactly those :func:`cases` draws for it (a test holds
    the two to the same examples): read-only without an upper layer, metacopy files below for
    ``metacopy=on``, data-only layers and separate filesystems where the profile has them.

    Not ``cases(...).map(...)``: that would build an operation strategy per drawn stack,
    which HypoFuzz sees as coverage that changes when an input is replayed."""
    _check_profile(profile)
    options, has_upper = PROFILES[profile]
    data_only = profile in DATA_ONLY_PROFILES
    if "metacopy=on" in options.split(",") or data_only:
        layer_kw = {"metacopy": True, **layer_kw}
    stacks = layer_stacks(upper=has_upper, data_only=data_only, **layer_kw)
    if profile in MULTI_FS_PROFILES:
        return stacks.map(lambda s: dataclasses.replace(s, separate_fs=True))
    return stacks


# Stands for "a path of the pool" in the cached operation strategies (a NUL never appears in
# a real path), replaced at draw time by a path of the pool at hand.
_POOL_PATH = "\0pool"


@functools.cache
def _pool_free_operations(kinds: frozenset[str] | None) -> st.SearchStrategy[O.Op]:
    # Built once per kinds: constructing twenty op strategies costs more than drawing from
    # them, and a strategy built anew per pool makes HypoFuzz see unstable coverage.
    return st.one_of(*_op_strategies(kinds, (_POOL_PATH,)))


@st.composite
def _operation(draw: st.DrawFn, kinds: frozenset[str] | None, pool: tuple[str, ...]) -> O.Op:
    op = draw(_pool_free_operations(kinds))
    fields = {}
    for f in dataclasses.fields(op):  # type: ignore[arg-type]
        value = getattr(op, f.name)
        if f.name in ("path", "src", "dst") and value.startswith(_POOL_PATH):
            # the placeholder alone, or a fresh name under it ("<pool path>/g")
            fields[f.name] = draw(st.sampled_from(pool) if pool else paths()) + value[len(_POOL_PATH):]
    return dataclasses.replace(op, **fields) if fields else op  # type: ignore[type-var]


def operations(kinds: frozenset[str] | None = None,
               pool: tuple[str, ...] = ()) -> st.SearchStrategy[O.Op]:  # fmt: skip
    """One operation (``kinds``: a subset of :data:`OP_KINDS`, default all); ``pool``: paths
    to favour (two draws in three), typically :func:`stack_paths` of the stack under test."""
    if kinds is not None and not kinds <= OP_KINDS:
        raise UsageError(f"unknown operation kinds {sorted(kinds - OP_KINDS)}; known: {sorted(OP_KINDS)}")
    if kinds is not None and not kinds:
        raise UsageError("no operation kind to draw from")
    return _operation(kinds, tuple(pool))
