"""The replay's operation format: one JSON object per line ("overlaysim-trace", version 1).

Why a format of our own: strace is one tracer among several (eBPF, fanotify, a script); all
of them convert to these normalized calls, and the replay reads only these. The schema is
``overlaysim/replay/schema.json`` and the README's "Trace format" section.

Rules that every record follows:
* ``op`` names the normalized call; ``pid`` the calling process (thread id); ``line`` the
  source line in the original log; ``ts`` seconds (float) when the log had timestamps;
  ``call`` the original syscall name (``openat``, ``pwrite64``...).
* ``ret`` is the recorded return value (``null`` when unknown: unfinished, ``?``); ``err`` the
  errno name (``"ENOENT"``) when the call failed. Both are compared with the simulator.
* A file is named either by ``fd`` alone (``fchmod``, ``AT_EMPTY_PATH``) or by ``path`` with an
  optional ``dirfd`` (``null``/absent = ``AT_FDCWD``). Paths and names are text as Python's
  ``os.fsdecode`` gives it (UTF-8, undecodable bytes as lone surrogates ``\\udcXX``).
* Byte buffers (``data``, xattr ``value``) are lowercase hex. ``complete`` says whether
  ``data`` holds the whole buffer (strace keeps only ``-s`` bytes): when false, ``size`` is
  still exact and the replay fills the unknown tail with zero bytes and reports the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from overlaysim.errors import TraceError

FORMAT = "overlaysim-trace"
VERSION = 1

Op = dict[str, Any]

# op -> (required keys, optional keys); "fd|path" means: fd, or path (+ optional dirfd).
_SPEC: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "open": (("path", "flags"), ("dirfd", "mode", "resolve")),
    "close": (("fd",), ()),
    "close_range": (("fd", "max_fd"), ("flags",)),
    "dup": (("fd",), ("newfd", "cloexec", "minfd")),
    "setfd": (("fd", "cloexec"), ()),
    "chdir": (("fd|path",), ()),
    "read": (("fd", "size"), ("offset",)),
    "write": (("fd", "size"), ("offset", "data", "complete")),
    "lseek": (("fd", "offset", "whence"), ()),
    "truncate": (("fd|path", "length"), ()),
    "fallocate": (("fd", "offset", "length"), ("mode",)),
    "copy": (("fd_in", "fd_out", "size"), ("off_in", "off_out")),
    "mkdir": (("path",), ("dirfd", "mode")),
    "mknod": (("path", "mode"), ("dirfd", "dev")),
    "symlink": (("target", "path"), ("dirfd",)),
    "link": (("oldpath", "newpath"), ("olddirfd", "newdirfd", "flags")),
    "unlink": (("path",), ("dirfd", "flags")),
    "rename": (("oldpath", "newpath"), ("olddirfd", "newdirfd", "flags")),
    "chmod": (("fd|path", "mode"), ("flags",)),
    "chown": (("fd|path", "uid", "gid"), ("flags",)),
    "utimes": (("fd|path",), ("atime", "mtime", "flags")),
    "setxattr": (("fd|path", "name", "value"), ("flags", "follow")),
    "removexattr": (("fd|path", "name"), ("follow",)),
    "getxattr": (("fd|path", "name"), ("follow",)),
    "listxattr": (("fd|path",), ("follow",)),
    "stat": (("fd|path",), ("flags", "follow")),
    "access": (("path", "mode"), ("dirfd", "flags")),
    "readlink": (("path",), ("dirfd",)),
    "getdents": (("fd",), ("entries",)),
    "fork": (("child",), ("share_files", "share_fs", "thread")),
    "exec": (("path",), ("argv",)),
    "exit": ((), ("status",)),
    "umask": (("mask",), ()),
}
OPS = frozenset(_SPEC)
_COMMON = frozenset({"op", "pid", "line", "ts", "call", "ret", "err"})
_INT_KEYS = frozenset({
    "fd", "dirfd", "olddirfd", "newdirfd", "flags", "mode", "size", "offset", "whence",
    "length", "fd_in", "fd_out", "off_in", "off_out", "uid", "gid", "dev", "max_fd",
    "newfd", "minfd", "child", "mask", "entries", "status", "pid", "line", "ret",
})  # fmt: skip
_STR_KEYS = frozenset({"path", "oldpath", "newpath", "target", "name", "data", "value",
                       "call", "err"})  # fmt: skip


def header(source: str = "", **extra: Any) -> dict[str, Any]:
    """The first line of a JSONL trace."""
    return {"format": FORMAT, "version": VERSION, "source": source, **extra}


def validate(op: Any, where: str = "") -> Op:
    """Check one record against the schema; a :class:`TraceError` names what is wrong."""
    at = f"{where}: " if where else ""
    if not isinstance(op, dict):
        raise TraceError(f"{at}a record must be a JSON object")
    name = op.get("op")
    if name not in _SPEC:
        raise TraceError(f"{at}unknown op {name!r}")
    if not isinstance(op.get("pid"), int) or isinstance(op.get("pid"), bool):
        raise TraceError(f"{at}{name}: 'pid' must be an integer")
    required, optional = _SPEC[name]
    allowed = set(optional) | _COMMON
    for key in required:
        if key == "fd|path":
            if "path" not in op and "fd" not in op:
                raise TraceError(f"{at}{name}: needs 'fd' or 'path'")
            allowed |= {"fd", "path", "dirfd"}
        elif key not in op:
            raise TraceError(f"{at}{name}: missing {key!r}")
        else:
            allowed.add(key)
    for key, value in op.items():
        if key not in allowed:
            raise TraceError(f"{at}{name}: unexpected key {key!r}")
        if value is None:
            continue
        if key in _INT_KEYS and (not isinstance(value, int) or isinstance(value, bool)):
            raise TraceError(f"{at}{name}: {key!r} must be an integer or null")
        if key in _STR_KEYS and not isinstance(value, str):
            raise TraceError(f"{at}{name}: {key!r} must be a string")
    for key in ("data", "value"):
        if isinstance(op.get(key), str):
            try:
                bytes.fromhex(op[key])
            except ValueError:
                raise TraceError(f"{at}{name}: {key!r} must be hex") from None
    return op


def read_jsonl(lines: Iterable[str], source: str = "trace") -> Iterator[Op]:
    """Validated records of a JSONL trace (the header line is checked and not yielded)."""
    it = iter(lines)
    for n, text in enumerate(it, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise TraceError(f"{source}:{n}: not JSON ({e})") from None
        if n == 1 or "format" in obj if isinstance(obj, dict) else False:
            if isinstance(obj, dict) and "format" in obj:
                if obj.get("format") != FORMAT:
                    raise TraceError(f"{source}:{n}: not an {FORMAT} file")
                if obj.get("version") != VERSION:
                    raise TraceError(
                        f"{source}:{n}: {FORMAT} version {obj.get('version')!r} "
                        f"(this overlaysim reads version {VERSION})"
                    )
                continue
        yield validate(obj, f"{source}:{n}")


def write_jsonl(ops: Iterable[Op], out: IO[str], source: str = "", **extra: Any) -> int:
    """Write the header and the records; returns how many records were written."""
    out.write(json.dumps(header(source, **extra), sort_keys=True) + "\n")
    n = 0
    for op in ops:
        out.write(json.dumps(op, sort_keys=True) + "\n")
        n += 1
    return n


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one record; ``schema.json`` is this, written out."""
    int_or_null = {"type": ["integer", "null"]}
    common: dict[str, Any] = {
        "op": {"type": "string"}, "pid": {"type": "integer"},
        "line": {"type": "integer"}, "ts": {"type": "number"},
        "call": {"type": "string"}, "ret": int_or_null, "err": {"type": "string"},
    }  # fmt: skip
    kinds: dict[str, Any] = {k: int_or_null for k in _INT_KEYS}
    kinds.update({k: {"type": "string"} for k in _STR_KEYS})
    kinds.update({
        "data": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
        "value": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
        "complete": {"type": "boolean"}, "cloexec": {"type": "boolean"},
        "follow": {"type": "boolean"}, "share_files": {"type": "boolean"},
        "share_fs": {"type": "boolean"}, "thread": {"type": "boolean"},
        "argv": {"type": ["array", "null"], "items": {"type": "string"}},
        "resolve": {"type": ["integer", "null"]},
        "atime": {"$ref": "#/$defs/time"}, "mtime": {"$ref": "#/$defs/time"},
    })  # fmt: skip
    variants = []
    for name, (required, optional) in sorted(_SPEC.items()):
        props = dict(common)
        props["op"] = {"const": name}
        req = ["op", "pid"]
        any_of = None
        for key in (*required, *optional):
            for k in (("fd", "path", "dirfd") if key == "fd|path" else (key,)):
                props[k] = kinds.get(k, {})
            if key == "fd|path":
                any_of = [{"required": ["fd"]}, {"required": ["path"]}]
            elif key in required:
                req.append(key)
        v: dict[str, Any] = {"type": "object", "properties": props, "required": req,
                             "additionalProperties": False}  # fmt: skip
        if any_of:
            v["anyOf"] = any_of
        variants.append(v)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://overlaysim.invalid/schema/overlaysim-trace-1.json",
        "title": f"{FORMAT} version {VERSION}: one normalized file-system call per line",
        "description": "The first line is a header {format, version, source}; every other "
        "line is one of these records. Paths are os.fsdecode text; buffers are hex.",
        "$defs": {"time": {"oneOf": [
            {"type": "null", "description": "UTIME_NOW"},
            {"const": "omit", "description": "UTIME_OMIT"},
            {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
             "description": "[seconds, nanoseconds]"}]}},
        "oneOf": variants,
    }
