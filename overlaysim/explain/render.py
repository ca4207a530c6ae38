"""The text form of an explanation: short sections a learner reads top to bottom."""

from __future__ import annotations

from typing import Any

from overlaysim.world.eventlog import MAX_PER_CONTAINER


def _layer(layer: dict[str, Any]) -> str:
    text = f"{layer['role']}: {layer['label']}"
    if layer.get("overlay2_id"):
        text += f" [overlay2 {layer['overlay2_id'][:12]}]"
    if layer.get("created_by"):
        cmd = layer["created_by"]
        text += f" <- {cmd[:70] + '...' if len(cmd) > 73 else cmd}"
    return text


def _hit(h: dict[str, Any] | None) -> str:
    if h is None:
        return "(none)"
    size = f", {h['size']} bytes" if h["type"] == "regular file" else ""
    return f"{_layer(h['layer'])}\n      {h['path']} ({h['type']}{size})"


def text(r: dict[str, Any]) -> str:
    t = r["target"]
    out = [f"{t['kind']} {t['name']}: {t['path']}   (merged: {t['merged_path']})"]
    m = r["merged"]
    if m is None:
        out.append("  not visible in the merged view")
    else:
        out.append(f"  merged view: {m['type']}, mode {m['mode']}, {m['size']} bytes, "
                   f"ino {m['ino']}, nlink {m['nlink']}")  # fmt: skip
    lk = r["lookup"]
    out.append("")
    out.append(f"Lookup ({lk['kernel']}), top layer first:")
    out.append(f"  name from: {_hit(lk['name_from'])}")
    if lk["name_from"] is not None:
        out.append(f"  data from: {_hit(lk['data_from'])}")
    if lk["merged_from"] and len(lk["merged_from"]) > 1:
        out.append(f"  merged directory: joins {len(lk['merged_from'])} layers: "
                   + ", ".join(h["layer"]["role"] for h in lk["merged_from"]))  # fmt: skip
    if lk["stopped_by"]:
        out.append(f"  search stopped by: {lk['stopped_by']}")
    out.extend(f"  note: {n}" for n in lk["notes"])
    out.append("")
    out.append("Layers that have this path:")
    for p in r["layers_with_path"]:
        hid = f": {p['hidden_by']}" if p["hidden_by"] else ""
        out.append(f"  {_layer(p['layer'])}\n      {p['type']}: {p['role']}{hid}")
    out.append("")
    xs = r["upper_xattrs"]
    if xs is None:
        out.append("Upper copy: none (nothing copied up yet)")
    else:
        shown = ", ".join(f"{k}={v if len(v) <= 24 else v[:24] + '...'}" for k, v in xs.items())
        out.append(f"Upper copy: overlay xattrs: {shown or 'none'}")
    out.append(f"Index: {r['index']}")
    out.append("")
    out.append("What the next operation would do (done on a throwaway copy of the world):")
    for w in r["what_if"]:
        out.append(f"  {w['op']}: {w['call']} -> {w['result']}   [{w['kernel']}]")
        for e in w["events"]:
            out.append(f"    - {e['text']}  [{e['kernel']}]")
        if not w["events"]:
            out.append("    - no overlay decision (no copy-up, whiteout or xattr)")
        for c in w["upper"]:
            out.append(f"    upper: {c}")
    out.append("")
    out.append("History (the world's event log: what commands did to this path):")
    past = r.get("history") or []
    for h in past:
        out.append(f"  {h['text']}")
    if not past:
        out.append("  nothing logged for this path")
    if r.get("history_dropped"):
        out.append(f"  ({r['history_dropped']} older events of this container were dropped: "
                   f"the log keeps the newest {MAX_PER_CONTAINER} per container)")  # fmt: skip
    return "\n".join(out)
