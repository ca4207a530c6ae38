"""One side of a comparison: lowers, the overlay mounted with one option set, the run, the result."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from overlaysim.demo_layers import build_app, build_base
from overlaysim.errors import OverlaySimError, UsageError
from overlaysim.events import Event
from overlaysim.replay import (
    EPOCH_NS,
    ReplayConfig,
    Session,
    from_dirs,
    from_image,
    mount_layers,
    replay,
)
from overlaysim.shell.context import id_names
from overlaysim.shell.executor import Shell
from overlaysim.testing.observe import Snapshot, snapshot, snapshot_work
from overlaysim.vfs.hostfs import HostFS
from overlaysim.vfs.superblock import StepClock

_DEMO_ROOT = "/.overlaysim-compare"
#: engine events that are bookkeeping, not decisions about a path
_QUIET = frozenset({"mount", "umount"})


@dataclass(frozen=True)
class Lowers:
    """Where both sides' lowers come from: real dirs, an image archive, an image of the saved
    world, or the demo layers. Each side gets its own fresh copy, so neither sees the other."""

    dirs: tuple[str, ...] = ()
    archive: str | None = None
    ref: str | None = None
    world: str | None = None  # with ``image``: the saved world holding it
    image: str | None = None

    def describe(self) -> str:
        if self.dirs:
            return "lowerdir=" + ":".join(self.dirs)
        if self.archive:
            return f"image {self.archive}" + (f" ({self.ref})" if self.ref else "")
        if self.image:
            return f"image {self.image} of the world {self.world}"
        return "the demo layers (app over an ubuntu-like base)"

    def session(self, options: str) -> Session:
        if self.dirs:
            return from_dirs(list(self.dirs), options)
        if self.archive:
            return from_image(self.archive, self.ref, options)
        if self.image:
            return _world_image(self.world or "", self.image, options)
        fs = HostFS(StepClock(EPOCH_NS, 1_000))
        app, base = f"{_DEMO_ROOT}/lower0", f"{_DEMO_ROOT}/lower1"
        build_base(fs.os, base)
        build_app(fs.os, app)
        return mount_layers(fs, [app, base], options)


def _world_image(world: str, name: str, options: str) -> Session:
    """An image of the saved world: its overlay2 layer dirs as the lowers, in a copy of the
    world that is never saved (as ``explain IMAGE:/path`` does)."""
    from overlaysim.docker.layerdirs import image_layer_dirs
    from overlaysim.explain import dockerinfo
    from overlaysim.world import load_world
    from overlaysim.world.store import is_absent

    if is_absent(world):
        raise UsageError(f"--image {name}: not a file, and there is no world file {world}")
    w = load_world(world)
    if not dockerinfo.has_docker(w.fs):
        raise UsageError(f"--image {name}: not a file, and the world {world} has no images")
    d = dockerinfo.daemon(w.fs, w.meta, w.seed)
    try:
        image_id, _ = d.images.resolve(name)
    except OverlaySimError as e:
        raise UsageError(f"--image {name}: not a file, and not an image of {world} ({e})") from None
    layers = image_layer_dirs(d, image_id)
    if not layers:
        raise UsageError(f"--image {name}: the image has no layers")
    return mount_layers(w.fs, [layer.dir for layer in reversed(layers)], options)


@dataclass
class Step:
    """One command (or the whole trace): its status, its output and the decisions it caused."""

    command: str
    status: int
    output: str
    events: list[Event] = field(default_factory=list)


@dataclass
class SideResult:
    options: str
    refused: str | None = None  # the mount's refusal, in the kernel's words
    steps: list[Step] = field(default_factory=list)
    upper: Snapshot | None = None
    work: Snapshot | None = None  # temp names and index entries normalised (snapshot_work)
    prefix: str = "trusted.overlay."

    @property
    def events(self) -> list[Event]:
        return [e for s in self.steps for e in s.events]

    def copied_bytes(self) -> int:
        return sum(int(e.detail.get("bytes", 0)) for e in self.events if e.kind == "copy_up")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.events:
            out[e.kind] = out.get(e.kind, 0) + 1
        return out


def _decisions(events: Sequence[Event]) -> list[Event]:
    return [e for e in events if e.kind not in _QUIET]


def _run_script(session: Session, script: str) -> list[Step]:
    fs, o = session.fs, session.root.os
    buf = io.BytesIO()
    steps: list[Step] = []
    mark = [len(fs.events), 0]

    def after(node: Any, status: int) -> None:
        from overlaysim.explain.live import command_text

        out = buf.getvalue()[mark[1] :].decode("utf-8", "replace")
        steps.append(Step(command_text(node), status, out, _decisions(fs.events.since(mark[0]))))
        mark[0], mark[1] = len(fs.events), len(buf.getvalue())

    shell = Shell(o, stdout=buf, stderr=buf, cwd="/", clock=lambda: fs.clock() / 1e9,
                  passwd=id_names(o, "/etc/passwd") or None,
                  group=id_names(o, "/etc/group") or None)  # fmt: skip
    shell.after_command = after
    shell.run(script)
    return steps


def _run_trace(session: Session, trace: str) -> list[Step]:
    seen: list[Event] = []
    stop = session.fs.events.subscribe(seen.append)
    try:
        res = replay(trace, ReplayConfig(options=session.options), session=session)
    finally:
        stop()
    replayed = res.report.get("calls", {}).get("replayed", 0)
    differ = int(res.report.get("mismatch_count", 0))
    out = f"{replayed} calls replayed, {differ} results differ from the recording"
    return [Step(f"replay {trace}", 0, out, _decisions(seen))]


def run_side(lowers: Lowers, options: str, *, script: str | None = None,
             trace: str | None = None) -> SideResult:  # fmt: skip
    """Mount ``lowers`` with ``options`` and run ``script`` or ``trace``; a refused mount is a
    result (its reason), not an error: comparing a valid set with an invalid one is a lesson."""
    result = SideResult(options)
    try:
        session = lowers.session(options)
    except UsageError as e:
        if "cannot be mounted" not in str(e):
            raise
        result.refused = str(e).split(": ", 1)[-1]
        return result
    result.prefix = "user.overlay." if session.userxattr else "trusted.overlay."
    if trace is not None:
        result.steps = _run_trace(session, trace)
    else:
        result.steps = _run_script(session, script or "")
    _umount(session)
    o = session.fs.os
    result.upper = snapshot(o, session.upper, upper_prefix=result.prefix)
    result.work = snapshot_work(o, session.work, result.prefix, upper=session.upper)
    return result


def _umount(session: Session) -> None:
    """Unmount, as the kernel side of a test does before reading upper and work: what is
    left behind is what a user finds. A mount still busy (a replayed process holding it) is
    read as it is."""
    session.root.exit()
    try:
        session.fs.umount(session.merged)
    except OSError:
        pass
