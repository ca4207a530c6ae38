"""A simulated overlay with a judge beside it, driven one operation at a time.

:func:`~overlaysim.testing.differential.run_case` judges a whole case at once; the state
machine and the pytest plugin need the same judgement step by step, so that a rule or a test
body can interleave its own code and still get, on the first disagreement, both results and a
shell script that replays the operations on a real kernel. This module is that step-by-step
form: the same :mod:`~overlaysim.testing.ops` vocabulary, the same normalised observations
(:mod:`~overlaysim.testing.observe`), the same reproducer (:mod:`~overlaysim.testing.script`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import UsageError
from overlaysim.testing import layers as L
from overlaysim.testing import observe
from overlaysim.testing import ops as O
from overlaysim.testing.differential import Divergence, MountFactory, OverlayMount

# --- layer specs ------------------------------------------------------------------------------

TreeSpec = L.Dir | Mapping[str, Any]


def tree_from_spec(spec: TreeSpec) -> L.Dir:
    """A layer from a nested mapping: ``str``/``bytes`` values are files with that content,
    mappings are directories, :mod:`~overlaysim.testing.layers` nodes are taken as they are."""
    if isinstance(spec, L.Dir):
        return spec
    if not isinstance(spec, Mapping):
        raise UsageError(f"a layer is a mapping of names or a layers.Dir, not {type(spec).__name__}")
    entries: dict[str, L.Node] = {}
    for name, value in spec.items():
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise UsageError(f"bad name {name!r} in a layer spec (one path component)")
        if isinstance(value, str | bytes):
            entries[name] = L.File(data=os.fsencode(value) if isinstance(value, str) else value)
        elif isinstance(value, Mapping):
            entries[name] = tree_from_spec(value)
        elif isinstance(value, L.File | L.Dir | L.Symlink | L.Whiteout | L.Device | L.Fifo
                        | L.HardLink):  # fmt: skip
            entries[name] = value
        else:
            raise UsageError(f"{name!r}: {type(value).__name__} is not a layer node")
    return L.Dir(entries=entries)


def stack_from_spec(spec: L.LayerStack | Mapping[str, Any] | None = None) -> L.LayerStack:
    """A :class:`~overlaysim.testing.layers.LayerStack` from ``{"lowers": [top, ...],
    "upper": tree}`` (``"lower"`` for a single lower; ``upper`` None: read-only; missing: an
    empty upper). ``None`` gives one empty lower and an empty upper."""
    if isinstance(spec, L.LayerStack):
        return spec
    spec = dict(spec or {})
    unknown = set(spec) - {"lowers", "lower", "upper"}
    if unknown:
        raise UsageError(f"unknown layer spec keys {sorted(unknown)} (lowers, lower, upper)")
    if "lowers" in spec and "lower" in spec:
        raise UsageError("give either 'lower' or 'lowers', not both")
    lowers = spec.get("lowers", [spec["lower"]] if "lower" in spec else [{}])
    if isinstance(lowers, Mapping | L.Dir) or not lowers:
        raise UsageError("'lowers' is a non-empty list of layers, top first")
    upper = spec.get("upper", {})
    return L.LayerStack(lowers=tuple(tree_from_spec(t) for t in lowers),
                        upper=None if upper is None else tree_from_spec(upper))  # fmt: skip


# --- judges -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judge:
    """The side a simulated overlay is judged against, and how far it can be compared."""

    name: str
    factory: MountFactory | None  # None: the simulator alone, nothing to compare
    compare: tuple[str, ...] = ("merged", "upper", "work")
    ignore: tuple[str, ...] = ()
    hardlinks: bool = True  # whether stacks may hold lower hard links
    sanitized: bool = False  # only stacks the reference model represents exactly
    judged: MountFactory | None = None  # the side judged when not overlaysim's simulator
    reason: str = ""


def resolve_judge(name: str = "auto") -> Judge:
    """``kernel`` (mount(2); refused where not permitted), ``reference`` (the flat model),
    ``auto`` (the kernel where permitted, else the reference model), ``none``; any other
    name is a fuzz target spec of :func:`overlaysim.fuzz.targets.resolve_target`
    (``fuse-overlayfs``, ``simulator:A,B``, a command). Raises
    :class:`~overlaysim.errors.UsageError` (``TargetError`` for a target spec)."""
    from overlaysim.testing.kernel import can_mount

    if name in ("auto", "kernel"):
        ok, why = can_mount()
        if ok:
            from overlaysim.testing.kernel import kernel_factory

            return Judge("kernel", kernel_factory, reason=why)
        if name == "kernel":
            raise UsageError(f"the kernel twin is not available here: {why}")
        name = "reference"
    if name == "reference":
        from overlaysim.testing.reference import reference_factory

        return Judge("reference", reference_factory, ("merged",), ("links", "inodes"),
                     hardlinks=False, sanitized=True,
                     reason="flat reference model (merged view only)")  # fmt: skip
    if name == "none":
        return Judge("none", None, (), reason="simulator only")
    from overlaysim.fuzz.targets import resolve_target

    target = resolve_target(name)
    usable, why = target.available()
    if not usable:
        raise UsageError(f"judge {name!r} is not available here: {why}")
    oracle, judged = target.sides()
    return Judge(target.name, oracle, tuple(target.compare), tuple(target.ignore),
                 hardlinks=target.hardlinks, judged=judged, reason=why)  # fmt: skip


# --- the twin ---------------------------------------------------------------------------------


def step_clock_simulator(stack: L.LayerStack, options: str) -> OverlayMount:
    """overlaysim's simulator, mounted on a machine whose clock advances 1 µs per reading
    (:class:`~overlaysim.vfs.StepClock`): a replayed case then reads the same timestamps, so it
    runs the same code (relatime updates and stat caching compare them); on the wall clock they
    depend on timing. The twin never compares times with its judge."""
    from overlaysim.testing.simulator import SimOverlay
    from overlaysim.vfs import HostFS, StepClock

    return SimOverlay(stack, options, fs=HostFS(clock=StepClock())).__enter__()


class TwinDivergence(AssertionError):
    """The simulated overlay and its judge disagreed; the message carries both sides and a
    shell script that replays the operations so far on a real kernel."""

    def __init__(self, divergence: Divergence, script: str, judge: str) -> None:
        self.divergence, self.script, self.judge = divergence, script, judge
        super().__init__(f"overlay divergence, {judge} vs simulator: {divergence}\n"
                         f"--- reproducer (bash, as root) ---\n{script}")  # fmt: skip


def _errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, str(e.errno))


class OverlayTwin:
    """A simulated overlay of ``stack`` and, unless the judge is ``none``, its judge.

    :meth:`apply` runs an operation on both and raises :class:`TwinDivergence` when the
    results differ; :meth:`check` compares the trees the judge can show. ``os`` is an
    os-like front end over :meth:`apply` (paths relative to the mount point).
    """

    def __init__(self, stack: L.LayerStack | Mapping[str, Any] | None = None, options: str = "",
                 *, judge: Judge | str = "auto", simulator: MountFactory | None = None) -> None:  # fmt: skip
        self.judge = resolve_judge(judge) if isinstance(judge, str) else judge
        self.stack = stack_from_spec(stack)
        if self.judge.sanitized:
            from overlaysim.testing.reference import sanitize

            if sanitize(self.stack) != self.stack:
                raise UsageError(f"the {self.judge.name} judge cannot represent this stack "
                                 "(hard links, xattr whiteouts, opaque='x' or stray whiteouts)")  # fmt: skip
        self.options = options
        self.ops: list[O.Op] = []
        self.failed = False  # after a divergence, closing compares nothing more
        self.results: list[tuple[O.Result | None, O.Result]] = []
        self._sim_factory: MountFactory = simulator or self.judge.judged or step_clock_simulator
        self.sim: OverlayMount | None = None
        self.oracle: OverlayMount | None = None
        self.os = TwinOs(self)
        self._mount()

    @property
    def mounted(self) -> bool:
        return self.sim is not None

    @property
    def mount_path(self) -> str:
        """The simulated mount point (a path of ``sim.os``)."""
        return self._need_sim().mount_path

    def _need_sim(self) -> OverlayMount:
        if self.sim is None:
            raise UsageError("the overlay is not mounted")
        return self.sim

    def _fail(self, where: str, op: O.Op | None = None, oracle: Any = None, sim: Any = None,
              detail: Sequence[str] = ()) -> TwinDivergence:  # fmt: skip
        d = Divergence(where, op, oracle, sim, list(detail))
        self.failed = True
        return TwinDivergence(d, self.script(), self.judge.name)

    def _mount(self) -> None:
        """Mount both sides; the same refusal on both is an agreement (re-raised)."""
        sim: OverlayMount | OSError
        try:
            sim = self._sim_factory(self.stack, self.options)
        except OSError as e:
            sim = e
        oracle: OverlayMount | OSError | None = None
        if self.judge.factory is not None:
            try:
                oracle = self.judge.factory(self.stack, self.options)
            except OSError as e:
                oracle = e
        if not isinstance(sim, OSError):
            self.sim = sim
        if oracle is not None and not isinstance(oracle, OSError):
            self.oracle = oracle
        ra = "mounted" if oracle is None or not isinstance(oracle, OSError) else _errname(oracle)
        rb = _errname(sim) if isinstance(sim, OSError) else "mounted"
        if oracle is not None and ra != rb:
            self.close(check=False)
            raise self._fail("mount", oracle=ra, sim=rb)
        if isinstance(sim, OSError):
            self.close(check=False)
            raise sim

    def apply(self, op: O.Op) -> O.Result:
        """Run ``op`` on both sides; the simulator's result, or :class:`TwinDivergence`."""
        __tracebackhide__ = True  # pytest: show the caller, not this frame
        sim = self._need_sim()
        self.ops.append(op)
        got = O.apply(op, sim.os, sim.mount_path)
        want = O.apply(op, self.oracle.os, self.oracle.mount_path) if self.oracle else None
        self.results.append((want, got))
        if want is not None and want != got:
            raise self._fail(f"op {len(self.ops) - 1}", op, want, got)
        return got

    def check(self, where: str = "now") -> None:
        """Compare the merged (and upper) trees, as far as the judge can show them."""
        __tracebackhide__ = True  # pytest: show the caller, not this frame
        if self.oracle is None or self.sim is None:
            return
        a, b, ignore = self.oracle, self.sim, self.judge.ignore
        prefix = L.xattr_prefix_for(self.options)
        views: list[tuple[str, Any, str, Any, str, str | None]] = [
            ("merged", a.os, a.mount_path, b.os, b.mount_path, None)]
        if "upper" in self.judge.compare and a.upper_root and b.upper_root:
            views.append(("upper", a.upper_os, a.upper_root, b.upper_os, b.upper_root, prefix))
        for name, ao, ar, bo, br, pre in views:
            sa = observe.without(observe.snapshot(ao, ar, upper_prefix=pre), ignore)
            sb = observe.without(observe.snapshot(bo, br, upper_prefix=pre), ignore)
            if sa != sb:
                raise self._fail(f"{where}: {name}",
                                 detail=observe.diff(sa, sb, (self.judge.name, "simulator")))  # fmt: skip

    def _umount(self, where: str) -> None:
        __tracebackhide__ = True  # pytest: show the caller, not this frame
        a, b = self.oracle, self._need_sim()
        if a is not None:
            a.umount()
        b.umount()
        if a is not None and "work" in self.judge.compare and a.work_root and b.work_root:
            prefix = L.xattr_prefix_for(self.options)
            wa = observe.without(observe.snapshot_work(a.work_os, a.work_root, prefix), self.judge.ignore)
            wb = observe.without(observe.snapshot_work(b.work_os, b.work_root, prefix), self.judge.ignore)
            if wa != wb:
                raise self._fail(f"{where}: work dir",
                                 detail=observe.diff(wa, wb, (self.judge.name, "simulator")))  # fmt: skip

    def remount(self) -> str:
        """Unmount both (comparing work dirs), mount again; "mounted" or the shared errno."""
        __tracebackhide__ = True  # pytest: show the caller, not this frame
        self._umount("umount for remount")
        outcome = []
        for side in (self.oracle, self.sim):
            if side is None:
                continue
            try:
                side.remount()
                outcome.append("mounted")
            except OSError as e:
                outcome.append(_errname(e))
        if len(set(outcome)) > 1:
            raise self._fail("remount", oracle=outcome[0], sim=outcome[-1])
        if outcome[-1] == "mounted":
            self.check("after remount")
        return outcome[-1]

    def script(self) -> str:
        """A bash script replaying the layers and the operations so far on a real kernel."""
        from overlaysim.testing.script import to_script

        return to_script(self.stack, self.ops, self.options)

    def close(self, check: bool = True) -> None:
        """Compare the trees and work dirs (``check``), then unmount and free both sides."""
        __tracebackhide__ = True  # pytest: show the caller, not this frame
        try:
            if check and self.sim is not None and not self.failed:
                self.check("at the end")
                self._umount("after umount")
        finally:
            for side in (self.oracle, self.sim):
                if side is not None:
                    side.close()
            self.oracle = self.sim = None

    def __enter__(self) -> OverlayTwin:
        return self

    def __exit__(self, t: type[BaseException] | None, *_: object) -> None:
        self.close(check=t is None)


class TwinOs:
    """An os-like front end: each call is one :mod:`~overlaysim.testing.ops` operation on a
    path relative to the mount point, run on both sides. Values are normalised as ops
    normalise them (``stat`` gives :func:`~overlaysim.testing.ops.stat_summary`, listings
    are sorted); an errno both sides agree on is raised as ``OSError``."""

    def __init__(self, twin: OverlayTwin) -> None:
        self._twin = twin

    def _do(self, op: O.Op, pick: Callable[[O.Result], Any] = lambda r: r.value) -> Any:
        __tracebackhide__ = True  # pytest: show the caller, not this frame
        r = self._twin.apply(op)
        if r.errno is not None:
            code = getattr(errno, r.errno, 0)
            raise OSError(code, os.strerror(code) if code else r.errno, op.paths()[0])
        return pick(r)

    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o644, *,
             write: bytes | None = None, read: int | None = None) -> tuple[int | None, bytes | None]:  # fmt: skip
        """open(2), optionally write then pread at 0, close: (bytes written, data read)."""
        return self._do(O.Open(path, flags, mode, write, read), lambda r: (r.value, r.data))  # type: ignore[no-any-return]

    def read(self, path: str, size: int = 65536) -> bytes:
        return self._do(O.Open(path, os.O_RDONLY, read=size), lambda r: r.data)  # type: ignore[no-any-return]

    def write(self, path: str, data: bytes, append: bool = False) -> int:
        return self._do(O.Write(path, data, append))  # type: ignore[no-any-return]

    def create(self, path: str, data: bytes = b"", mode: int = 0o644) -> None:
        self._do(O.Open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode, data))

    def truncate(self, path: str, length: int) -> None:
        self._do(O.Truncate(path, length))

    def unlink(self, path: str) -> None:
        self._do(O.Unlink(path))

    def rmdir(self, path: str) -> None:
        self._do(O.Rmdir(path))

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        self._do(O.Mkdir(path, mode))

    def rename(self, src: str, dst: str, flags: int = 0) -> None:
        """rename(2), or renameat2(2) with ``ops.RENAME_NOREPLACE``/``EXCHANGE``/``WHITEOUT``."""
        self._do(O.Rename(src, dst, flags))

    def link(self, src: str, dst: str) -> None:
        self._do(O.Link(src, dst))

    def symlink(self, target: str, path: str) -> None:
        self._do(O.Symlink(target, path))

    def readlink(self, path: str) -> str:
        return self._do(O.Readlink(path))  # type: ignore[no-any-return]

    def chmod(self, path: str, mode: int) -> None:
        self._do(O.Chmod(path, mode))

    def chown(self, path: str, uid: int, gid: int, *, follow_symlinks: bool = True) -> None:
        self._do(O.Chown(path, uid, gid, follow_symlinks))

    def utime(self, path: str, ns: tuple[int, int], *, follow_symlinks: bool = True) -> None:
        self._do(O.Utime(path, ns, follow_symlinks))

    def mknod(self, path: str, kind: str = "fifo", major: int = 0, minor: int = 0,
              mode: int = 0o644) -> None:  # fmt: skip
        self._do(O.Mknod(path, kind, major, minor, mode))

    def stat(self, path: str) -> tuple[Any, ...]:
        return self._do(O.Stat(path, True))  # type: ignore[no-any-return]

    def lstat(self, path: str) -> tuple[Any, ...]:
        return self._do(O.Stat(path, False))  # type: ignore[no-any-return]

    def listdir(self, path: str = ".") -> list[str]:
        return self._do(O.Listdir(path))  # type: ignore[no-any-return]

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0) -> None:
        self._do(O.SetXattr(path, name, value, flags))

    def getxattr(self, path: str, name: str) -> bytes:
        return self._do(O.GetXattr(path, name))  # type: ignore[no-any-return]

    def removexattr(self, path: str, name: str) -> None:
        self._do(O.RemoveXattr(path, name))

    def listxattr(self, path: str) -> list[str]:
        return self._do(O.ListXattr(path))  # type: ignore[no-any-return]
