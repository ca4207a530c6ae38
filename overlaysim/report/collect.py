"""Gather a report's data from the world (an image or a container) or from a replay.

The layer stack is explain's (``explain.resolve``), so the bands carry the names its text
uses; each layer's entries are read from its diff dir (``dive.model.read_layer_dir``); each
drawn path's winner, roles and text are ``explain``'s answer, computed on a copy of the world
rebuilt from one snapshot per path, as ``overlaysim explain`` loads it from the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from overlaysim.dive.model import Entry, Layer, path_key, read_layer_dir
from overlaysim.errors import OverlaySimError
from overlaysim.explain import explain, resolve
from overlaysim.explain.render import text as explain_text
from overlaysim.explain.target import Target
from overlaysim.report.model import MAX_BARS, MAX_PATHS, Band, Cell, CopyUp, PathRow, Report

_HIDDEN_OPTIONS = ("lowerdir", "upperdir", "workdir")


class _Snap:
    """One frozen snapshot of a world; each ``copy()`` is a fresh machine rebuilt from it."""

    def __init__(self, world: Any, where: str) -> None:
        from overlaysim.explain.whatif import frozen

        self.snap = frozen(world.snapshot())
        self.where = where

    def copy(self) -> Any:
        from overlaysim.world import World

        return World.from_snapshot(self.snap, self.where)


def _bands(o: Any, layers: Iterable[Any]) -> tuple[list[Band], list[dict[str, Entry]]]:
    bands, contents = [], []
    for x in layers:
        entries = read_layer_dir(o, x.dir)
        size = Layer(0, "", "", x.dir, entries).size
        bands.append(Band(x.role, x.label, x.dir, x.created_by, len(entries), size,
                          sum(e.kind == "whiteout" for e in entries.values()),
                          sum(e.opaque for e in entries.values())))  # fmt: skip
        contents.append(entries)
    return bands, contents


def _choose(contents: list[dict[str, Entry]], hot: set[str], cap: int) -> tuple[list[str], int]:
    """The paths to draw: those the events touched, whiteouts and opaque dirs, names in more
    than one layer, names added above the bottom layer, then the rest; drawn in tree order."""
    everything: set[str] = set().union(*contents) if contents else set()
    bottom = len(contents) - 1

    def rank(p: str) -> int:
        here = [i for i, c in enumerate(contents) if p in c]
        if p in hot:
            return 0
        if any(contents[i][p].kind == "whiteout" or contents[i][p].opaque for i in here):
            return 1
        if len(here) > 1:
            return 2
        return 3 if here != [bottom] else 4

    picked = sorted(everything, key=lambda p: (rank(p), path_key(p)))[:cap]
    return sorted(picked, key=path_key), len(everything)


def _row(snap: _Snap, spec: str, path: str, bands: list[Band],
         contents: list[dict[str, Entry]]) -> PathRow:  # fmt: skip
    by_dir = {b.dir: i for i, b in enumerate(bands)}
    row = PathRow(path, "", None)
    try:
        r = explain(snap.copy(), spec)
    except OverlaySimError as e:
        row.explain = f"explain {spec}: {e}"
        r = None
    roles: dict[int, str] = {}
    if r is not None:
        row.explain = explain_text(r)
        if r["target"]["path"] == path:
            row.merged = (r["merged"] or {}).get("type", "")
            name = r["lookup"]["name_from"]
            if name is not None and row.merged:
                row.winner = by_dir.get(name["layer"]["dir"])
            for p in r["layers_with_path"]:
                i = by_dir.get(p["layer"]["dir"])
                if i is not None:
                    roles[i] = p["role"]
        else:  # a symlinked parent above leads the lookup elsewhere: these entries are unseen
            row.explain = (f"note: the merged view reaches {path} as {r['target']['path']} "
                           f"(a symlink on the way); explained here:\n\n{row.explain}")  # fmt: skip
    for i, c in enumerate(contents):
        entry = c.get(path)
        if entry is not None:
            row.cells.append(Cell(i, roles.get(i, "hidden"), entry.kind == "whiteout",
                                  entry.opaque))  # fmt: skip
    return row


def _rows(snap: _Snap, prefix: str, contents: list[dict[str, Entry]], bands: list[Band],
          hot: set[str], cap: int) -> tuple[list[PathRow], int]:  # fmt: skip
    picked, total = _choose(contents, hot, cap)
    base = prefix.rstrip("/")
    rows = [_row(snap, base + p, p, bands, contents) for p in picked]
    return rows, total


def _options(target: Target) -> str:
    return ",".join(f"{k}={v}" if v else k for k, v in target.options.items()
                    if k not in _HIDDEN_OPTIONS) or "(none)"  # fmt: skip


def _upper_state(bands: list[Band], contents: list[dict[str, Entry]]) -> list[dict[str, Any]]:
    """A container's upper dir as it stands: what was copied up, made new, or whited out."""
    if not bands or bands[0].role != "upper":
        return []
    out = []
    for e in [contents[0][p] for p in sorted(contents[0], key=path_key)][:MAX_BARS]:
        below = any(e.path in c and c[e.path].kind != "whiteout" for c in contents[1:])
        if e.kind == "whiteout":
            state = "whiteout (hides the name below)"
        elif e.opaque:
            state = "opaque directory"
        elif below:
            state = "copied up (the name is also in a lower layer)"
        else:
            state = "new in the container"
        out.append({"path": e.path, "type": e.kind, "bytes": e.size, "state": state})
    return out


def from_world(world: Any, name: str, where: str, max_paths: int = MAX_PATHS) -> Report:
    """A report of IMAGE or CONTAINER of a saved world (a container's name wins, as in explain).

    A container's copy-ups come from the world's event log, in the order its commands made
    them (:mod:`overlaysim.report.logged`); with nothing logged (a world saved before the log
    existed, a container that never ran) its upper dir's state is shown instead."""
    from overlaysim.report import logged

    snap = _Snap(world, where)
    scratch = snap.copy()
    target = resolve(scratch, f"{name}:/")
    layers = [x for x in target.layers if not (target.kind == "image" and x.role == "upper")]
    bands, contents = _bands(scratch.fs.os, layers)
    past = logged.entries(world, target.mount) if target.kind == "container" else []
    ups = logged.copy_ups(past)
    rows, total = _rows(snap, f"{name}:", contents, bands, {c.path for c in ups}, max_paths)
    rep = Report(target.kind, target.name, bands, rows, total, None)
    if target.kind == "image":
        rep.copy_ups = []  # an image is read-only: nothing was ever copied up
        rep.notes.append("An image has no upper layer: explain's what-ifs use a scratch upper "
                         "(a fresh container's), and nothing has been copied up.")  # fmt: skip
    elif past:
        index = {r.path: i for i, r in enumerate(rows)}
        for c in ups:
            c.row = index.get(c.path)
        rep.copy_ups = ups[:MAX_BARS]
        rep.copy_up_count = len(ups)
        rep.copy_up_bytes = sum(c.bytes for c in ups)
        rep.decisions = logged.decisions(past)
        said = {(e.time_ns, e.source, e.command) for e in past}
        rep.facts.append(("commands in the event log", str(len(said))))
        lost = logged.dropped(world, past)
        if lost:
            rep.notes.append(f"{lost} older events of this container were dropped from the "
                             "world's event log (it keeps the newest 10,000 per container).")
        if len(ups) > MAX_BARS:
            rep.notes.append(f"The first {MAX_BARS} of {len(ups)} copy-ups are drawn; the "
                             "totals count all of them.")  # fmt: skip
    else:
        rep.upper_state = _upper_state(bands, contents)
        rep.notes.append("The world's event log has nothing for this container (it never ran "
                         "a command since the log exists, or the world was saved by an older "
                         "overlaysim), so its copy-ups have no time order: its upper layer's "
                         "content is listed instead. For a timeline of a trace, replay it into "
                         "it: overlaysim report NAME --trace TRACE.")  # fmt: skip
    rep.facts = [("layers", str(len(bands))), ("mount options", _options(target)), *rep.facts]
    return rep


def _copy_ups(rows: list[dict[str, Any]]) -> list[CopyUp]:
    return [CopyUp(i, str(r["path"]), str(r.get("type") or ""), str(r.get("layer") or ""),
                   int(r.get("bytes", 0)), bool(r.get("metadata_only")), str(r.get("reason", "")),
                   r.get("line"), str(r.get("call", "")))
            for i, r in enumerate(rows)]  # fmt: skip


def _relative(path: str, mount_point: str) -> str:
    mp = mount_point.rstrip("/")
    if mp and (path == mp or path.startswith(mp + "/")):
        return path[len(mp) :] or "/"
    return path


def from_replay(result: Any, max_paths: int = MAX_PATHS, world: Any = None,
                container: str | None = None) -> Report:  # fmt: skip
    """A report of a replay's run: its copy-up events in trace order, and the stack after it.

    ``world``/``container``: the replay went into that container of a (throwaway) world."""
    from overlaysim.world import World

    session, rep = result.session, result.report
    w = world if world is not None else World(session.fs)
    snap = _Snap(w, "replay")
    scratch = snap.copy()
    prefix = f"{container}:" if container else session.merged
    target = resolve(scratch, prefix + "/" if container else session.merged)
    bands, contents = _bands(scratch.fs.os, target.layers)
    copy_ups = _copy_ups(list(rep.get("copy_ups", [])))
    hot = {_relative(c.path, rep.get("mount_point", "/")) for c in copy_ups}
    rows, total = _rows(snap, prefix, contents, bands, hot, max_paths)
    index = {r.path: i for i, r in enumerate(rows)}
    for c in copy_ups:
        c.row = index.get(_relative(c.path, rep.get("mount_point", "/")))
    counts = dict(rep.get("counts", {}))
    out = Report("replay", container or str(rep.get("trace", "")), bands, rows, total, copy_ups,
                 int(counts.get("copy_ups", len(copy_ups))), int(rep.get("copy_up_bytes", 0)),
                 {k: int(v) for k, v in counts.items() if k != "copy_ups"})  # fmt: skip
    trace = rep.get("trace", "")
    calls = rep.get("calls", {})
    out.facts = [
        ("trace", ", ".join(trace) if isinstance(trace, list) else str(trace)),
        ("trace kind", str(rep.get("trace_kind", ""))),
        ("calls replayed", str(calls.get("replayed", 0))),
        ("results differing from the recorded ones", str(rep.get("mismatch_count", 0))),
        ("layers", str(len(bands))),
        ("mount options", _options(target)),
        ("mount point seen by the programs", str(rep.get("mount_point", "/"))),
    ]
    if container:
        out.facts.insert(0, ("replayed into container", container))
    if len(copy_ups) < out.copy_up_count:
        out.notes.append(f"The replay kept {len(copy_ups)} of {out.copy_up_count} copy-up rows "
                         f"(--max-rows); the totals count all of them.")  # fmt: skip
    return out
