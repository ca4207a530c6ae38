"""Differential runs: the same layers and operations on an oracle and on a simulator.

The simulator factory interface (the lead implements it for HostFS)::

    factory(stack: LayerStack, options: str) -> mount

``options`` are the extra mount options (``"redirect_dir=on"``, ``"userxattr"``...; the
layer options are added by the factory from its own layer paths). The factory builds the
stack, mounts it (raising ``OSError`` with the kernel's errno if the mount is refused) and
returns an object with:

* ``os`` -- an os-like module; ``mount_path`` -- the mount point, as a path for that module;
* ``upper_os``/``upper_root`` and ``work_os``/``work_root`` -- where the upper and work dirs
  can be read (``upper_root=None`` when there is none, or nothing to compare);
* ``umount()``, ``remount()`` (umount + mount again with the same options) and ``close()``
  (unmount if needed and free everything).

:class:`~overlaysim.testing.kernel.KernelOverlay` (the oracle) and
:class:`~overlaysim.testing.reference.ReferenceModel` follow the same interface.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from overlaysim.testing import observe
from overlaysim.testing import ops as ops_mod
from overlaysim.testing.layers import LayerStack, xattr_prefix_for
from overlaysim.testing.ops import Op, Result, apply


class OverlayMount(Protocol):
    @property
    def os(self) -> Any: ...

    @property
    def mount_path(self) -> str: ...

    @property
    def upper_os(self) -> Any: ...

    @property
    def upper_root(self) -> str | None: ...

    @property
    def work_os(self) -> Any: ...

    @property
    def work_root(self) -> str | None: ...

    def umount(self) -> None: ...

    def remount(self) -> None: ...

    def close(self) -> None: ...


MountFactory = Callable[[LayerStack, str], OverlayMount]


@dataclass
class Divergence:
    """Where the two sides disagreed; ``detail`` lists the differences."""

    where: str
    op: Op | None = None
    oracle: Any = None
    simulator: Any = None
    detail: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{self.where}" + (f" {self.op!r}" if self.op is not None else "")
        if self.detail:
            return head + "\n  " + "\n  ".join(self.detail[:20])
        return f"{head}: oracle {self.oracle}, simulator {self.simulator}"


@dataclass
class CaseReport:
    stack: LayerStack
    ops: Sequence[Op]
    options: str
    results: list[tuple[Result, Result]] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergences

    def __str__(self) -> str:
        if self.ok:
            return f"no divergence ({len(self.results)} ops, options {self.options!r})"
        return "\n".join(str(d) for d in self.divergences)

    def script(self) -> str:
        """A standalone shell script replaying this case on a real kernel, up to the op
        where (or the checkpoint at which) the first divergence showed."""
        from overlaysim.testing.script import to_script

        ops = list(self.ops)
        if self.divergences:
            where = self.divergences[0].where
            for prefix in ("op ", "after op "):
                head = where[len(prefix) :].split(":")[0]
                if where.startswith(prefix) and head.isdigit():
                    ops = ops[: int(head) + 1]
                    break
        return to_script(self.stack, ops, self.options)


def _mount(factory: MountFactory, stack: LayerStack, options: str) -> OverlayMount | str:
    try:
        return factory(stack, options)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))


def _compare_trees(
    report: CaseReport, where: str, a: OverlayMount, b: OverlayMount, parts: Sequence[str],
    prefix: str, ignore: Sequence[str], merged: bool = True,
) -> observe.Snapshot:  # fmt: skip
    """Compare merged (unless ``merged`` is False: unmounted) and upper trees; returns the
    oracle's merged snapshot."""
    ka = observe.Snapshot()
    if merged:
        ka = observe.snapshot(a.os, a.mount_path)
        kb = observe.snapshot(b.os, b.mount_path)
    if merged and observe.without(ka, ignore) != observe.without(kb, ignore):
        report.divergences.append(Divergence(f"{where}: merged", detail=observe.diff(
            observe.without(ka, ignore), observe.without(kb, ignore))))  # fmt: skip
    if "upper" in parts and a.upper_root and b.upper_root:
        ua = observe.without(observe.snapshot(a.upper_os, a.upper_root, upper_prefix=prefix), ignore)
        ub = observe.without(observe.snapshot(b.upper_os, b.upper_root, upper_prefix=prefix), ignore)
        if ua != ub:
            report.divergences.append(Divergence(f"{where}: upper", detail=observe.diff(ua, ub)))
    return ka


def run_case(
    stack: LayerStack,
    ops: Sequence[Op],
    options: str,
    simulator_factory: MountFactory,
    *,
    oracle_factory: MountFactory | None = None,
    checkpoint_every: int = 10,
    compare: Sequence[str] = ("merged", "upper", "work"),
    remount: bool = True,
    stop_at_first: bool = True,
    ignore: Sequence[str] = (),
    round_trip: bool = False,
) -> CaseReport:
    """Apply ``ops`` to an oracle mount (the kernel by default) and to a simulator mount.

    Compares every op's :class:`~overlaysim.testing.ops.Result`, and for ops that may copy up
    (write, truncate, chmod, chown, utime, xattrs, link) whether ``st_ino`` of their path was
    kept; the merged (and upper) trees every ``checkpoint_every`` ops and at the end; the
    normalised work dirs after umount; and the trees again after a remount. With ``stop_at_first`` the run ends at the first diverging op.
    ``ignore`` names :class:`~overlaysim.testing.observe.Entry` fields not to compare (and
    "inodes" to skip the changed-inode relation): an explicit "accept either" for quirks.
    With ``round_trip`` (kernel oracle and :class:`SimOverlay` only) each side's layers are
    then mounted by the other side, whose merged view must equal the writer's.
    """
    if oracle_factory is None:
        from overlaysim.testing.kernel import kernel_factory

        oracle_factory = kernel_factory
    report = CaseReport(stack, ops, options)
    prefix = xattr_prefix_for(options)
    a = _mount(oracle_factory, stack, options)
    b = _mount(simulator_factory, stack, options)
    try:
        if isinstance(a, str) or isinstance(b, str):
            ma = a if isinstance(a, str) else "mounted"
            mb = b if isinstance(b, str) else "mounted"
            if ma != mb:
                report.divergences.append(Divergence("mount", oracle=ma, simulator=mb))
            return report
        _compare_trees(report, "start", a, b, compare, prefix, ignore)
        for i, op in enumerate(ops):
            watch = "inodes" not in ignore and isinstance(op, _COPY_UP_TRIGGERS)
            before = (_inodes(a, op), _inodes(b, op)) if watch else None
            ra, rb = apply(op, a.os, a.mount_path), apply(op, b.os, b.mount_path)
            report.results.append((ra, rb))
            if ra != rb:
                report.divergences.append(Divergence(f"op {i}", op, ra, rb))
                if stop_at_first:
                    return report
            elif before is not None:
                ka = _kept(before[0], _inodes(a, op))
                kb = _kept(before[1], _inodes(b, op))
                if ka != kb:  # st_ino is kept across copy-up, except where the kernel says
                    report.divergences.append(Divergence(
                        f"op {i}: st_ino kept (stat, lstat)", op, ka, kb))  # fmt: skip
            if (i + 1) % checkpoint_every == 0 or i + 1 == len(ops):
                _compare_trees(report, f"after op {i}", a, b, compare, prefix, ignore)
            if report.divergences and stop_at_first:
                return report
        a.umount()
        b.umount()
        if "work" in compare and a.work_root and b.work_root:
            wa = observe.snapshot_work(a.work_os, a.work_root, prefix, upper=a.upper_root)
            wb = observe.snapshot_work(b.work_os, b.work_root, prefix, upper=b.upper_root)
            wa, wb = observe.without(wa, ignore), observe.without(wb, ignore)
            if wa != wb:
                report.divergences.append(Divergence("work dir after umount",
                                                     detail=observe.diff(wa, wb)))  # fmt: skip
        if remount:
            ra_, rb_ = _remount(a), _remount(b)
            if ra_ != rb_:
                report.divergences.append(Divergence("remount", oracle=ra_, simulator=rb_))
            elif ra_ == "mounted":
                merged = _compare_trees(report, "after remount", a, b, compare, prefix, ignore)
                if getattr(b, "upper_at_umount", False):
                    # the side's upper on disk is the one written at the last umount: what the
                    # remount did to it (a listing drops a useless impure) is there only after
                    # the next one, so both sides are unmounted before comparing again
                    a.umount()
                    b.umount()
                    _compare_trees(report, "after remount and umount", a, b, compare, prefix,
                                   ignore, merged=False)  # fmt: skip
                if round_trip:
                    _round_trip(report, a, b, merged, ignore)
        return report
    finally:
        for side in (a, b):
            if not isinstance(side, str):
                side.close()


# Operations that may copy up the object at their path but never replace it by another one.
_COPY_UP_TRIGGERS = (ops_mod.Write, ops_mod.Truncate, ops_mod.Chmod, ops_mod.Chown, ops_mod.Utime,
                     ops_mod.SetXattr, ops_mod.RemoveXattr, ops_mod.Link)  # fmt: skip


def _inodes(m: OverlayMount, op: Op) -> tuple[int | None, int | None]:
    """st_ino of the op's first path, followed and not (None where it does not exist)."""
    path = m.os.path.join(m.mount_path, op.paths()[0])
    out: list[int | None] = []
    for call in (m.os.stat, m.os.lstat):
        try:
            out.append(call(path).st_ino)
        except OSError:
            out.append(None)
    return out[0], out[1]


def _kept(before: tuple[int | None, int | None], after: tuple[int | None, int | None]) -> tuple[bool | None, ...]:
    """Per (stat, lstat): whether the inode number stayed; None when it did not exist."""
    return tuple(None if x is None or y is None else x == y for x, y in zip(before, after, strict=True))


def _round_trip(report: CaseReport, a: OverlayMount, b: OverlayMount, ka: observe.Snapshot,
                ignore: Sequence[str]) -> None:  # fmt: skip
    """Kernel layers -> simulator and simulator layers -> kernel; merged views must hold."""
    from overlaysim.testing.kernel import KernelOverlay
    from overlaysim.testing.roundtrip import ExportedOverlay, ImportedOverlay
    from overlaysim.testing.simulator import SimOverlay

    if not isinstance(a, KernelOverlay) or not isinstance(b, SimOverlay):
        raise TypeError("round_trip needs the kernel oracle and a SimOverlay simulator")
    kb = observe.snapshot(b.os, b.mount_path)
    a.umount()
    b.umount()
    extra: str | None = None
    if {"index=on", "nfs_export=on"} & set(a.extra.split(",")):  # nfs_export implies index
        extra = _index_round_trip(report, a, b)
        ka = _own_view(a, extra)
        kb = _own_view(b, extra)
    for where, make, src, expected in (
        ("kernel layers -> simulator", ImportedOverlay, a, ka),
        ("simulator layers -> kernel", ExportedOverlay, b, kb),
    ):
        try:
            crossed = make(src, extra)  # type: ignore[arg-type]
        except OSError as e:
            code = errno.errorcode.get(e.errno or 0, str(e))  # the mounting side refused
            sides = ("mounted", code) if make is ImportedOverlay else (code, "mounted")
            report.divergences.append(Divergence(where, oracle=sides[0], simulator=sides[1]))
            continue
        try:
            got = observe.without(observe.snapshot(crossed.os, crossed.mount_path), ignore)
            want = observe.without(expected, ignore)
            if got != want:
                report.divergences.append(Divergence(f"{where}: merged",
                                                     detail=observe.diff(want, got)))  # fmt: skip
        finally:
            crossed.close()


def _index_round_trip(report: CaseReport, a: Any, b: Any) -> str:
    """index=on layers moved to other inodes (another fs) must not mount with index=on: the
    upper root's ``origin`` no longer names the lower root, and Linux refuses with ESTALE.
    Both crossings must be refused so (the simulator's own handles do not verify on the
    kernel, the kernel's not on the simulator). The merged views are then compared with
    index=off, which does not verify handles; returns those options."""
    from overlaysim.testing.roundtrip import ExportedOverlay, ImportedOverlay

    for where, make, src, sides in (
        ("kernel layers -> simulator (index=on)", ImportedOverlay, a, ("ESTALE", "{}")),
        ("simulator layers -> kernel (index=on)", ExportedOverlay, b, ("{}", "ESTALE")),
    ):
        try:
            crossed = make(src)
        except OSError as e:
            got = errno.errorcode.get(e.errno or 0, str(e))
        else:
            crossed.close()
            got = "mounted"
        if got != "ESTALE":
            oracle, simulator = (s.format(got) for s in sides)
            report.divergences.append(Divergence(where, oracle=oracle, simulator=simulator))
    return ",".join(["index=off" if o in ("index=on", "nfs_export=on") else o
                     for o in a.extra.split(",")])  # fmt: skip


def _own_view(m: Any, extra: str) -> observe.Snapshot:
    """The merged view of a writer's own layers mounted with ``extra`` instead."""
    saved = m.options
    m.options = m.paths.options(extra)
    try:
        m.mount()
        try:
            return observe.snapshot(m.os, m.mount_path)
        finally:
            m.umount()
    finally:
        m.options = saved


def _remount(m: OverlayMount) -> str:
    try:
        m.remount()
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    return "mounted"
