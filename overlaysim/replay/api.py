"""``replay()``: a trace (strace log(s) or our JSONL) + lowers -> the predicted upper dir and
a report. The CLI is a thin shell around this; tests and notebooks call it directly.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import TraceError, UsageError
from overlaysim.replay.executor import MAX_FILE_BYTES, Replayer
from overlaysim.replay.format import Op, read_jsonl
from overlaysim.replay.procs import Scope, normalize
from overlaysim.replay.report import ReportBuilder, commit_layer_bytes, upper_stats
from overlaysim.replay.session import Session, from_dirs, from_image
from overlaysim.replay.strace import StraceParser, open_trace_text, parse_strace_files

Progress = Callable[[int], None]


@dataclass
class ReplayConfig:
    """Everything about the overlay the trace ran on (``mount -o`` and where it was seen)."""

    lowerdirs: Sequence[str] = ()
    upperdir: str | None = None
    image: str | None = None
    image_ref: str | None = None
    options: str = ""
    mount_point: str = "/"
    cwd: str | None = None
    uid: int = 0
    gid: int = 0
    exclude: tuple[str, ...] = ("/proc", "/sys", "/dev")
    max_file_bytes: int = MAX_FILE_BYTES
    max_rows: int | None = None  # rows kept per kind of event in the report (None: 1000)

    def scope(self) -> Scope:
        mp = normalize(self.mount_point)
        if not mp.startswith("/"):
            raise UsageError(f"--mount-point must be absolute: {self.mount_point}")
        return Scope(mp, tuple(normalize(x) for x in self.exclude if x))

    def session(self) -> Session:
        mp = self.scope().mount_point
        if self.image:
            return from_image(self.image, self.image_ref, self.options, mp, self.cwd, self.uid,
                              self.gid, self.upperdir)  # fmt: skip
        return from_dirs(list(self.lowerdirs), self.options, mp, self.cwd, self.uid, self.gid,
                         self.upperdir)  # fmt: skip


@dataclass
class ReplayResult:
    session: Session
    report: dict[str, Any]
    skipped: Counter[str] = field(default_factory=Counter)

    def write_upper(self, real_dir: str) -> None:
        """Write the predicted upper dir in the kernel's on-disk form (whiteout devices,
        overlay xattrs); ``real_dir`` must be absent or an empty directory."""
        write_upper(self.session, real_dir)


class TraceSource:
    """The ops of one trace, however it was recorded, and what its parser skipped."""

    def __init__(self, paths: Sequence[str], progress: Progress | None = None) -> None:
        if not paths:
            raise UsageError("no trace given")
        for p in paths:
            if not os.path.isfile(p):
                raise UsageError(f"{p}: no such trace file")
        self.paths = list(paths)
        self.progress = progress
        self.parser: StraceParser | None = None
        self.kind = "strace"
        self.lines = 0

    def _counted(self, lines: Iterable[str]) -> Iterator[str]:
        n = 0
        prog = self.progress
        for line in lines:
            n += 1
            if prog is not None and not n & 0x3FFF:
                prog(n)
            yield line
        self.lines = n
        if prog is not None:
            prog(n)

    def ops(self) -> Iterator[Op]:
        if len(self.paths) > 1:
            self.parser, it = parse_strace_files(self.paths)
            self.kind = "strace -ff"
            return it
        text = open_trace_text(self.paths[0])
        first = next(text, "")
        lines = self._counted(_chain(first, text))
        if first.lstrip().startswith("{"):
            self.kind = "jsonl"
            return read_jsonl(lines, self.paths[0])
        self.parser = StraceParser(self.paths[0])
        return self.parser.parse(lines)

    @property
    def skipped(self) -> Counter[str]:
        return Counter(self.parser.skipped) if self.parser is not None else Counter()

    @property
    def line_count(self) -> int:
        if self.parser is not None and self.parser.lines:
            return self.parser.lines
        return self.lines


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def run(ops: Iterable[Op], session: Session, scope: Scope, max_file_bytes: int = MAX_FILE_BYTES,
        max_rows: int | None = None) -> tuple[Replayer, ReportBuilder]:  # fmt: skip
    """Apply ``ops`` to ``session``; the engine's decisions go to the returned report builder."""
    builder = ReportBuilder(session.merged, scope.mount_point, max_rows)
    rep = Replayer(session, scope, builder, max_file_bytes)
    for op in ops:
        rep.apply(op)
    rep.finish()
    return rep, builder


def replay(trace: str | Sequence[str], config: ReplayConfig,
           progress: Progress | None = None, session: Session | None = None) -> ReplayResult:  # fmt: skip
    """Replay ``trace`` (one log, or the ``-ff`` per-pid files) on a fresh overlay built from
    ``config`` (or on ``session``, e.g. a container of a saved world)."""
    paths = [trace] if isinstance(trace, str) else list(trace)
    src = TraceSource(paths, progress)
    scope = config.scope()
    if session is None:
        session = config.session()
    try:
        rep, builder = run(src.ops(), session, scope, config.max_file_bytes, config.max_rows)
    except RecursionError:
        raise TraceError(f"{paths[0]}: nesting too deep to parse") from None
    o = session.fs.os
    prefix = "user.overlay." if session.userxattr else "trusted.overlay."
    ignored = dict(rep.ignored)
    report = builder.build(
        trace=paths[0] if len(paths) == 1 else paths,
        trace_kind=src.kind,
        lines=src.line_count,
        lowerdirs=list(config.lowerdirs) if not config.image else [
            f"{config.image} layer {len(session.lowers) - 1 - i}" for i in range(len(session.lowers))
        ],
        options=session.options,
        mount_point=scope.mount_point,
        calls={"parsed": rep.replayed + sum(ignored.values()), "replayed": rep.replayed,
               "ignored_total": sum(ignored.values()), "ignored": ignored},
        parse_skipped=dict(src.skipped),
        upper=upper_stats(o, session.upper, prefix),
        commit_layer_bytes=commit_layer_bytes(o, session.upper, prefix),
    )
    return ReplayResult(session, report, src.skipped)


def write_upper(session: Session, real_dir: str) -> None:
    if os.path.lexists(real_dir):
        if not os.path.isdir(real_dir) or os.path.islink(real_dir):
            raise UsageError(f"--write-upper: {real_dir}: exists and is not a directory")
        if os.listdir(real_dir):
            raise UsageError(f"--write-upper: {real_dir}: not empty (refusing to mix trees)")
        os.rmdir(real_dir)
    try:
        session.fs.export_tree(session.upper, real_dir, exact=True)
    except OSError as e:
        if os.path.isdir(real_dir):
            shutil.rmtree(real_dir, ignore_errors=True)
        raise UsageError(f"--write-upper: {real_dir}: {e.strerror or e}"
                         + (" (trusted.* xattrs and devices need root)" if os.geteuid() else "")
                         ) from None  # fmt: skip
