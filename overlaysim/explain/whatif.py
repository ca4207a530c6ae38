"""What the next write, chmod, rename or unlink would do: done for real on a throwaway copy.

Each operation runs on a fresh copy of the world (rebuilt from one snapshot), through the
overlay's public ``os`` API; the answer is the engine's events and the upper layer's entries
before and after, so it cannot drift from what the engine does.
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overlaysim.explain import narrate
from overlaysim.explain.provenance import overlay_xattrs
from overlaysim.explain.target import Target

#: the call each operation makes, and the kernel entry point a reader would start from
ENTRY = {
    "write": ("open(O_WRONLY)", "ovl_open -> ovl_maybe_copy_up"),
    "create": ("open(O_CREAT|O_WRONLY) of a new file inside", "ovl_create -> ovl_create_or_link"),
    "create here": ("open(O_CREAT|O_WRONLY) of this name", "ovl_create -> ovl_create_or_link"),
    "chmod": ("chmod (same mode)", "ovl_setattr -> ovl_copy_up_with_data / ovl_copy_up"),
    "lchown": ("lchown (same owner)", "ovl_setattr -> ovl_copy_up"),
    "rename": ("rename to a new name in the same directory", "ovl_rename"),
    "unlink": ("unlink", "ovl_unlink -> ovl_do_remove"),
    "rmdir": ("rmdir", "ovl_rmdir -> ovl_do_remove"),
}


@dataclass
class Outcome:
    op: str
    call: str
    entry: str
    result: str  # "ok" or "EXDEV (Invalid cross-device link)"
    events: list[Any] = field(default_factory=list)
    upper: list[str] = field(default_factory=list)  # what changed in the upper layer

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "call": self.call, "kernel": self.entry, "result": self.result,
                "events": [narrate.as_json(e, True) for e in self.events], "upper": self.upper}


def _fresh_name(o: Any, parent: str, base: str) -> str:
    n = 0
    while True:
        name = f"{base}.explain" + (f"{n}" if n else "")
        if not o.path.lexists(f"{parent.rstrip('/')}/{name}"):
            return name
        n += 1


def _state(o: Any, path: str, prefix: str) -> str | None:
    """A short description of an upper entry, or None when absent."""
    try:
        s = o.lstat(path)
    except OSError:
        return None
    mode = s.st_mode
    if st.S_ISCHR(mode) and s.st_rdev == 0:
        kind = f"whiteout (char 0/0, nlink {s.st_nlink})"
    elif st.S_ISDIR(mode):
        kind = "dir"
    elif st.S_ISLNK(mode):
        kind = "symlink"
    elif st.S_ISREG(mode):
        kind = f"file of {s.st_size} bytes"
    else:
        kind = "special file"
    kind += f" mode {st.S_IMODE(mode):04o}"
    xs = overlay_xattrs(o, path, prefix)
    if xs:
        shown = []
        for k, v in xs.items():
            if k in ("redirect", "opaque", "impure"):
                shown.append(f"{k}={v.decode('utf-8', 'replace')!r}")
            else:
                shown.append(k)
        kind += " xattrs " + ",".join(shown)
    return kind


def _plan(o: Any, target: Target) -> list[tuple[str, Callable[[Any], None], list[str]]]:
    """(op, action on an os module, merged paths whose upper entries to compare)."""
    path = target.merged
    parent, base = os.path.split(path.rstrip("/"))
    try:
        s = o.lstat(path)
    except OSError:
        return [("create here",
                 lambda x: x.close(x.open(path, os.O_CREAT | os.O_WRONLY, 0o644)), [path])]
    if path.rstrip("/") == target.mount.rstrip("/"):
        child = f"{path.rstrip('/')}/{_fresh_name(o, path, 'new')}"
        return [("create", lambda x: x.close(x.open(child, os.O_CREAT | os.O_WRONLY, 0o644)),
                 [child])]  # fmt: skip
    renamed = f"{parent}/{_fresh_name(o, parent, base)}"
    plan: list[tuple[str, Callable[[Any], None], list[str]]] = []
    if st.S_ISDIR(s.st_mode):
        child = f"{path}/{_fresh_name(o, path, 'new')}"
        plan.append(("create", lambda x: x.close(x.open(child, os.O_CREAT | os.O_WRONLY, 0o644)),
                     [path, child]))  # fmt: skip
    elif not st.S_ISLNK(s.st_mode):
        plan.append(("write", lambda x: x.close(x.open(path, os.O_WRONLY)), [path]))
    mode, uid, gid = st.S_IMODE(s.st_mode), s.st_uid, s.st_gid
    if st.S_ISLNK(s.st_mode):
        plan.append(("lchown", lambda x: x.chown(path, uid, gid, follow_symlinks=False), [path]))
    else:
        plan.append(("chmod", lambda x: x.chmod(path, mode), [path]))
    plan.append(("rename", lambda x: x.rename(path, renamed), [path, renamed]))
    if st.S_ISDIR(s.st_mode):
        plan.append(("rmdir", lambda x: x.rmdir(path), [path]))
    else:
        plan.append(("unlink", lambda x: x.unlink(path), [path]))
    return plan


def _upper_of(target: Target, merged: str) -> str | None:
    up = target.upper
    if up is None:
        return None
    rel = merged[len(target.mount.rstrip("/")) :]
    return up.dir.rstrip("/") + rel


def _watched(target: Target, paths: list[str]) -> list[str]:
    """The merged paths and all their ancestors inside the overlay, outermost first."""
    top = target.mount.rstrip("/")
    out: list[str] = []
    for p in paths:
        rel = p[len(top) :].strip("/").split("/")
        for k in range(1, len(rel) + 1):
            q = top + "/" + "/".join(rel[:k])
            if q not in out:
                out.append(q)
    return out


def frozen(snap: Any) -> Any:
    """``snap`` as the world file would give it back: file data as immutable bytes (a live
    capture shares the inodes' buffers, which a rebuild must not)."""
    snap.blobs = [(bid, bytes(data), pages) for bid, data, pages in snap.blobs]
    return snap


def run(snap: Any, where: str, target: Target, o0: Any) -> list[Outcome]:
    """Each planned operation on its own copy of the world rebuilt from ``snap``."""
    from overlaysim.world import World

    snap = frozen(snap)
    outcomes = []
    for op, action, touched in _plan(o0, target):
        copy = World.from_snapshot(snap, where)
        fs = copy.fs
        watch = [(p, _upper_of(target, p)) for p in _watched(target, touched)]
        before = {p: _state(fs.os, u, target.prefix) for p, u in watch if u}
        mark = len(fs.events)
        try:
            action(fs.os)
            result = "ok"
        except OSError as e:
            code = errno.errorcode.get(e.errno or 0, str(e.errno))
            result = f"{code} ({os.strerror(e.errno or 0)})"
        events = [e for e in fs.events.since(mark) if e.kind not in narrate.QUIET]
        changes = []
        for p, u in watch:
            if not u:
                continue
            now = _state(fs.os, u, target.prefix)
            was = before.get(p)
            if now == was:
                continue
            rel = p[len(target.mount.rstrip("/")) :] or "/"
            if was is None:
                changes.append(f"{rel}: new in upper: {now}")
            elif now is None:
                changes.append(f"{rel}: removed from upper (was {was})")
            else:
                changes.append(f"{rel}: upper {was} -> {now}")
        call, entry = ENTRY[op]
        outcomes.append(Outcome(op, call, entry, result, events, changes))
    return outcomes
