"""What a PATH argument names: an overlay mount of the world, its layers, and a path inside it.

``web:/etc/passwd`` is a container path, ``IMAGE:/usr/bin/env`` an image path, ``/x/merged/f``
a path of any overlay mount. Everything is read through the HostFS's public ``os`` API and its
mount table; Docker's layers are labelled by :mod:`overlaysim.explain.dockerinfo`.
"""

from __future__ import annotations

import posixpath
import stat as st
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import UsageError


class ExplainError(UsageError):
    """A PATH that cannot be explained: malformed, unknown container or image, not found."""


@dataclass
class Layer:
    """One layer directory of an overlay, as a reader would name it."""

    role: str  # "upper", "lower1" (the topmost lower, as the kernel counts), "data1"
    dir: str  # its directory in the HostFS, symlinks resolved
    label: str = ""  # "container layer", "image layer 3/14"...
    overlay2_id: str = ""
    diff_id: str = ""
    created_by: str = ""
    data_only: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "dir": self.dir, "label": self.label}
        for key in ("overlay2_id", "diff_id", "created_by"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.data_only:
            out["data_only"] = True
        return out


@dataclass
class Target:
    """An overlay mount and a path inside it (absolute, from the overlay's root)."""

    kind: str  # "container", "image", "mount"
    name: str  # container name, image reference, or the mount point
    mount: str  # the overlay's mount point in the HostFS
    path: str
    layers: list[Layer]
    options: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """The overlay xattr namespace: ``user.overlay.`` under userxattr, else trusted."""
        return "user.overlay." if "userxattr" in self.options else "trusted.overlay."

    @property
    def merged(self) -> str:
        return self.mount.rstrip("/") + self.path if self.path != "/" else self.mount

    @property
    def upper(self) -> Layer | None:
        return self.layers[0] if self.layers and self.layers[0].role == "upper" else None


def split_spec(spec: str) -> tuple[str | None, str]:
    """``NAME:/path`` -> (NAME, /path); ``/path`` -> (None, /path). A reference never holds
    ``:/`` (a tag follows a colon, a port is digits), so the first one splits."""
    if spec.startswith("/"):
        return None, spec
    name, sep, path = spec.partition(":/")
    if not sep or not name:
        raise ExplainError(f"{spec!r}: expected CONTAINER:/path, IMAGE:/path or an absolute path")
    return name, "/" + path


def split_options(text: str) -> dict[str, str]:
    """The options of a mount line, split on commas that are not escaped."""
    out: dict[str, str] = {}
    cur = ""
    escaped = False
    for ch in text + ",":
        if escaped:
            cur += ch
            escaped = False
        elif ch == "\\":
            cur += ch
            escaped = True
        elif ch == ",":
            if cur:
                key, _, value = cur.partition("=")
                out[key] = value
            cur = ""
        else:
            cur += ch
    return out


def split_lowers(text: str) -> tuple[list[str], list[str]]:
    """``lowerdir=a:b::c`` -> (["a", "b"], ["c"]): the layers after ``::`` are data-only."""
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
            continue
        if ch == ":":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if "" in parts:
        k = parts.index("")
        return [p for p in parts[:k] if p], [p for p in parts[k + 1 :] if p]
    return parts, []


def overlay_mounts(fs: Any) -> list[Any]:
    return [m for m in fs.mounts() if m.fstype == "overlay"]


def mount_of(fs: Any, path: str) -> Any:
    """The overlay mount whose tree holds ``path`` (the deepest one), or ExplainError."""
    best = None
    for m in fs.mounts():
        top = m.target.rstrip("/") or "/"
        if path == top or path.startswith(top.rstrip("/") + "/"):
            if best is None or len(top) >= len(best.target.rstrip("/") or "/"):
                best = m
    if best is None or best.fstype != "overlay":
        kind = best.fstype if best is not None else "no"
        raise ExplainError(f"{path}: not on an overlay mount (it is on {kind} filesystem)")
    return best


def layers_from_options(fs: Any, options: dict[str, str]) -> list[Layer]:
    """Upper then lowers, resolved to real directories, for a mount we know only by its line."""
    o = fs.os
    layers: list[Layer] = []
    if "upperdir" in options:
        layers.append(Layer("upper", o.path.realpath(options["upperdir"]), "upper layer"))
    lowers, data = split_lowers(options.get("lowerdir", ""))
    for i, d in enumerate(lowers):
        layers.append(Layer(f"lower{i + 1}", o.path.realpath(d), f"lower layer {i + 1}"))
    for i, d in enumerate(data):
        layers.append(Layer(f"data{i + 1}", o.path.realpath(d), f"data-only layer {i + 1}",
                            data_only=True))  # fmt: skip
    return layers


def resolve_inside(o: Any, root: str, path: str) -> str:
    """``path`` inside the tree at ``root``, intermediate symlinks followed as a process
    chrooted there would (the last name is not followed: we explain the name itself)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        here = root.rstrip("/") + "/" + "/".join([*done, name])
        if parts:
            try:
                s = o.lstat(here)
            except OSError:
                done.append(name)
                continue
            if st.S_ISLNK(s.st_mode):
                hops += 1
                if hops > 40:
                    raise ExplainError(f"{path}: too many levels of symbolic links")
                link = o.readlink(here)
                if link.startswith("/"):
                    done = []
                parts = [p for p in link.split("/") if p and p != "."] + parts
                continue
        done.append(name)
    return "/" + "/".join(done)


def plain_target(fs: Any, path: str) -> Target:
    """A path of any overlay mount of the world, by its mount line."""
    norm = posixpath.normpath(path)
    m = mount_of(fs, norm)
    top = m.target
    options = split_options(m.options)
    inner = resolve_inside(fs.os, top, norm[len(top.rstrip("/")) :] or "/")
    return Target("mount", top, top, inner, layers_from_options(fs, options), options)
