"""The docker CLI's text: the rows of ``docker images``, ``docker ps`` and ``docker history``
(the columns their ``--format`` templates see), ``docker diff`` lines, and ``inspect -f``.

Tables and ``--format`` go through the CLI's formatter (:mod:`overlaysim.docker.listfmt`);
times are relative to the simulated clock ("2 hours ago", "Up 5 seconds", "Exited (0) 3
seconds ago"). Values as docker 20.10.24 prints them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from overlaysim.docker import listfmt, versions
from overlaysim.docker.containers import Container
from overlaysim.docker.gotemplate import TemplateError, TemplateParseError, go_quote
from overlaysim.docker.gotemplate_exec import Template
from overlaysim.docker.listfmt import json_line
from overlaysim.image import digest as dg
from overlaysim.runtime.gofmt import GO_ZERO_TIME_NS, human_duration, human_size, parse_rfc3339

__all__ = ["TemplateError", "TemplateParseError", "json_line"]


def ellipsis(s: str, width: int) -> str:
    """The CLI's ``Ellipsis``: cut to ``width`` characters, the last one being ``…``."""
    return s if len(s) <= width else s[: width - 1] + "…"


def go_time(ns: int) -> str:
    """``time.Unix(t, 0).String()`` in UTC: ``2024-01-01 00:00:00 +0000 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(ns // 10**9))


def since(now_ns: int, then_ns: int) -> str:
    return human_duration(max(0, now_ns - then_ns) / 10**9) + " ago"


# --- docker images ---------------------------------------------------------------------------
def image_fields(row: dict[str, Any], now_ns: int, no_trunc: bool = False) -> dict[str, str]:
    """The columns of one ``docker images`` row (``VirtualSize`` has go-units' 4 digits)."""
    return {
        "Containers": "N/A",
        "CreatedAt": go_time(row["Created"]),
        # Go's zero time (an image without "created" on 20.10): "", the table shows N/A
        "CreatedSince": "" if row["Created"] == GO_ZERO_TIME_NS else since(now_ns, row["Created"]),
        "Digest": "<none>",
        "ID": row["ID"] if no_trunc else dg.hex_of(row["ID"])[:12],
        "Repository": row["Repository"],
        "SharedSize": "N/A",
        "Size": human_size(row["Size"]),
        "Tag": row["Tag"],
        "UniqueSize": "N/A",
        "VirtualSize": human_size(row["Size"], 4),
    }


def image_row(row: dict[str, Any], now_ns: int, no_trunc: bool = False) -> listfmt.Row:
    return listfmt.Row(listfmt.IMAGES.go_type, dict(image_fields(row, now_ns, no_trunc)), {})


# --- docker history --------------------------------------------------------------------------
def history_fields(
    r: dict[str, Any], now_ns: int, no_trunc: bool = False, human: bool = True
) -> dict[str, str]:
    """One ``docker history`` row; ``human=False`` (``-H=false``) prints RFC 3339 and bytes."""
    ident = r["ID"]
    if not no_trunc and ident != "<missing>":
        ident = dg.hex_of(ident)[:12]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["Created"] // 10**9))
    by = r["CreatedBy"].replace("\t", " ")
    return {
        "Comment": r["Comment"],
        "CreatedAt": at,
        "CreatedBy": by if no_trunc else ellipsis(by, 45),
        "CreatedSince": (
            "N/A"  # CLI 23+ hides times at or before the epoch (zero times, no "created")
            if r["Created"] <= 0 and versions.current().history_hides_old_times
            else since(now_ns, r["Created"])
        )
        if human
        else at,
        "ID": ident,
        "Size": human_size(r["Size"]) if human else str(r["Size"]),
    }


def history_row(
    r: dict[str, Any], now_ns: int, no_trunc: bool = False, human: bool = True
) -> listfmt.Row:
    fields = history_fields(r, now_ns, no_trunc, human)
    return listfmt.Row(listfmt.HISTORY.go_type, dict(fields), {})


# --- docker ps ---------------------------------------------------------------------------------
def status_text(c: Container, now_ns: int) -> str:
    st = c.state
    s = c.status
    if s == "running":
        return "Up " + human_duration(max(0, now_ns - parse_rfc3339(st["StartedAt"])) / 10**9)
    if s == "paused":
        up = human_duration(max(0, now_ns - parse_rfc3339(st["StartedAt"])) / 10**9)
        return f"Up {up} (Paused)"
    if s == "created":
        return "Created"
    if s == "removing":
        return "Removal In Progress"
    if s == "dead":
        return "Dead"
    return f"Exited ({st['ExitCode']}) {since(now_ns, parse_rfc3339(st['FinishedAt']))}"


def container_fields(c: Container, now_ns: int, no_trunc: bool = False) -> dict[str, str]:
    """The columns of one ``docker ps`` row but ``Size`` (costly: see :func:`container_row`)."""
    # the daemon's list view: arguments with a space are wrapped in single quotes
    command = " ".join([c.argv[0]] + [f"'{a}'" if " " in a else a for a in c.argv[1:]])
    image = str(c.doc["Config"].get("Image") or c.image_id)
    if not no_trunc and image.startswith("sha256:"):
        image = dg.hex_of(image)[:12]
    created = parse_rfc3339(str(c.doc["Created"]))
    networks = (c.doc.get("NetworkSettings") or {}).get("Networks") or {}
    return {
        "Command": go_quote(command if no_trunc else ellipsis(command, 20)),
        "CreatedAt": go_time(created),
        "ID": c.id if no_trunc else c.id[:12],
        "Image": image,
        "Labels": ",".join(
            f"{k}={v}" for k, v in sorted((c.doc["Config"].get("Labels") or {}).items())
        ),
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": c.name,
        "Networks": ",".join(sorted(networks)),
        "Ports": "",
        "RunningFor": since(now_ns, created),
        "State": c.status,
        "Status": status_text(c, now_ns),
    }


def container_size(rw: int, image: int) -> str:
    """``Size``: the container layer's bytes, and with the image's (the CLI's "virtual")."""
    srw = human_size(rw)
    return f"{srw} (virtual {human_size(rw + image)})" if rw + image > 0 else srw


def container_row(
    c: Container, now_ns: int, no_trunc: bool, size: Callable[[], str]
) -> listfmt.Row:
    """A ``docker ps`` row; ``size`` runs only if the format shows ``.Size`` (as the CLI asks
    the daemon for sizes only then)."""
    columns: dict[str, listfmt.Value] = dict(container_fields(c, now_ns, no_trunc))
    columns["Size"] = size
    return listfmt.Row(
        listfmt.CONTAINERS.go_type, columns, dict(c.doc["Config"].get("Labels") or {})
    )


def container_row_zero() -> listfmt.Row:
    """The empty container ``docker ps`` checks a custom ``--format`` against."""
    columns: dict[str, listfmt.Value] = dict.fromkeys(listfmt.CONTAINERS.headers, "")
    return listfmt.Row(listfmt.CONTAINERS.go_type, columns, {})


# --- docker inspect -f ---------------------------------------------------------------------------
#: Go types of inspect fields that are slices or maps: a null one prints ``[]`` / ``map[]``
_NIL_SLICES = frozenset({
    "Cmd", "Entrypoint", "Env", "OnBuild", "Shell", "Args", "Binds", "Links", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "CapAdd", "CapDrop", "SecurityOpt",
    "VolumesFrom", "Devices", "DeviceCgroupRules", "DeviceRequests", "Mounts", "RepoTags",
    "RepoDigests", "Layers", "Aliases", "Ulimits", "ConsoleSize", "MaskedPaths",
    "ReadonlyPaths", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "ExecIDs", "DNSNames",
    "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
})  # fmt: skip
_NIL_MAPS = frozenset({
    "Labels", "Volumes", "ExposedPorts", "Ports", "Networks", "Data", "Options", "DriverOpts",
    "Sysctls", "Tmpfs", "StorageOpt", "Annotations",
})  # fmt: skip


def _nil_kind(key: str) -> str:
    return "slice" if key in _NIL_SLICES else ("map" if key in _NIL_MAPS else "ptr")


def parse_template(fmt: str) -> Template:
    """``inspect -f``: the template as typed (no ``\\n`` rewriting, unlike the listings)."""
    return Template(fmt)


def go_template(fmt: str | Template, doc: dict[str, Any]) -> str:
    """``docker inspect -f``: a Go template over the object (a missing key is an error, as
    in the CLI's fallback to the raw JSON)."""
    tmpl = fmt if isinstance(fmt, Template) else Template(fmt)
    try:
        return tmpl.execute(doc, missingkey_error=True, nil_kind=_nil_kind)
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}") from None
