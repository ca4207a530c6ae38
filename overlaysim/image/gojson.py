"""JSON as Go's ``encoding/json`` writes it, and bounded JSON reading.

Image IDs, manifest digests and v1 layer IDs are hashes of JSON text, so "the same JSON" is not
enough: keys in struct order (or sorted, for maps), no spaces, ``<`` ``>`` ``&`` and U+2028/9
escaped, ``MarshalIndent`` layout for ``runc spec``. Reading goes the other way: a size and a
nesting limit checked *before* parsing, since Python's parser recurses.
"""

from __future__ import annotations

import json
from typing import Any

from overlaysim.image.errors import BadManifest
from overlaysim.image.limits import Limits, check

_ESC = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_string(s: str) -> str:
    out = ['"']
    for ch in s:
        e = _ESC.get(ch)
        if e is not None:
            out.append(e)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")  # invalid UTF-8 (a lone surrogate) becomes U+FFFD, as in Go
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Raw(str):
    """Pre-encoded JSON text inserted verbatim (Go's json.RawMessage, already compact)."""


def _scalar(v: Any) -> str | None:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, str):
        return go_string(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    return None


def dumps(v: Any) -> str:
    """Compact encoding; dicts keep their insertion order (sort them to emulate Go maps)."""
    s = _scalar(v)
    if s is not None:
        return s
    if isinstance(v, dict):
        return "{" + ",".join(go_string(str(k)) + ":" + dumps(x) for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    raise TypeError(f"cannot encode {type(v).__name__}")


def dumps_indent(v: Any, indent: str = "\t", _level: int = 0) -> str:
    """``json.MarshalIndent(v, "", indent)``: one element per line, ``"key": value``."""
    s = _scalar(v)
    if s is not None:
        return s
    pad = indent * (_level + 1)
    end = indent * _level
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [
            pad + go_string(str(k)) + ": " + dumps_indent(x, indent, _level + 1)
            for k, x in v.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(v, list | tuple):
        if not v:
            return "[]"
        return (
            "[\n"
            + ",\n".join(pad + dumps_indent(x, indent, _level + 1) for x in v)
            + "\n"
            + end
            + "]"
        )
    raise TypeError(f"cannot encode {type(v).__name__}")


def sorted_map(d: dict[str, Any]) -> dict[str, Any]:
    """Go encodes map keys in byte order."""
    return {k: d[k] for k in sorted(d, key=lambda k: k.encode("utf-8", "surrogatepass"))}


def _depth(data: bytes) -> int:
    """Maximum nesting of arrays/objects, skipping string contents (linear, no recursion)."""
    depth = best = 0
    in_str = esc = False
    for c in data:
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > best:
                best = depth
        elif c in (0x5D, 0x7D):
            depth -= 1
    return best


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def loads(data: bytes, limits: Limits, what: str) -> Any:
    """Parse JSON with size and depth limits; invalid UTF-8 is replaced as Go does."""
    check(len(data), limits.max_json_bytes, f"{what}: JSON size")
    d = _depth(data)
    check(d, limits.max_json_depth, f"{what}: JSON nesting depth")
    try:
        return json.loads(data.decode("utf-8", "replace"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadManifest(f"{what}: invalid JSON ({exc})") from None


def expect_object(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise BadManifest(f"{what}: expected a JSON object")
    return v


def get_str(d: dict[str, Any], key: str, what: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise BadManifest(f"{what}: {key!r} must be a string")
    return v


def get_int(d: dict[str, Any], key: str, what: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise BadManifest(f"{what}: {key!r} must be an integer")
    return v


def get_list(d: dict[str, Any], key: str, what: str, allow_null: bool = True) -> list[Any]:
    v = d.get(key)
    if v is None and allow_null:
        return []
    if not isinstance(v, list):
        raise BadManifest(f"{what}: {key!r} must be an array")
    return v
