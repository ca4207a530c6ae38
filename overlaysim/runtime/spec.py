"""``runc spec`` (and ``--rootless``) and where a bundle comes from.

A bundle is read from the simulated machine when its directory exists there; otherwise it is
taken from the real disk (``runc spec`` writes ``config.json`` there, ``overlaysim image
bundle`` writes ``rootfs/``) and imported into the world at the same absolute path, where it
then stays: the container's rootfs, and every change made in it, live in the world.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from typing import Any

from overlaysim.errors import RuntimeStateError
from overlaysim.image.bundle import runc_spec
from overlaysim.image.gojson import dumps_indent


def spec(runc_version: str = "1.4", rootless: bool = False, euid: int = 0, egid: int = 0) -> bytes:
    """The bytes ``runc spec [--rootless]`` writes (tab-indented Go JSON, no newline)."""
    s = runc_spec(runc_version, True)
    if rootless:
        _to_rootless(s, euid, egid)
    return dumps_indent(s).encode()


def _to_rootless(s: dict[str, Any], euid: int, egid: int) -> None:
    """specconv.ToRootless: a user namespace mapping only the caller, no cgroup limits."""
    linux = s["linux"]
    namespaces = [n for n in linux["namespaces"] if n["type"] not in ("network", "user")]
    namespaces.append({"type": "user"})
    mounts = []
    for m in s["mounts"]:
        if m["destination"] == "/sys":
            m = {"destination": "/sys", "type": "none", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}  # fmt: skip
        elif "options" in m:
            m = dict(m, options=[o for o in m["options"] if not o.startswith(("uid=", "gid="))])
        mounts.append(m)
    s["mounts"] = mounts
    new_linux = {
        "uidMappings": [{"containerID": 0, "hostID": euid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": egid, "size": 1}],
    }
    for key, value in linux.items():
        if key == "resources":
            continue
        new_linux[key] = namespaces if key == "namespaces" else value
    s["linux"] = new_linux


def write_spec(bundle: str, data: bytes) -> str:
    """Create ``<bundle>/config.json`` on the real disk; refuse to overwrite, as runc does."""
    path = os.path.join(bundle, "config.json")
    if os.path.lexists(path):
        raise RuntimeStateError("File config.json exists. Remove it first")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def locate_bundle(fs: Any, bundle: str) -> tuple[str, dict[str, Any], bool]:
    """(absolute bundle path, its spec, imported now?) — from the world, else the real disk."""
    path = posixpath.normpath(os.path.abspath(bundle))
    o = fs.os
    imported = False
    try:
        in_world = stat.S_ISDIR(o.stat(path).st_mode)
    except OSError:
        in_world = False
    if not in_world:
        if not os.path.isdir(path):
            raise RuntimeStateError(f"bundle {path}: no such directory (in the world or on disk)")
        if not os.path.exists(os.path.join(path, "config.json")):
            raise RuntimeStateError("JSON specification file config.json not found")
        fs.import_tree(path, path)
        imported = True
    try:
        with fs.open(posixpath.join(path, "config.json"), "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise RuntimeStateError("JSON specification file config.json not found") from None
    except ValueError as e:
        raise RuntimeStateError(f"config.json: invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise RuntimeStateError("config.json: the spec is not a JSON object")
    proc = data.get("process") or {}
    cwd = proc.get("cwd") or ""
    if not cwd:
        raise RuntimeStateError("Cwd property must not be empty")
    if not str(cwd).startswith("/"):
        raise RuntimeStateError("Cwd must be an absolute path")
    return path, data, imported
