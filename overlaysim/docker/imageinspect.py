"""``docker image inspect``: the Engine API's image object as each Docker release encodes it.

dockerd decodes the stored config into Go structs and encodes those, so what a user sees is
not the config file but the struct's shape: every ``container.Config`` field with its zero
value on Docker 20.10 (``"Hostname": ""``, ``"Cmd": null``), plus ``Container``,
``ContainerConfig`` and ``VirtualSize``; on Docker 28 (API 1.51) the OCI image config with
empty fields left out, a fixed set of legacy keys put back, and -- because the daemon
re-encodes it through a map -- ``Config`` with sorted keys as the *last* member. Both take
``Comment`` from the last history entry when the config has none.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from overlaysim.docker.versions import DockerVersion

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon

ZERO_TIME = "0001-01-01T00:00:00Z"

# container.Config in field order: (name, kind, omitempty); kinds say how Go decodes a value
_CONFIG: tuple[tuple[str, str, bool], ...] = (
    ("Hostname", "str", False), ("Domainname", "str", False), ("User", "str", False),
    ("AttachStdin", "bool", False), ("AttachStdout", "bool", False),
    ("AttachStderr", "bool", False), ("ExposedPorts", "set", True), ("Tty", "bool", False),
    ("OpenStdin", "bool", False), ("StdinOnce", "bool", False), ("Env", "list", False),
    ("Cmd", "strslice", False), ("Healthcheck", "health", True), ("ArgsEscaped", "bool", True),
    ("Image", "str", False), ("Volumes", "set", False), ("WorkingDir", "str", False),
    ("Entrypoint", "strslice", False), ("NetworkDisabled", "bool", True),
    ("MacAddress", "str", True), ("OnBuild", "list", False), ("Labels", "map", False),
    ("StopSignal", "str", True), ("StopTimeout", "ptr", True), ("Shell", "strslice", True),
)  # fmt: skip
# HealthConfig fields (all omitempty); StartInterval is API 1.44+ (Docker 25)
_HEALTH_2010 = ("Test", "Interval", "Timeout", "StartPeriod", "Retries")
_HEALTH = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")
# the OCI image config plus Docker's extension: what Docker 28 keeps of container.Config
_OCI_CONFIG = (
    "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
    "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell",
)  # fmt: skip
# keys Docker 28 (API >= 1.50) always shows, with these values when the config has none
_ALWAYS_28: dict[str, Any] = {
    "Cmd": None, "Entrypoint": None, "Env": None, "Labels": None, "OnBuild": None, "User": "",
    "Volumes": None, "WorkingDir": "",
}  # fmt: skip


def _empty(v: Any) -> bool:
    """Go's omitempty test for the JSON values a struct field can hold."""
    return v is None or v is False or v == 0 or v == "" or v == [] or v == {}


def _decode(kind: str, v: Any, health: tuple[str, ...]) -> Any:
    """A config value as the Go field of ``kind`` holds it after json.Unmarshal."""
    if kind == "str":
        return v if isinstance(v, str) else ""
    if kind == "bool":
        return v if isinstance(v, bool) else False
    if kind == "strslice" and isinstance(v, str):
        return [v]  # strslice also accepts a bare string
    if kind in ("list", "strslice"):
        return v if isinstance(v, list) else None
    if kind == "set":  # map[string]struct{}: the values carry nothing
        return {k: {} for k in sorted(v)} if isinstance(v, dict) else None
    if kind == "map":
        return dict(sorted(v.items())) if isinstance(v, dict) else None
    if kind == "health":
        if not isinstance(v, dict):
            return None
        got = _fold(v, health)
        return {k: got[k] for k in health if k in got and not _empty(got[k])}
    return v  # "ptr": kept as decoded (a pointer to 0 is still there)


def _fold(raw: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """JSON keys matched to struct fields as Go does: exactly or case-insensitively, the
    later key winning; unknown keys dropped."""
    by_lower = {n.lower(): n for n in names}
    out: dict[str, Any] = {}
    for k, v in raw.items():
        name = k if k in names else by_lower.get(k.lower())
        if name is not None:
            out[name] = v
    return out


def container_config(raw: Any, health: tuple[str, ...] = _HEALTH_2010) -> dict[str, Any] | None:
    """``container.Config`` encoded: every field in order, omitempty ones only when set;
    None when the config has no such object (a nil pointer)."""
    if not isinstance(raw, dict):
        return None
    got = _fold(raw, tuple(name for name, _, _ in _CONFIG))
    out: dict[str, Any] = {}
    for name, kind, omitempty in _CONFIG:
        v = _decode(kind, got.get(name), health)
        if omitempty and (v is None if kind in ("ptr", "health") else _empty(v)):
            continue
        out[name] = v
    return out


def oci_config(raw: Any) -> dict[str, Any]:
    """Docker 28's ``Config``: the OCI fields that are set, the always-shown keys filled in,
    sorted (the daemon merges them through a Go map)."""
    full = container_config(raw if isinstance(raw, dict) else {}, _HEALTH) or {}
    out = dict(_ALWAYS_28)
    for name in _OCI_CONFIG:
        v = full.get(name)
        if name == "Healthcheck" and v is not None:
            out[name] = dict(sorted(v.items()))
        elif not _empty(v):
            out[name] = v
    return dict(sorted(out.items()))


def go_time(text: Any) -> str | None:
    """An RFC 3339 time as Go's ``Format(time.RFC3339Nano)`` prints it back: its own zone
    kept, the fraction without trailing zeros. None when it does not parse."""
    if not isinstance(text, str):
        return None
    t = text.strip()
    head, frac, rest = t, "", ""
    if "." in t:
        head, _, tail = t.partition(".")
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        frac, rest = digits[:9].rstrip("0"), tail[len(digits) :]
    else:
        for i in range(len(t) - 1, 9, -1):
            if t[i] in "Zz+-":
                head, rest = t[:i], t[i:]
                break
    try:
        dt = datetime.fromisoformat(head + (rest.upper().replace("Z", "+00:00") or "+00:00"))
    except ValueError:
        return None
    zone = _zone(dt.utcoffset() or timedelta(0))
    base = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt:%H:%M:%S}"
    return base + (f".{frac}" if frac else "") + zone


def _zone(off: timedelta) -> str:
    if off == timedelta(0):
        return "Z"
    mins = int(off.total_seconds()) // 60
    sign = "+" if mins >= 0 else "-"
    return f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def health_fields(v: DockerVersion) -> tuple[str, ...]:
    """The HealthConfig fields release ``v`` knows."""
    return _HEALTH_2010 if v.inspect_legacy_fields else _HEALTH


def history_entry(h: Any, v: DockerVersion) -> Any:
    """A history entry as dockerd re-encodes it (Go's image.History): created, author,
    created_by, comment, empty_layer, empty ones left out -- except ``created`` on 20.10,
    a plain time.Time there (year 1 when missing)."""
    if not isinstance(h, dict):
        return h
    out: dict[str, Any] = {}
    created = go_time(h.get("created"))
    if created is not None or not v.missing_time_is_epoch:
        out["created"] = created or ZERO_TIME
    for key in ("author", "created_by", "comment"):
        if isinstance(h.get(key), str) and h[key]:
            out[key] = h[key]
    if h.get("empty_layer") is True:
        out["empty_layer"] = True
    return out


def comment(cfg: dict[str, Any]) -> str:
    """The config's comment, else the last history entry's (both releases do this)."""
    own = cfg.get("comment")
    if isinstance(own, str) and own:
        return own
    hist = cfg.get("history")
    if isinstance(hist, list) and hist and isinstance(hist[-1], dict):
        c = hist[-1].get("comment")
        return c if isinstance(c, str) else ""
    return ""


def _str(cfg: dict[str, Any], key: str) -> str:
    v = cfg.get(key)
    return v if isinstance(v, str) else ""


def image(d: Daemon, iid: str, v: DockerVersion) -> dict[str, Any]:
    """The image object of ``GET /images/{name}/json`` as release ``v`` sends it."""
    cfg = d.images.config(iid)
    diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
    top = d.top_chain(iid)
    layer = d.layers.lookup(top) if top else None
    data = d.layers.metadata(layer) if layer is not None else None
    size = d.layers.size(layer) if layer is not None else 0
    out: dict[str, Any] = {
        "Id": iid,
        "RepoTags": d.images.refs_for(iid),
        "RepoDigests": [],
        "Parent": d.images.parent(iid),
        "Comment": comment(cfg),
    }
    created = go_time(cfg.get("created"))
    if v.inspect_legacy_fields:
        out["Created"] = created or ZERO_TIME
        out["Container"] = _str(cfg, "container")
        out["ContainerConfig"] = container_config(cfg.get("container_config") or {})
    elif created is not None:
        out["Created"] = created
    out["DockerVersion"] = _str(cfg, "docker_version")
    out["Author"] = _str(cfg, "author")
    if v.inspect_full_config:
        out["Config"] = container_config(cfg.get("config"))
    out["Architecture"] = _str(cfg, "architecture")
    if _str(cfg, "variant"):
        out["Variant"] = cfg["variant"]
    out["Os"] = _str(cfg, "os") or "linux"
    if _str(cfg, "os.version"):
        out["OsVersion"] = cfg["os.version"]
    out["Size"] = size
    if v.inspect_legacy_fields:
        out["VirtualSize"] = size
    out["GraphDriver"] = {"Data": data, "Name": "overlay2"}
    rootfs: dict[str, Any] = {"Type": str((cfg.get("rootfs") or {}).get("type") or "")}
    if diff_ids:
        rootfs["Layers"] = diff_ids
    out["RootFS"] = rootfs
    out["Metadata"] = {"LastTagTime": d.images.last_updated(iid) or ZERO_TIME}
    if not v.inspect_full_config:
        out["Config"] = oci_config(cfg.get("config"))
    return out


__all__ = [
    "comment",
    "container_config",
    "go_time",
    "health_fields",
    "history_entry",
    "image",
    "oci_config",
]
