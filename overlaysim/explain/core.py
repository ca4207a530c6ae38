"""``explain(world, spec)``: provenance of one path and what the next operations would do.

The world passed in is a copy the caller will not save (``open_world(..., write=False)``):
an image or a stopped container gets its overlay mounted there, and each operation runs on
a further copy rebuilt from one snapshot of it.
"""

from __future__ import annotations

import stat as st
from typing import Any

from overlaysim.errors import OverlaySimError
from overlaysim.explain import dockerinfo, history, whatif
from overlaysim.explain.provenance import Hit, presence, walk
from overlaysim.explain.target import ExplainError, Target, plain_target, split_spec


def resolve(world: Any, spec: str) -> Target:
    """The overlay and path a PATH argument names (see ``target.split_spec``)."""
    fs = world.fs
    name, path = split_spec(spec)
    if name is None:
        target = plain_target(fs, path)
        if dockerinfo.has_docker(fs):
            d = dockerinfo.daemon(fs, world.meta, world.seed)
            cid = dockerinfo.container_of_mount(d, target.mount)
            if cid is not None:
                return dockerinfo.container_target(fs, d, cid, target.path)
            dockerinfo.label_overlay2(d, target)
        return target
    if not dockerinfo.has_docker(fs):
        raise ExplainError(f"{name}: no such container or image (the world has no Docker state)")
    d = dockerinfo.daemon(fs, world.meta, world.seed)
    try:
        d.container(name)
    except OverlaySimError:
        return dockerinfo.image_target(fs, d, name, path)
    return dockerinfo.container_target(fs, d, name, path)


def _kind(mode: int) -> str:
    if st.S_ISDIR(mode):
        return "directory"
    if st.S_ISLNK(mode):
        return "symlink"
    if st.S_ISREG(mode):
        return "regular file"
    if st.S_ISCHR(mode):
        return "character device"
    return "special file"


def _hit_json(h: Hit | None) -> dict[str, Any] | None:
    if h is None:
        return None
    return {"layer": h.layer.as_json(), "path": h.path, "type": _kind(h.mode), "size": h.size,
            "ino": h.ino}  # fmt: skip


def _xattr_json(xs: dict[str, bytes]) -> dict[str, str]:
    out = {}
    for k, v in xs.items():
        text = v.decode("utf-8", "replace") if k in ("redirect", "opaque", "impure") else v.hex()
        out[k] = text
    return out


def _index_state(o: Any, target: Target, upper: Hit | None) -> str:
    """index=on and whether an index entry names the upper inode (workdir/index)."""
    opts = target.options
    if opts.get("index", "off") != "on":
        return "index=off: hard links are broken by copy-up, no index entries"
    work = opts.get("workdir")
    if upper is None or not work:
        return "index=on: nothing copied up, so no index entry"
    idx = o.path.join(o.path.realpath(work), "index")
    try:
        names = o.listdir(idx)
    except OSError:
        return "index=on: no index directory"
    for n in names:
        try:
            if o.lstat(f"{idx}/{n}").st_ino == upper.ino:
                return f"index=on: indexed as {idx}/{n}"
        except OSError:
            continue
    return "index=on: the upper copy has no index entry"


def explain(world: Any, spec: str) -> dict[str, Any]:
    """Everything ``overlaysim explain`` prints, as one JSON-able dict."""
    fs = world.fs
    o = fs.os
    target = resolve(world, spec)
    w = walk(o, target)
    present = presence(o, target, w)
    try:
        ms = o.lstat(target.merged)
        merged: dict[str, Any] | None = {"type": _kind(ms.st_mode), "size": ms.st_size,
                                         "ino": ms.st_ino, "nlink": ms.st_nlink,
                                         "mode": f"{st.S_IMODE(ms.st_mode):04o}"}  # fmt: skip
    except OSError:
        merged = None
    if merged is None and not present:
        raise ExplainError(f"{spec}: no such file or directory in any layer")
    up = next((p.hit for p in present if p.hit.layer.role == "upper"), None)
    snap = world.snapshot()
    outcomes = whatif.run(snap, "explain", target, o)
    past, dropped = history.of(world, target.mount, target.path)
    return {
        "target": {"kind": target.kind, "name": target.name, "mount": target.mount,
                   "path": target.path, "merged_path": target.merged},
        "options": target.options,
        "layers": [x.as_json() for x in target.layers],
        "merged": merged,
        "lookup": {
            "kernel": "ovl_lookup",
            "name_from": _hit_json(w.name),
            "data_from": _hit_json(w.data),
            "merged_from": [_hit_json(h) for h in w.merged_dirs]
            if w.name is not None and st.S_ISDIR(w.name.mode) else [],
            "stopped_by": w.stopped_by,
            "notes": w.notes,
        },
        "layers_with_path": [
            {**(_hit_json(p.hit) or {}), "role": p.role, "hidden_by": p.hidden_by}
            for p in present
        ],
        "upper_xattrs": _xattr_json(up.xattrs) if up is not None else None,
        "index": _index_state(o, target, up),
        "what_if": [x.as_json() for x in outcomes],
        "history": past,
        "history_dropped": dropped,
    }
