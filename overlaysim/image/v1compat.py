"""Legacy v1 image JSON and the v1 layer IDs that name ``docker save`` directories.

Docker <= 24 names each layer directory of a save by a hash of a *re-serialised* v1 image:
the config parsed into Go's ``V1Image``/``container.Config`` structs and marshalled again
(struct field order, omitempty, Go escaping), then re-parsed into a map, given ``layer_id``
(the ChainID) and ``parent``, and marshalled with sorted keys. Reproducing the struct round
trip is what makes our names match real saves (checked against Docker 18.09 and 20.10).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from overlaysim.image.errors import BadManifest
from overlaysim.image.gojson import Raw, dumps, sorted_map

# container.Config of Docker 18.09 - 24.x: (json name, kind, omitempty)
_CONFIG_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("Hostname", "str", False),
    ("Domainname", "str", False),
    ("User", "str", False),
    ("AttachStdin", "bool", False),
    ("AttachStdout", "bool", False),
    ("AttachStderr", "bool", False),
    ("ExposedPorts", "set", True),
    ("Tty", "bool", False),
    ("OpenStdin", "bool", False),
    ("StdinOnce", "bool", False),
    ("Env", "strs", False),
    ("Cmd", "strslice", False),
    ("Healthcheck", "health", True),
    ("ArgsEscaped", "bool", True),
    ("Image", "str", False),
    ("Volumes", "set", False),
    ("WorkingDir", "str", False),
    ("Entrypoint", "strslice", False),
    ("NetworkDisabled", "bool", True),
    ("MacAddress", "str", True),
    ("OnBuild", "strs", False),
    ("Labels", "strmap", False),
    ("StopSignal", "str", True),
    ("StopTimeout", "intptr", True),
    ("Shell", "strslice", True),
)
_HEALTH_FIELDS = (
    ("Test", "strs"),
    ("Interval", "int"),
    ("Timeout", "int"),
    ("StartPeriod", "int"),
    ("StartInterval", "int"),
    ("Retries", "int"),
)


def _lookup(obj: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Go's case-insensitive field matching (an exact match wins, else the last fold match)."""
    if name in obj:
        return True, obj[name]
    found, val = False, None
    low = name.lower()
    for k, v in obj.items():
        if k.lower() == low:
            found, val = True, v
    return found, val


def _bad(what: str) -> BadManifest:
    return BadManifest(f"image config: {what} has the wrong type for Docker's container.Config")


def _field(kind: str, v: Any, name: str) -> Any:
    """Decode a JSON value as Go would into the field's type and return what Go re-encodes."""
    if kind == "str":
        if v is None:
            return ""
        if not isinstance(v, str):
            raise _bad(name)
        return v
    if kind == "bool":
        if v is None:
            return False
        if not isinstance(v, bool):
            raise _bad(name)
        return v
    if kind in ("strs", "strslice"):
        if v is None:
            return None
        if kind == "strslice" and isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise _bad(name)
        return list(v)
    if kind == "set":
        if v is None:
            return None
        if not isinstance(v, dict) or not all(isinstance(x, dict) or x is None for x in v.values()):
            raise _bad(name)
        return sorted_map({k: {} for k in v})
    if kind == "strmap":
        if v is None:
            return None
        if not isinstance(v, dict) or not all(isinstance(x, str) or x is None for x in v.values()):
            raise _bad(name)
        return sorted_map({k: ("" if x is None else x) for k, x in v.items()})
    if kind in ("int", "intptr"):
        if v is None:
            return None if kind == "intptr" else 0
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or (isinstance(v, float) and not v.is_integer())
        ):
            raise _bad(name)
        return int(v)
    if kind == "health":
        if v is None:
            return None
        if not isinstance(v, dict):
            raise _bad(name)
        out: dict[str, Any] = {}
        for hname, hkind in _HEALTH_FIELDS:
            ok, hv = _lookup(v, hname)
            val = _field(hkind, hv if ok else None, hname)
            if val not in (None, 0, []):
                out[hname] = val
        return out
    raise ValueError(kind)


def _empty(val: Any) -> bool:
    return (
        val is None
        or val is False
        or val == ""
        or val == 0
        or (isinstance(val, list | dict) and not val)
    )


def container_config(obj: Any) -> dict[str, Any]:
    """``container.Config`` re-encoded in struct order (None -> every field at its zero value)."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise _bad("config")
    out: dict[str, Any] = {}
    for name, kind, omitempty in _CONFIG_FIELDS:
        ok, v = _lookup(obj, name)
        val = _field(kind, v if ok else None, name)
        if kind == "health" or kind == "intptr":
            if val is None:
                continue
        elif omitempty and _empty(val):
            continue
        out[name] = val
    return out


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def go_time(text: str) -> str:
    """A time parsed and re-marshalled by Go (RFC 3339 with nanoseconds, zeros trimmed)."""
    m = _RFC3339.fullmatch(text)
    if not m:
        raise BadManifest(f"image config: invalid time {text!r}")
    frac = (m.group(7) or "")[1:]
    frac = frac[:9].rstrip("0")
    zone = m.group(8)
    if zone in ("Z", "z") or zone in ("+00:00", "-00:00"):
        zone = "Z"
    base = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"
    return base + ("." + frac if frac else "") + zone


def epoch_in_zone(tz_offset_seconds: int) -> str:
    """``time.Unix(0, 0)`` marshalled in the daemon's local zone (UTC gives ...Z)."""
    if tz_offset_seconds == 0:
        return "1970-01-01T00:00:00Z"
    tz = timezone(timedelta(seconds=tz_offset_seconds))
    return datetime.fromtimestamp(0, tz).isoformat()


def v1_image(
    config: dict[str, Any] | None,
    *,
    created: str | None = None,
    id_: str = "",
    parent: str = "",
    os_: str = "",
) -> dict[str, Any]:
    """The V1Image struct as Go marshals it. ``config=None`` gives a lower layer's object."""
    c = config or {}
    out: dict[str, Any] = {}

    def s(key: str) -> str:
        v = c.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise BadManifest(f"image config: {key!r} must be a string")
        return v

    if id_:
        out["id"] = id_
    par = parent or (s("parent") if config is not None else "")
    if par:
        out["parent"] = par
    if config is not None and s("comment"):
        out["comment"] = s("comment")
    if created is None:
        created = go_time(s("created")) if s("created") else "0001-01-01T00:00:00Z"
    out["created"] = created
    if config is not None and s("container"):
        out["container"] = s("container")
    out["container_config"] = container_config(
        c.get("container_config") if config is not None else None
    )
    if config is not None:
        for key in ("docker_version", "author"):
            if s(key):
                out[key] = s(key)
        if c.get("config") is not None:
            out["config"] = container_config(c.get("config"))
        for key in ("architecture", "variant"):
            if s(key):
                out[key] = s(key)
    osv = os_ or (s("os") if config is not None else "")
    if osv:
        out["os"] = osv
    if config is not None:
        size = c.get("Size")
        if isinstance(size, int) and not isinstance(size, bool) and size:
            out["Size"] = size
    return out


def v1_id(img: dict[str, Any], chain_id: str, parent_v1: str | None) -> str:
    """moby's v1.CreateID: hex sha256 of the sorted map with layer_id (+ parent) added."""
    body = {k: Raw(dumps(v)) for k, v in img.items() if k != "id"}
    body["layer_id"] = Raw(dumps(chain_id))
    if parent_v1:
        body["parent"] = Raw(dumps("sha256:" + parent_v1))
    return hashlib.sha256(dumps(sorted_map(body)).encode()).hexdigest()


def legacy_layer_ids(
    config: dict[str, Any],
    chain_ids: list[str],
    tz_offset_seconds: int = 0,
) -> list[tuple[str, bytes]]:
    """(v1 id, saved ``json`` file bytes) for every layer, base first, as docker save writes."""
    out: list[tuple[str, bytes]] = []
    parent = ""
    n = len(chain_ids)
    osv = config.get("os") if isinstance(config.get("os"), str) else ""
    for i, chain in enumerate(chain_ids):
        top = i == n - 1
        epoch = epoch_in_zone(tz_offset_seconds)
        img = v1_image(config) if top else v1_image(None, created=epoch)
        vid = v1_id(img, chain, parent or None)
        if top:
            saved = v1_image(config, id_=vid, parent=parent)
        else:
            saved = v1_image(
                None, created=epoch_in_zone(tz_offset_seconds), id_=vid, parent=parent, os_=str(osv)
            )
        out.append((vid, dumps(saved).encode()))
        parent = vid
    return out
