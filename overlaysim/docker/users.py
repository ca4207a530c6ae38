"""``--user name[:group]`` resolved the way runc does: from the container's own
``/etc/passwd`` and ``/etc/group``, read inside its root (a chrooted process, so a symlinked
``/etc/passwd`` cannot point outside the container)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overlaysim.errors import DaemonError


class UserNotFound(DaemonError):
    """The user or group names no entry of the container's passwd/group file."""


def _entries(fs: Any, root: str, path: str) -> list[list[str]]:
    proc = fs.as_user(0, 0)
    try:
        proc.os.chroot(root)
        with proc.open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    finally:
        if proc.task in fs.processes:
            fs.processes.remove(proc.task)
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def lookup(fs: Any, root: str, user: str) -> tuple[int, int]:
    """(uid, gid) of ``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) in ``root``."""
    if not user:
        return 0, 0
    u, sep, g = user.partition(":")
    passwd = _entries(fs, root, "/etc/passwd")
    uid = gid = 0
    if u.isdigit():
        uid = int(u)
        for e in passwd:
            if len(e) > 3 and e[2] == u and e[3].isdigit():
                gid = int(e[3])
                break
    else:
        for e in passwd:
            if len(e) > 3 and e[0] == u and e[2].isdigit() and e[3].isdigit():
                uid, gid = int(e[2]), int(e[3])
                break
        else:
            raise UserNotFound(f"unable to find user {u}: no matching entries in passwd file")
    if sep and g:
        if g.isdigit():
            gid = int(g)
        else:
            for e in _entries(fs, root, "/etc/group"):
                if len(e) > 2 and e[0] == g and e[2].isdigit():
                    gid = int(e[2])
                    break
            else:
                raise UserNotFound(f"unable to find group {g}: no matching entries in group file")
    return uid, gid


def _id_names(fs: Any, root: str, path: str, min_colons: int) -> dict[str, str]:
    """id -> name of the first well-formed entry (Go's os/user skips short lines)."""
    out: dict[str, str] = {}
    for e in _entries(fs, root, path):
        if len(e) > min_colons and e[0][:1] not in ("+", "-"):
            out.setdefault(e[2], e[0])
    return out


#: what nss-systemd synthesizes when the files have no entry (Debian names 65534's group nogroup)
_NSS_SYSTEMD_USERS = {0: "root", 65534: "nobody"}
_NSS_SYSTEMD_GROUPS = {0: "root", 65534: "nogroup"}


def tar_names(fs: Any, root: str) -> Callable[[int, int], tuple[str, str]]:
    """(uid, gid) -> (uname, gname) as Go's ``tar.FileInfoHeader`` found them for Docker
    20.10: from ``/etc/passwd`` and ``/etc/group`` under ``root`` (the daemon's own for a
    commit, the container's for an export, which runs chrooted), "" when there is no entry.
    The files are read on first use; then, as glibc with the daemon's ``passwd: files
    systemd`` (Debian 12), nss-systemd's synthesized root and nobody answer ids 0 and 65534
    (observed with the dockerd oracle: a container whose /etc/passwd is overwritten still
    exports uid 0 as "root" and 65534 as "nobody", while its uid 37 goes nameless)."""
    tables: list[dict[str, str]] = []

    def names(uid: int, gid: int) -> tuple[str, str]:
        if not tables:
            tables.append(_id_names(fs, root, "/etc/passwd", 6))
            tables.append(_id_names(fs, root, "/etc/group", 3))
        uname = tables[0].get(str(uid)) or _NSS_SYSTEMD_USERS.get(uid, "")
        return uname, tables[1].get(str(gid)) or _NSS_SYSTEMD_GROUPS.get(gid, "")

    return names
