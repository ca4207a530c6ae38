"""What a replay found: copy-ups with their trace lines, whiteouts, opaque dirs, redirects,
recorded-vs-simulated differences, the upper dir's weight and the layer ``docker commit``
would make. Plain JSON-able data, so the CLI, the tests and ``--what-if`` share one shape.
"""

from __future__ import annotations

import stat as st
from collections import Counter
from typing import Any

from overlaysim.events import Event

REPORT_FORMAT = "overlaysim-replay-report"
REPORT_VERSION = 1
#: Differences kept in full; beyond this only the count grows (memory stays flat).
MAX_MISMATCHES = 1000
#: Rows kept per kind of engine decision (``--max-rows``); ``counts`` and the byte totals stay
#: exact beyond, so memory does not grow with the trace.
MAX_ROWS = 1000
_EVENT_KEYS = {"copy_up": "copy_ups", "whiteout": "whiteouts", "opaque": "opaque_dirs",
               "redirect": "redirects", "origin": "origin_fixes", "exdev": "exdev"}  # fmt: skip


class ReportBuilder:
    """Collects one replay's findings; paths are shown as the traced programs saw them."""

    def __init__(self, merged: str = "/", mount_point: str = "/",
                 max_rows: int | None = None) -> None:  # fmt: skip
        self.max_rows = MAX_ROWS if max_rows is None else max_rows
        self._merged = merged.rstrip("/")
        self._mp = mount_point.rstrip("/")
        self.events: dict[str, list[dict[str, Any]]] = {k: [] for k in _EVENT_KEYS.values()}
        self.counts: dict[str, int] = dict.fromkeys(_EVENT_KEYS.values(), 0)
        self.copy_bytes = self.copy_data_bytes = 0
        self.mismatches: list[dict[str, Any]] = []
        self.mismatch_count = 0
        self._unknown: set[str] = set()
        self.orphans: list[int] = []

    def event(self, ev: Event, op: dict[str, Any], program: str) -> None:
        key = _EVENT_KEYS.get(ev.kind)
        if key is None:
            return
        path = ev.path
        if self._merged and (path == self._merged or path.startswith(self._merged + "/")):
            path = (self._mp + path[len(self._merged):]) or "/"
        row: dict[str, Any] = {
            "path": path, "line": op.get("line"), "pid": op["pid"], "program": program,
            "call": op.get("call") or op["op"], "reason": ev.reason,
        }  # fmt: skip
        if ev.kind == "copy_up":
            row["type"] = ev.detail.get("type")
            row["layer"] = ev.detail.get("layer")
            row["bytes"] = int(ev.detail.get("bytes", 0))
            row["metadata_only"] = bool(ev.detail.get("metadata_only", False))
            row["data_bytes"] = 0 if row["metadata_only"] else row["bytes"]
            self.copy_bytes += row["bytes"]
            self.copy_data_bytes += row["data_bytes"]
        elif ev.kind == "redirect":
            row.update({k: v for k, v in ev.detail.items() if isinstance(v, str | int)})
        self.counts[key] += 1
        if len(self.events[key]) < self.max_rows:
            self.events[key].append(row)

    def mismatch(self, op: dict[str, Any], program: str, recorded: str, simulated: str) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < MAX_MISMATCHES:
            self.mismatches.append({
                "line": op.get("line"), "pid": op["pid"], "program": program,
                "call": op.get("call") or op["op"], "args": _brief(op),
                "recorded": recorded, "simulated": simulated,
            })  # fmt: skip

    def note_orphan(self, pid: int) -> None:
        self.orphans.append(pid)

    # --- content honesty ----------------------------------------------------------------------
    def content_unknown(self, rel: str) -> None:
        self._unknown.add(rel)

    def forget_content(self, rel: str) -> None:
        self._unknown.discard(rel)

    def move_content(self, old: str, new: str) -> None:
        if not self._unknown:
            return
        self._unknown.discard(new)
        prefix = old + "/"
        for p in [p for p in self._unknown if p == old or p.startswith(prefix)]:
            self._unknown.discard(p)
            self._unknown.add(new + p[len(old):])

    @property
    def unknown_paths(self) -> list[str]:
        return sorted(self._unknown)

    # --- the finished report ------------------------------------------------------------------
    def build(self, **facts: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"format": REPORT_FORMAT, "version": REPORT_VERSION, **facts}
        out["copy_up_bytes"] = self.copy_bytes
        out["copy_up_data_bytes"] = self.copy_data_bytes
        out["counts"] = dict(self.counts)
        out["rows_kept_per_kind"] = self.max_rows
        out.update(self.events)
        out["mismatch_count"] = self.mismatch_count
        out["mismatches"] = self.mismatches
        out["content_unknown"] = self.unknown_paths
        out["processes_without_parent"] = self.orphans
        return out


def _brief(op: dict[str, Any]) -> dict[str, Any]:
    skip = {"op", "pid", "line", "ts", "call", "ret", "err", "data", "value"}
    return {k: v for k, v in op.items() if k not in skip}


def upper_stats(o: Any, upper: str, prefix: str) -> dict[str, Any]:
    """Entries of the upper dir by kind, its apparent size (regular files, once per inode) and
    the bytes of data it really holds (metacopy files are sparse: their data is below)."""
    kinds: Counter[str] = Counter()
    size = data = 0
    seen: set[int] = set()
    stack = [upper]
    while stack:
        d = stack.pop()
        for name in o.listdir(d):
            p = d.rstrip("/") + "/" + name
            s = o.lstat(p)
            fmt = st.S_IFMT(s.st_mode)
            if fmt == st.S_IFDIR:
                kinds["dirs"] += 1
                stack.append(p)
                try:
                    o.getxattr(p, prefix + "opaque", follow_symlinks=False)
                    kinds["opaque_dirs"] += 1
                except OSError:
                    pass
            elif fmt == st.S_IFCHR and s.st_rdev == 0:
                kinds["whiteouts"] += 1
            elif fmt == st.S_IFREG:
                kinds["files"] += 1
                if s.st_ino not in seen:
                    seen.add(s.st_ino)
                    size += s.st_size
                    try:
                        o.getxattr(p, prefix + "metacopy", follow_symlinks=False)
                        kinds["metacopy_files"] += 1  # sparse: its data stays in a lower
                    except OSError:
                        data += s.st_size
            elif fmt == st.S_IFLNK:
                kinds["symlinks"] += 1
            else:
                kinds["other"] += 1
    counted = ("opaque_dirs", "metacopy_files")
    out: dict[str, Any] = {"entries": sum(v for k, v in kinds.items() if k not in counted)}
    for k in ("files", "dirs", "symlinks", "whiteouts", "opaque_dirs", "metacopy_files", "other"):
        out[k] = kinds.get(k, 0)
    out["bytes"] = size
    out["data_bytes"] = data
    return out


class _Count:
    """A write-only sink that only counts bytes (the commit layer is sized, not kept)."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)


def commit_layer_bytes(o: Any, upper: str, prefix: str) -> int:
    """Size of the uncompressed tar ``docker commit`` makes of this upper dir (overlay2's
    native diff: whiteouts as ``.wh.`` files, opaque dirs as ``.wh..wh..opq``)."""
    from overlaysim.image.export import layer_tar

    sink = _Count()
    layer_tar(o, upper, sink, opaque_xattr=prefix + "opaque")
    return sink.n


def fsize(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def summary_lines(rep: dict[str, Any]) -> list[str]:
    """A readable summary of a report (the terminal output of ``overlaysim replay``)."""
    up = rep["upper"]
    calls = rep["calls"]
    lines = [
        f"trace: {rep['trace']}  ({rep['lines']} lines, {calls['parsed']} calls parsed, "
        f"{calls['replayed']} replayed, {calls['ignored_total']} ignored)",
        f"overlay: {rep['mount_point']} over {len(rep['lowerdirs'])} lower(s)"
        + (f", options {rep['options']}" if rep["options"] else ""),
        f"copy-ups: {rep['counts']['copy_ups']} ({fsize(rep['copy_up_data_bytes'])} of data "
        "copied)",
    ]
    for row in rep["copy_ups"][:20]:
        what = "metadata only" if row["metadata_only"] else fsize(row["bytes"])
        lines.append(f"  line {row['line']}: {row['program'] or '?'}[{row['pid']}] "
                     f"{row['call']} -> copy-up {row['path']} ({row['type']}, {what})")  # fmt: skip
    counts = rep["counts"]
    if counts["copy_ups"] > 20:
        lines.append(f"  ... {counts['copy_ups'] - 20} more in the JSON report")
    lines.append(f"whiteouts: {counts['whiteouts']}, opaque dirs: {counts['opaque_dirs']}, "
                 f"redirects: {counts['redirects']}")  # fmt: skip
    for key in ("whiteouts", "opaque_dirs", "redirects"):
        for row in rep[key][:10]:
            lines.append(f"  line {row['line']}: {row['call']} -> {key[:-1]} {row['path']}"
                         f" ({row['reason']})")  # fmt: skip
    kinds = ", ".join(_n(up[k], k[:-1]) for k in ("files", "dirs", "symlinks", "whiteouts"))
    meta = (f", {_n(up['metacopy_files'], 'metacopy file')} holding no data"
            if up["metacopy_files"] else "")  # fmt: skip
    lines.append(f"upper dir: {_n(up['entries'], 'entry')} ({kinds}{meta}), "
                 f"{fsize(up['bytes'])}" + (f" ({fsize(up['data_bytes'])} of data)" if meta else ""))
    lines.append(f"docker commit layer: {fsize(rep['commit_layer_bytes'])} (uncompressed tar)")
    if rep["content_unknown"]:
        lines.append(f"content unknown (strace kept only part of the written bytes): "
                     f"{len(rep['content_unknown'])} file(s)")  # fmt: skip
        lines.extend(f"  {p}" for p in rep["content_unknown"][:10])
    ign = calls["ignored"]
    if ign:
        lines.append("ignored: " + ", ".join(f"{n} {why}" for why, n in
                                            sorted(ign.items(), key=lambda kv: -kv[1])))  # fmt: skip
    skipped = dict(rep["parse_skipped"])
    other = {k[len(_NOT_FILE):]: skipped.pop(k) for k in list(skipped) if k.startswith(_NOT_FILE)}
    if other:
        top = sorted(other.items(), key=lambda kv: -kv[1])
        lines.append(f"not file calls: {sum(other.values())} (" + ", ".join(
            f"{name} {n}" for name, n in top[:6]) + (", ..." if len(top) > 6 else "") + ")")
    if skipped:
        lines.append("not replayed: " + ", ".join(f"{n} {why}" for why, n in
                                                 sorted(skipped.items(), key=lambda kv: -kv[1])))
    n = rep["mismatch_count"]
    lines.append(f"recorded vs simulated: {'all agree' if not n else f'{n} differ'}")
    for row in rep["mismatches"][:20]:
        lines.append(f"  line {row['line']}: {row['program'] or '?'}[{row['pid']}] "
                     f"{row['call']}({_args(row['args'])}) recorded {row['recorded']}, "
                     f"simulated {row['simulated']}")
    return lines


_NOT_FILE = "not a file call "


def _n(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {plural}"


def _args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in list(args.items())[:4])

