"""The docker CLI's text: ``docker images`` and ``docker ps`` tables, their ``--format json``
lines, and ``docker diff`` lines, from the daemon's rows.

Tables use the CLI's tabwriter settings (min width 10, padding 3); times are relative to the
simulated clock ("2 hours ago", "Up 5 seconds", "Exited (0) 3 seconds ago").
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from overlaysim.docker.containers import Container
from overlaysim.errors import UsageError
from overlaysim.image import digest as dg
from overlaysim.runtime.gofmt import human_duration, human_size, parse_rfc3339, tabwrite


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
    size = human_size(row["Size"])
    return {
        "Containers": "N/A",
        "CreatedAt": go_time(row["Created"]),
        "CreatedSince": since(now_ns, row["Created"]),
        "Digest": "<none>",
        "ID": row["ID"] if no_trunc else dg.hex_of(row["ID"])[:12],
        "Repository": row["Repository"],
        "SharedSize": "N/A",
        "Size": size,
        "Tag": row["Tag"],
        "UniqueSize": "N/A",
        "VirtualSize": size,
    }


def images_table(rows: list[dict[str, Any]], now_ns: int, no_trunc: bool = False) -> str:
    table = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for r in rows:
        f = image_fields(r, now_ns, no_trunc)
        table.append([f["Repository"], f["Tag"], f["ID"], f["CreatedSince"], f["Size"]])
    return tabwrite(table, 10, 3)


def history_table(rows: list[dict[str, Any]], now_ns: int, no_trunc: bool = False) -> str:
    table = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for r in rows:
        ident = r["ID"] if r["ID"] == "<missing>" or no_trunc else dg.hex_of(r["ID"])[:12]
        by = r["CreatedBy"] if no_trunc else ellipsis(r["CreatedBy"], 45)
        table.append([ident, since(now_ns, r["Created"]), by, human_size(r["Size"]), r["Comment"]])
    return tabwrite(table, 10, 3)


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
    # the daemon's list view: arguments with a space are wrapped in single quotes
    command = " ".join([c.argv[0]] + [f"'{a}'" if " " in a else a for a in c.argv[1:]])
    image = str(c.doc["Config"].get("Image") or c.image_id)
    if not no_trunc and image.startswith("sha256:"):
        image = dg.hex_of(image)[:12]
    created = parse_rfc3339(str(c.doc["Created"]))
    return {
        "Command": json.dumps(command if no_trunc else ellipsis(command, 20), ensure_ascii=False),
        "CreatedAt": go_time(created),
        "ID": c.id if no_trunc else c.id[:12],
        "Image": image,
        "Labels": ",".join(
            f"{k}={v}" for k, v in sorted((c.doc["Config"].get("Labels") or {}).items())
        ),
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": c.name,
        "Networks": "bridge",
        "Ports": "",
        "RunningFor": since(now_ns, created),
        "Size": "0B",
        "State": c.status,
        "Status": status_text(c, now_ns),
    }


def ps_table(cs: list[Container], now_ns: int, no_trunc: bool = False) -> str:
    table = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for c in cs:
        f = container_fields(c, now_ns, no_trunc)
        table.append(
            [
                f["ID"],
                f["Image"],
                f["Command"],
                f["RunningFor"],
                f["Status"],
                f["Ports"],
                f["Names"],
            ]
        )
    return tabwrite(table, 10, 3)


def json_line(fields: dict[str, str]) -> str:
    """``--format json``: one object per line, keys sorted, HTML characters escaped (Go)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class TemplateError(UsageError):
    """A ``--format`` template the CLI cannot execute (printed without the daemon prefix)."""


def go_template(fmt: str, doc: dict[str, Any]) -> str:
    """The ``{{.Field.Sub}}`` and ``{{json .Field}}`` forms of Go templates (nothing else)."""

    def value(path: str) -> Any:
        cur: Any = doc
        for part in filter(None, path.split(".")):
            if not isinstance(cur, dict) or part not in cur:
                raise TemplateError(
                    f'template parsing error: template: :1: map has no entry for key "{part}"'
                )
            cur = cur[part]
        return cur

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(value(expr[5:].strip()), separators=(",", ":"))
        v = value(expr)
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "<no value>"
        if isinstance(v, (dict, list)):
            return "map[...]" if isinstance(v, dict) else " ".join(map(str, v)).join("[]")
        return str(v)

    return re.sub(r"\{\{(.*?)\}\}", sub, fmt.replace("\\n", "\n").replace("\\t", "\t"))
