"""``--what-if``: the same trace under other mount options or other lowers, side by side.

The question people ask is "what would this cost with metacopy=on / on the new base image":
copy-up bytes, upper size, the commit layer, and which upper paths come out different.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from overlaysim.errors import UsageError
from overlaysim.replay.manifest import manifest

if TYPE_CHECKING:
    from overlaysim.replay.api import ReplayConfig, ReplayResult

#: (label, how to read it from a report) for the side-by-side table.
ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("copy-ups", ("counts", "copy_ups")),
    ("copy-up data bytes", ("copy_up_data_bytes",)),
    ("whiteouts made", ("counts", "whiteouts")),
    ("opaque dirs made", ("counts", "opaque_dirs")),
    ("redirects made", ("counts", "redirects")),
    ("upper entries", ("upper", "entries")),
    ("upper bytes", ("upper", "bytes")),
    ("upper data bytes", ("upper", "data_bytes")),
    ("commit layer bytes", ("commit_layer_bytes",)),
    ("calls that differ", ("mismatch_count",)),
]
MAX_PATHS = 200


def what_if_config(base: ReplayConfig, spec: str) -> ReplayConfig:
    """``spec`` is mount options; ``lowerdir=A:B`` among them replaces the lowers."""
    opts = []
    lowers: list[str] | None = None
    for part in filter(None, spec.split(",")):
        key, _, val = part.partition("=")
        if key == "lowerdir":
            lowers = [x for x in val.split(":") if x]
            if not lowers:
                raise UsageError(f"--what-if {spec!r}: lowerdir= names no directory")
        elif key in ("upperdir", "workdir"):
            raise UsageError(f"--what-if {spec!r}: {key} is chosen by the replay")
        else:
            opts.append(part)
    changes: dict[str, Any] = {"options": ",".join(opts)}
    if lowers is not None:
        changes.update(lowerdirs=lowers, image=None)
    return dataclasses.replace(base, **changes)


def _value(rep: dict[str, Any], path: tuple[str, ...]) -> int:
    v: Any = rep
    for k in path:
        v = v[k]
    return len(v) if isinstance(v, list) else int(v)


def compare_runs(base: ReplayResult, others: list[tuple[str, ReplayResult]]) -> dict[str, Any]:
    """A JSON-able comparison: one column per run, and the upper paths that differ."""
    columns = ["as recorded"] + [spec for spec, _ in others]
    rows = [{"what": label, "values": [_value(base.report, path)] +
             [_value(r.report, path) for _, r in others]} for label, path in ROWS]  # fmt: skip
    ref = _upper(base)
    diffs = []
    for spec, r in others:
        other = _upper(r)
        changed = sorted(p for p in set(ref) | set(other) if ref.get(p) != other.get(p))
        diffs.append({"what_if": spec, "paths_differ": len(changed),
                      "paths": changed[:MAX_PATHS]})  # fmt: skip
    return {"columns": columns, "rows": rows, "upper_differences": diffs}


def _upper(r: ReplayResult) -> dict[str, Any]:
    return manifest(r.session.fs.os, r.session.upper)


def what_if_lines(cmp: dict[str, Any]) -> list[str]:
    cols = cmp["columns"]
    width = max(len(label) for label, _ in ROWS) + 2
    cw = [max(len(c), 12) + 2 for c in cols]
    out = ["", "what if:", " " * width + "".join(c.rjust(w) for c, w in zip(cols, cw, strict=True))]
    for row in cmp["rows"]:
        out.append(row["what"].ljust(width) + "".join(
            f"{v:,}".rjust(w) for v, w in zip(row["values"], cw, strict=True)))  # fmt: skip
    for d in cmp["upper_differences"]:
        out.append(f"upper paths that differ with {d['what_if']}: {d['paths_differ']}")
        out.extend(f"  {p}" for p in d["paths"][:20])
    return out
