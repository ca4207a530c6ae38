"""Where a merged name comes from: the layers read directly, following ovl_lookup()'s rules.

Each path component is looked up in the parent's layers, top first: a whiteout (char 0/0, or
a zero-size file with the ``whiteout`` xattr) ends the search, an opaque dir stops the merge,
a ``redirect`` makes lower layers look under another name, a metacopy file sends the search
on for its data. The engine's own answer (its ``lstat`` of the merged path) is reported next
to it, so a disagreement would show.
"""

from __future__ import annotations

import stat as st
from dataclasses import dataclass, field
from typing import Any

from overlaysim.explain.target import Layer, Target


@dataclass
class Hit:
    """One layer's object under the looked-up name."""

    layer: Layer
    path: str  # in the HostFS
    mode: int
    size: int
    ino: int
    xattrs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Walk:
    name: Hit | None = None  # the object whose name (and attributes) the merged view shows
    data: Hit | None = None  # whose bytes a read returns (differs under metacopy)
    merged_dirs: list[Hit] = field(default_factory=list)  # every layer a merged dir joins
    stopped_by: str = ""  # what ended the search: "whiteout in upper"...
    notes: list[str] = field(default_factory=list)


def overlay_xattrs(o: Any, path: str, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = o.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(prefix):
            try:
                out[name[len(prefix) :]] = o.getxattr(path, name, follow_symlinks=False)
            except OSError:
                continue
    return out


def _hit(o: Any, layer: Layer, path: str, prefix: str) -> Hit | None:
    try:
        s = o.lstat(path)
    except OSError:
        return None
    return Hit(layer, path, s.st_mode, s.st_size, s.st_ino, overlay_xattrs(o, path, prefix))


def is_whiteout(h: Hit) -> bool:
    if st.S_ISCHR(h.mode):
        return True  # the caller checked rdev 0/0 (see _whiteout)
    return st.S_ISREG(h.mode) and h.size == 0 and "whiteout" in h.xattrs


def _whiteout(o: Any, h: Hit) -> bool:
    if st.S_ISCHR(h.mode):
        return bool(o.lstat(h.path).st_rdev == 0)
    return is_whiteout(h)


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel.lstrip("/") if rel.strip("/") else base


def walk(o: Any, target: Target) -> Walk:
    """Look ``target.path`` up in the layers as ovl_lookup() does, one component at a time."""
    prefix = target.prefix
    follow = target.options.get("redirect_dir", "") != "nofollow"
    layers = [x for x in target.layers if not x.data_only]
    parents: list[tuple[Layer, str]] = [(x, x.dir) for x in layers]  # the root's layers
    names = [p for p in target.path.split("/") if p]
    result = Walk(merged_dirs=[Hit(x, x.dir, st.S_IFDIR, 0, 0) for x in layers])
    for depth, name in enumerate(names):
        result = Walk()
        found: list[Hit] = []
        absolute: str | None = None
        rel = name
        i = 0
        queue = list(parents)
        while i < len(queue):
            layer, pdir = queue[i]
            i += 1
            path = _join(layer.dir, absolute) if absolute is not None else _join(pdir, rel)
            h = _hit(o, layer, path, prefix)
            if h is None:
                continue
            if _whiteout(o, h):
                result.stopped_by = f"whiteout in {layer.role} ({path})"
                break
            is_dir = st.S_ISDIR(h.mode)
            if found and st.S_ISDIR(found[0].mode) != is_dir:
                kind = "directory" if st.S_ISDIR(found[0].mode) else "non-directory"
                result.stopped_by = f"a {kind} above: {layer.role} is not looked at further"
                break
            found.append(h)
            if not is_dir and "metacopy" not in h.xattrs:
                break  # a file with its data ends the search
            if is_dir and h.xattrs.get("opaque") == b"y":
                result.stopped_by = f"opaque directory in {layer.role} ({path})"
                break
            redirect = h.xattrs.get("redirect")
            if redirect is not None and follow:
                text = redirect.decode("utf-8", "surrogateescape")
                if text.startswith("/"):
                    absolute = text
                    # an absolute redirect continues from the root's layers below this one
                    pos = layers.index(layer)
                    queue = queue[:i] + [(x, x.dir) for x in layers[pos + 1 :]]
                else:
                    rel = text
                result.notes.append(f"{layer.role} has redirect={text!r}: lower layers are "
                                    f"looked up under that name")  # fmt: skip
        if not found:
            if depth < len(names) - 1:
                result.stopped_by = result.stopped_by or f"/{'/'.join(names[: depth + 1])} is missing"
            return result
        result.name = found[0]
        if st.S_ISDIR(found[0].mode):
            result.merged_dirs = found
            parents = [(h.layer, h.path) for h in found]
            if depth < len(names) - 1:
                continue
        else:
            result.data = next((h for h in found if "metacopy" not in h.xattrs), None)
            if result.data is None:
                result.data = _data_only(o, target, found[-1])
            if depth < len(names) - 1:
                result.stopped_by = f"{found[0].path} is not a directory"
                result.name = None
                return result
    if result.name is not None and st.S_ISDIR(result.name.mode):
        result.data = result.name
    return result


def _data_only(o: Any, target: Target, meta: Hit) -> Hit | None:
    """The lazy data of a metacopy file: its absolute redirect in the data-only layers."""
    redirect = meta.xattrs.get("redirect", b"").decode("utf-8", "surrogateescape")
    if not redirect.startswith("/"):
        return None
    for layer in target.layers:
        if layer.data_only:
            h = _hit(o, layer, _join(layer.dir, redirect), target.prefix)
            if h is not None and st.S_ISREG(h.mode):
                return h
    return None


@dataclass
class Presence:
    """A layer that has an entry at the literal path, and whether the merged view shows it."""

    hit: Hit
    role: str  # "name", "data", "name+data", "merged into the directory", "hidden"
    hidden_by: str = ""


def presence(o: Any, target: Target, w: Walk) -> list[Presence]:
    """Every layer holding the literal path, and what hides the ones the view does not use."""
    prefix = target.prefix
    rel = target.path
    out: list[Presence] = []
    used = {id(h.layer): h for h in w.merged_dirs} if w.name and st.S_ISDIR(w.name.mode) else {}
    for idx, layer in enumerate(target.layers):
        h = _hit(o, layer, _join(layer.dir, rel), prefix)
        if h is None:
            continue
        if w.name is not None and w.name.path == h.path:
            role = "name+data" if w.data is not None and w.data.path == h.path else "name"
        elif w.data is not None and w.data.path == h.path:
            role = "data"
        elif id(layer) in used and used[id(layer)].path == h.path:
            role = "merged into the directory"
        else:
            role = "hidden"
        p = Presence(h, role)
        if role == "hidden":
            p.hidden_by = _hider(o, target, idx, h)
        out.append(p)
    return out


def _hider(o: Any, target: Target, idx: int, h: Hit) -> str:
    """The first thing above layer ``idx`` that keeps ``h`` out of the merged view."""
    prefix = target.prefix
    names = [p for p in target.path.split("/") if p]
    if _whiteout(o, h):
        return "it is itself a whiteout (it hides the layers below)"
    for above in target.layers[:idx]:
        for k in range(1, len(names) + 1):
            sub = "/" + "/".join(names[:k])
            a = _hit(o, above, _join(above.dir, sub), prefix)
            if a is None:
                continue
            last = k == len(names)
            if _whiteout(o, a):
                return f"whiteout (char 0/0) at {sub} in {above.role}: {a.path}"
            if not st.S_ISDIR(a.mode):
                what = "replaced by" if last else "a non-directory at"
                return f"{what} {sub} in {above.role} ({a.path})"
            if a.xattrs.get("opaque") == b"y":
                return f"opaque directory {sub} in {above.role} ({a.path})"
            if last and not st.S_ISDIR(h.mode):
                return f"a directory at {sub} in {above.role}"
    return "not reached by the lookup (a redirect or opaque dir on the way leads elsewhere)"
