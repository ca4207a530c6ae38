"""The JSON-lines protocol that lets ``overlaysim fuzz --against CMD`` judge any program.

One JSON object per line, UTF-8, in both directions. The server (the program under test)
writes a greeting line first; then the client sends requests and the server answers each
with exactly one line, in order. A request is either a ``control`` (the case's life cycle)
or an os-level ``call`` (``close`` is both: ``{"call": "close", "args": [fd]}`` closes a
file, ``{"control": "close"}`` ends the case). Everything the differential machinery does to a mount is an
``os``-level call, so a server is a thin loop around its own filesystem calls:

==========================  =============================================================
request                     reply
==========================  =============================================================
(server starts)             ``{"overlaysim-fuzz-protocol": 1, "server": "name"}``
``{"control": "setup",      build the layers, mount; ``{"ok": {"mount": P, "upper": P|null,
"layers": STACK,            "work": P|null}}`` (absolute paths in the server's namespace)
"options": "...",           or ``{"errno": "EINVAL"}`` when the mount is refused
"xattr_prefix": "..."}``
``{"call": NAME,            ``os.NAME(*args, **kwargs)`` on those paths: ``{"ok": VALUE}``
"args": [...],              or ``{"errno": "ENOENT"}`` (a name from ``errno``; an int is
"kwargs": {...}}``          accepted too)
``{"control": "umount"}``   ``{"ok": null}``
``{"control": "remount"}``  umount if mounted, mount again: ``{"ok": null}`` or ``{"errno"}``
``{"control": "close"}``    unmount, delete the case's files: ``{"ok": null}``
end of input                exit
anything the server cannot  ``{"error": "one line"}`` (the campaign stops with that line)
==========================  =============================================================

Calls (``NAME``): ``lstat stat listdir open read pread write close mkdir rmdir unlink
rename renameat2 symlink link readlink chmod chown utime truncate getxattr setxattr
listxattr removexattr mknod``, with Linux's numbers for flags and modes and the keyword
arguments of Python's ``os`` (``follow_symlinks``, ``ns``). ``renameat2`` takes
``[src, dst, flags]``. Values: JSON scalars and lists as they are; ``bytes`` as
``{"b64": "..."}``; a stat result as ``{"stat": {"st_mode": .., "st_ino": .., "st_dev": ..,
"st_nlink": .., "st_uid": .., "st_gid": .., "st_size": .., "st_rdev": .., "st_atime_ns": ..,
"st_mtime_ns": .., "st_ctime_ns": ..}}``.

STACK is ``{"lowers": [DIR, ...] (top first, as in lowerdir=), "upper": DIR | null, "data":
[DIR, ...] (data-only lower layers: ``lowerdir=l0:l1::d0::d1``), "separate_fs": bool (each
lower layer on a filesystem of its own, e.g. a tmpfs)}``; a node
is an object with ``"type"``: ``dir`` (``entries`` name -> node, ``mode uid gid xattrs
opaque mtime_ns``), ``file`` (``data`` base64, ``mode uid gid xattrs mtime_ns``),
``symlink`` (``target uid gid mtime_ns``), ``whiteout`` (``form``: ``chr`` = char 0/0 device,
``xattr`` = empty file with ``<xattr_prefix>whiteout`` = "y"), ``device`` (``kind`` chr/blk,
``major minor mode uid gid``), ``fifo`` (``mode uid gid``), ``hardlink`` (``target``: a
path in the same layer). ``xattrs`` values are base64; ``opaque`` ("y"/"x"/null) is the
``<xattr_prefix>opaque`` xattr.
"""

from __future__ import annotations

import base64
import errno
import json
import os
from typing import Any

from overlaysim.errors import TargetError
from overlaysim.testing import layers as L

VERSION = 1
GREETING_KEY = "overlaysim-fuzz-protocol"

# The os-level calls a client may forward; servers refuse any other name.
CALLS = frozenset((
    "lstat", "stat", "listdir", "open", "read", "pread", "write", "close", "mkdir", "rmdir",
    "unlink", "rename", "renameat2", "symlink", "link", "readlink", "chmod", "chown", "utime",
    "truncate", "getxattr", "setxattr", "listxattr", "removexattr", "mknod",
))  # fmt: skip
CONTROL = frozenset({"setup", "umount", "remount", "close"})
STAT_FIELDS = ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
               "st_rdev", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")  # fmt: skip


# --- values ---------------------------------------------------------------------------------
def encode_value(v: Any) -> Any:
    """A Python value of an os call -> its JSON form."""
    if isinstance(v, bytes | bytearray | memoryview):
        return {"b64": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, os.stat_result) or hasattr(v, "st_mode"):
        return {"stat": {f: int(getattr(v, f, 0) or 0) for f in STAT_FIELDS}}
    if isinstance(v, list | tuple):
        return [encode_value(x) for x in v]
    if v is None or isinstance(v, bool | int | float | str):
        return v
    raise TargetError(f"cannot encode a {type(v).__name__} in the fuzz protocol")


def decode_value(v: Any) -> Any:
    """The JSON form -> the Python value (bytes, ``os.stat_result``...)."""
    if isinstance(v, dict):
        if set(v) == {"b64"}:
            return base64.b64decode(v["b64"])
        if set(v) == {"stat"}:
            return _stat_result(v["stat"])
        raise TargetError(f"unknown value object with keys {sorted(v)}")
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v


def _stat_result(d: dict[str, Any]) -> os.stat_result:
    try:
        n = {f: int(d.get(f, 0)) for f in STAT_FIELDS}
    except (TypeError, ValueError) as e:
        raise TargetError(f"bad stat result: {e}") from None
    secs = [n[f"st_{t}time_ns"] // 1_000_000_000 for t in ("a", "m", "c")]
    seq = (n["st_mode"], n["st_ino"], n["st_dev"], n["st_nlink"], n["st_uid"], n["st_gid"],
           n["st_size"], *secs)  # fmt: skip
    extra = {**{f: n[f] for f in ("st_rdev", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")},
             **{f"st_{t}time": n[f"st_{t}time_ns"] / 1e9 for t in ("a", "m", "c")}}  # fmt: skip
    return os.stat_result(seq, extra)


def errno_reply(e: OSError) -> dict[str, Any]:
    return {"errno": errno.errorcode.get(e.errno or 0, str(e.errno))}


def errno_number(value: Any) -> int:
    """``"ENOENT"`` or ``2`` -> 2; :class:`TargetError` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and isinstance(getattr(errno, value, None), int):
        code: int = getattr(errno, value)
        return code
    raise TargetError(f"unknown errno {value!r} in a reply")


# --- layer stacks ---------------------------------------------------------------------------
def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def node_to_json(node: L.Node) -> dict[str, Any]:
    if isinstance(node, L.Dir):
        return {"type": "dir", "mode": node.mode, "uid": node.uid, "gid": node.gid,
                "xattrs": {k: _b64(v) for k, v in node.xattrs.items()}, "opaque": node.opaque,
                "mtime_ns": node.mtime_ns,
                "entries": {k: node_to_json(v) for k, v in node.entries.items()}}  # fmt: skip
    if isinstance(node, L.File):
        return {"type": "file", "data": _b64(node.data), "mode": node.mode, "uid": node.uid,
                "gid": node.gid, "xattrs": {k: _b64(v) for k, v in node.xattrs.items()},
                "mtime_ns": node.mtime_ns}  # fmt: skip
    if isinstance(node, L.Symlink):
        return {"type": "symlink", "target": node.target, "uid": node.uid, "gid": node.gid,
                "mtime_ns": node.mtime_ns}  # fmt: skip
    if isinstance(node, L.Whiteout):
        return {"type": "whiteout", "form": node.form}
    if isinstance(node, L.Device):
        return {"type": "device", "kind": node.kind, "major": node.major, "minor": node.minor,
                "mode": node.mode, "uid": node.uid, "gid": node.gid}  # fmt: skip
    if isinstance(node, L.Fifo):
        return {"type": "fifo", "mode": node.mode, "uid": node.uid, "gid": node.gid}
    return {"type": "hardlink", "target": node.target}


def node_from_json(d: dict[str, Any]) -> L.Node:
    """The inverse of :func:`node_to_json`; :class:`TargetError` on a malformed node."""
    try:
        kind = d["type"]
        if kind == "dir":
            return L.Dir({k: node_from_json(v) for k, v in d.get("entries", {}).items()},
                         d.get("mode", 0o755), d.get("uid", 0), d.get("gid", 0),
                         {k: base64.b64decode(v) for k, v in d.get("xattrs", {}).items()},
                         d.get("opaque"), d.get("mtime_ns"))  # fmt: skip
        if kind == "file":
            return L.File(base64.b64decode(d.get("data", "")), d.get("mode", 0o644),
                          d.get("uid", 0), d.get("gid", 0),
                          {k: base64.b64decode(v) for k, v in d.get("xattrs", {}).items()},
                          d.get("mtime_ns"))  # fmt: skip
        if kind == "symlink":
            return L.Symlink(d["target"], d.get("uid", 0), d.get("gid", 0), d.get("mtime_ns"))
        if kind == "whiteout":
            return L.Whiteout(d.get("form", "chr"))
        if kind == "device":
            return L.Device(d.get("kind", "chr"), d.get("major", 1), d.get("minor", 3),
                            d.get("mode", 0o644), d.get("uid", 0), d.get("gid", 0))  # fmt: skip
        if kind == "fifo":
            return L.Fifo(d.get("mode", 0o644), d.get("uid", 0), d.get("gid", 0))
        if kind == "hardlink":
            return L.HardLink(d["target"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise TargetError(f"malformed layer node: {e!r}") from None
    raise TargetError(f"unknown layer node type {kind!r}")


def stack_to_json(stack: L.LayerStack) -> dict[str, Any]:
    return {"lowers": [node_to_json(d) for d in stack.lowers],
            "upper": None if stack.upper is None else node_to_json(stack.upper),
            "data": [node_to_json(d) for d in stack.data],
            "separate_fs": stack.separate_fs}  # fmt: skip


def stack_from_json(d: dict[str, Any]) -> L.LayerStack:
    try:
        lowers = tuple(node_from_json(x) for x in d["lowers"])
        upper = None if d.get("upper") is None else node_from_json(d["upper"])
        data = tuple(node_from_json(x) for x in d.get("data", []))
        separate = bool(d.get("separate_fs", False))
    except (KeyError, TypeError) as e:
        raise TargetError(f"malformed layer stack: {e!r}") from None
    if not all(isinstance(x, L.Dir) for x in (*lowers, *data, *([upper] if upper else []))):
        raise TargetError("every layer of a stack must be a dir node")
    return L.LayerStack(lowers, upper, data, separate)  # type: ignore[arg-type]


# --- framing --------------------------------------------------------------------------------
def dumps(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def greeting(server: str) -> dict[str, Any]:
    return {GREETING_KEY: VERSION, "server": server}
