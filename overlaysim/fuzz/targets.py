"""What ``overlaysim fuzz --against`` names: the implementation a campaign judges.

A :class:`Target` bundles a mount factory with what may fairly be compared for it (trees,
ignored observation kinds, layer round trips, lower hard links) and which option profiles of
:data:`overlaysim.testing.strategies.PROFILES` it can run. Campaign code stays generic: it
draws cases for ``target.profiles`` (hard links only if ``target.hardlinks``), mounts with
``target.options_for(profile)`` and calls :meth:`Target.run` (or
:func:`~overlaysim.testing.differential.run_case` with :meth:`Target.sides`). A target that
breaks its protocol raises :class:`~overlaysim.errors.TargetError` out of ``run``: a
campaign stops on it (it is not a divergence to shrink).

Spec grammar of :func:`resolve_target`:

* ``kernel`` -- the real overlay (``mount(2)``); the simulator is judged against it.
* ``reference`` -- the flat reference model (merged view only), where mount(2) is refused.
* ``fuse-overlayfs`` -- the ``fuse-overlayfs`` binary, judged against the kernel.
* ``overlaysim-fuse`` -- the simulator through its FUSE mount, judged against the kernel.
* ``simulator`` / ``simulator:FIRST,SECOND`` -- the simulator with profile FIRST judged
  against the simulator with profile SECOND, for pairs the kernel says must agree.
* anything else -- a command line speaking the JSON-lines protocol of
  :mod:`overlaysim.fuzz.protocol`, judged against the simulator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from overlaysim.errors import TargetError
from overlaysim.testing import strategies as S
from overlaysim.testing.differential import CaseReport, MountFactory, OverlayMount, run_case
from overlaysim.testing.layers import LayerStack
from overlaysim.testing.ops import Op
from overlaysim.testing.simulator import simulator_factory

ALL_TREES = ("merged", "upper", "work")


def _always() -> tuple[bool, str]:
    return True, "runs anywhere"


@dataclass(frozen=True)
class Target:
    """One side of a campaign and the rules for judging it.

    ``factory`` is the named implementation. Without ``versus`` it is compared with
    overlaysim's simulator and takes run_case's oracle slot (as the kernel always did); with
    ``versus`` (fuse-overlayfs against the kernel, a command against the simulator) ``versus``
    is the oracle and ``factory`` is the side judged, so a report reads "oracle: kernel,
    simulator: fuse-overlayfs".
    """

    name: str  # "kernel", "fuse-overlayfs", "simulator", or the CMD string
    factory: MountFactory  # (LayerStack, options) -> OverlayMount
    compare: tuple[str, ...]  # trees compared: subset of ("merged", "upper", "work")
    ignore: tuple[str, ...]  # observation kinds ignored (observe.Entry fields, "inodes")
    round_trip: bool  # whether run_case does the layer round trips
    hardlinks: bool  # whether generated stacks may contain lower hard links
    profiles: tuple[str, ...]  # the strategies.PROFILES names this target can run
    probe: Callable[[], tuple[bool, str]] = field(default=_always, repr=False, compare=False)
    versus: MountFactory | None = None  # the oracle when not the simulator (see above)
    option_map: tuple[tuple[str, str], ...] = ()  # profile -> options, where not PROFILES'
    note: str = ""  # why the comparison rules are what they are
    # generated stack -> one this target can fairly be judged on (drops layer features it
    # never claimed: xattr whiteouts for fuse-overlayfs, hard links for the reference model)
    sanitize: Callable[[LayerStack], LayerStack] | None = None
    remount: bool = True  # whether run_case remounts both sides after umount and compares
    # a reproducer for a diverging case (default: CaseReport.script(), the kernel side only)
    script: Callable[[CaseReport], str] | None = None

    def available(self) -> tuple[bool, str]:
        """(usable here?, reason) -- e.g. no root for mount(2), binary missing."""
        return self.probe()

    def options_for(self, profile: str) -> str:
        """The mount options of ``profile`` (a name of ``S.PROFILES``) on this target."""
        if profile not in self.profiles:
            raise TargetError(f"target {self.name!r} cannot run profile {profile!r} "
                              f"(it runs: {', '.join(self.profiles)})")  # fmt: skip
        return dict(self.option_map).get(profile, S.PROFILES[profile][0])

    def sides(self) -> tuple[MountFactory, MountFactory]:
        """``(oracle_factory, simulator_factory)`` for :func:`run_case`."""
        if self.versus is None:
            return self.factory, simulator_factory
        return self.versus, self.factory

    def run(self, stack: LayerStack, ops: Sequence[Op], options: str, **kw: object) -> CaseReport:
        """:func:`run_case` with this target's sides, stack sanitizer and comparison rules."""
        oracle, judged = self.sides()
        if self.sanitize is not None:
            stack = self.sanitize(stack)
        args: dict[str, object] = {"compare": self.compare, "ignore": self.ignore,
                                   "round_trip": self.round_trip, "remount": self.remount,
                                   **kw}  # fmt: skip
        return run_case(stack, ops, options, judged, oracle_factory=oracle, **args)  # type: ignore[arg-type]


# --- kernel and reference model ---------------------------------------------------------------
def _kernel_probe() -> tuple[bool, str]:
    from overlaysim.testing.kernel import can_mount

    return can_mount()


def kernel_mount(stack: LayerStack, options: str) -> OverlayMount:
    """:func:`overlaysim.testing.kernel.kernel_factory`, imported on first use."""
    from overlaysim.testing.kernel import kernel_factory

    return kernel_factory(stack, options)


def kernel_target() -> Target:
    """The simulator judged against the real overlay; everything is compared."""
    return Target("kernel", kernel_mount, ALL_TREES, (), round_trip=True, hardlinks=True,
                  profiles=tuple(sorted(S.PROFILES)), probe=_kernel_probe)  # fmt: skip


def reference_target() -> Target:
    """The flat reference model: no lower hard links, merged view only (no inode relations)."""
    from overlaysim.testing.reference import reference_factory, sanitize

    return Target("reference", reference_factory, ("merged",), ("links", "inodes"),
                  round_trip=False, hardlinks=False, profiles=tuple(sorted(S.PROFILES)),
                  sanitize=sanitize)  # fmt: skip


# --- simulator vs simulator -------------------------------------------------------------------
@dataclass(frozen=True)
class SimPair:
    """Two profiles the kernel says must agree on ``compare`` (and every op's result);
    ``stacks`` are the profiles whose generated stacks suit both mounts."""

    first: str
    second: str
    compare: tuple[str, ...]
    remount: bool
    stacks: tuple[str, ...]
    why: str


# Each pair is checked on two kernel mounts of the same cases by
# tests/fuzz/test_targets_pairs.py (kernel 6.18 here: 0 divergences in 300 cases each).
SIM_PAIRS: dict[tuple[str, str], SimPair] = {
    (p.first, p.second): p
    for p in (
        SimPair("volatile", "default", ("merged", "upper"), False, ("default",),
                "volatile only skips syncs: results, merged and upper agree; the work dir "
                "differs (work/incompat/volatile) and the kernel refuses to remount it"),
        SimPair("metacopy=on", "redirect_dir=on", ("merged",), True, ("default",),
                "metacopy only changes what copy-up writes to the upper layer: results and "
                "the merged view agree (metacopy=on implies redirect_dir=on, so the partner "
                "is redirect_dir=on, not the default, which refuses dir renames with EXDEV)"),
    )
}
# Checked on the kernel and refused, with why (resolve_target says so).
NOT_PAIRS: dict[tuple[str, str], str] = {
    ("redirect_dir=on", "default"): "renaming a lower dir is EXDEV without redirect_dir",
    ("metacopy=on", "default"): "metacopy=on implies redirect_dir=on (dir renames differ)",
    ("userxattr", "default"): "hard-link relations of the merged view differ "
                              "(link a lower device: st_ino shared only without userxattr)",
}
DEFAULT_PAIR = ("volatile", "default")


@dataclass(frozen=True)
class Remounted:
    """A factory that mounts the simulator with fixed options, whatever it is given."""

    options: str

    def __call__(self, stack: LayerStack, options: str) -> OverlayMount:
        return simulator_factory(stack, self.options)


def simulator_target(first: str, second: str) -> Target:
    """The simulator under ``first``'s options judged against itself under ``second``'s."""
    pair = SIM_PAIRS.get((first, second))
    if pair is None:
        known = "; ".join(f"simulator:{a},{b}" for a, b in SIM_PAIRS)
        why = NOT_PAIRS.get((first, second)) or NOT_PAIRS.get((second, first))
        raise TargetError(f"simulator:{first},{second}: "
                          + (f"the kernel disagrees ({why})" if why else "no kernel-confirmed agreement")
                          + f"; known pairs: {known}")  # fmt: skip
    first_opts = S.PROFILES[first][0]
    return Target(f"simulator:{first},{second}", Remounted(S.PROFILES[second][0]),
                  pair.compare, (), round_trip=False, hardlinks=True, profiles=pair.stacks,
                  option_map=tuple((p, first_opts) for p in pair.stacks), note=pair.why,
                  remount=pair.remount)  # fmt: skip


# --- resolution -------------------------------------------------------------------------------
def resolve_target(spec: str) -> Target:
    """``--against SPEC`` -> a :class:`Target`; :class:`TargetError` on a bad spec."""
    spec = spec.strip()
    if not spec:
        raise TargetError("--against needs a value: kernel, fuse-overlayfs, simulator or a command")
    if spec == "kernel":
        return kernel_target()
    if spec == "reference":
        return reference_target()
    if spec == "simulator":
        return simulator_target(*DEFAULT_PAIR)
    if spec.startswith("simulator:"):
        first, sep, second = spec.removeprefix("simulator:").partition(",")
        if not sep:
            raise TargetError(f"{spec!r}: expected simulator:FIRST,SECOND (two profile names)")
        return simulator_target(first.strip(), second.strip())
    if spec == "fuse-overlayfs":
        from overlaysim.fuzz.fuse_overlayfs import fuse_overlayfs_target

        return fuse_overlayfs_target()
    if spec == "overlaysim-fuse":
        from overlaysim.fuzz.overlaysim_fuse import overlaysim_fuse_target

        return overlaysim_fuse_target()
    from overlaysim.fuzz.remote import command_target

    return command_target(spec)
