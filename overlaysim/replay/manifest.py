"""A manifest of a directory tree: what an upper dir holds, in a JSON-able, comparable form.

The same code reads a real directory (the ``os`` module) and a simulated one (a HostFS's
``fs.os``), so the kernel's upper dir and the replay's prediction are compared entry by
entry. Recorded per entry (key: the path relative to the root, ``"."`` for the root itself):

* ``type``: file, dir, symlink, chr, blk, fifo or sock; ``mode``: the permission bits with
  setuid/setgid/sticky as an octal string; ``uid``/``gid``;
* files: ``size``, ``sha256`` (left out for the paths in ``skip_content``), ``nlink``;
* symlinks: ``target``; devices: ``rdev`` ``[major, minor]`` (a whiteout is chr 0/0, and
  carries ``whiteout: true``); other non-directories: ``nlink``;
* hard links: entries that share an inode get ``link_group``, the smallest of their paths;
* ``xattrs``: every extended attribute, ``text:...`` when its value is printable UTF-8 and
  ``hex:...`` otherwise; the overlay's file handles and uuids (``origin``, ``upper``,
  ``uuid`` under ``trusted.overlay.`` or ``user.overlay.``) only as ``present``.

Never recorded: times, inode and device numbers, directory sizes and link counts. Whiteouts
have no ``nlink``/``link_group``: the kernel makes them links of one shared inode (from the
work dir's whiteout), so their count depends on history rather than on the tree.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Collection, Sequence
from typing import Any

OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.")
#: Overlay xattrs whose values are file handles or uuids: compared by presence only.
PRESENCE_ONLY = frozenset({"origin", "upper", "uuid"})
PRESENT = "present"
ROOT = "."

_TYPES = (
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISCHR, "chr"),
    (stat.S_ISBLK, "blk"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "sock"),
)


def file_type(mode: int) -> str:
    for test, name in _TYPES:
        if test(mode):
            return name
    return f"unknown-{stat.S_IFMT(mode):o}"


def _presence_only(name: str) -> bool:
    for prefix in OVERLAY_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :] in PRESENCE_ONLY
    return False


def encode_value(value: bytes) -> str:
    """``text:...`` for printable UTF-8 (no control characters), else ``hex:...``."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + value.hex()
    if text.isprintable():
        return "text:" + text
    return "hex:" + value.hex()


def _xattrs(osmod: Any, path: str) -> dict[str, str]:
    try:
        names = osmod.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, str] = {}
    for name in sorted(names):
        if _presence_only(name):
            out[name] = PRESENT
            continue
        try:
            value = osmod.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            out[name] = f"error:{e.errno}"
            continue
        out[name] = encode_value(bytes(value))
    return out


def _sha256(osmod: Any, path: str) -> str:
    h = hashlib.sha256()
    fd = osmod.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while chunk := osmod.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        osmod.close(fd)
    return h.hexdigest()


def _entry(osmod: Any, path: str, st: os.stat_result, with_content: bool) -> dict[str, Any]:
    kind = file_type(st.st_mode)
    e: dict[str, Any] = {
        "type": kind,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    if kind == "file":
        e["size"] = st.st_size
        if with_content:
            e["sha256"] = _sha256(osmod, path)
    elif kind == "symlink":
        e["target"] = os.fsdecode(osmod.readlink(path))
    elif kind in ("chr", "blk"):
        rdev = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        e["rdev"] = rdev
        if kind == "chr" and rdev == [0, 0]:
            e["whiteout"] = True
    if kind != "dir" and not e.get("whiteout"):
        e["nlink"] = st.st_nlink
    xattrs = _xattrs(osmod, path)
    if xattrs:
        e["xattrs"] = xattrs
    return e


def manifest(
    osmod: Any, root: str, *, skip_content: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """Every entry under ``root`` (and ``root`` itself as ``"."``), sorted by path.

    ``osmod`` is the ``os`` module or a HostFS's ``fs.os``; ``skip_content`` names paths
    (relative to ``root``) whose ``sha256`` is left out, e.g. content the trace did not show.
    """
    skip = set(skip_content)
    out: dict[str, dict[str, Any]] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        path = f"{root.rstrip('/')}/{rel}" if rel else root
        st = osmod.lstat(path)
        key = rel or ROOT
        e = _entry(osmod, path, st, key not in skip)
        out[key] = e
        if e["type"] == "dir":
            for name in osmod.listdir(path):
                name = os.fsdecode(name)
                pending.append(f"{rel}/{name}" if rel else name)
        elif not e.get("whiteout") and st.st_nlink > 1:
            inodes.setdefault((st.st_dev, st.st_ino), []).append(key)
    for paths in inodes.values():
        label = min(paths)
        for p in paths:
            out[p]["link_group"] = label
    return {k: out[k] for k in sorted(out, key=_sort_key)}


def _sort_key(path: str) -> tuple[str, ...]:
    """Parents before children, siblings by name (so "a/b" comes before "a-b")."""
    return () if path == ROOT else tuple(path.split("/"))


_FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "nlink", "target", "rdev",
           "whiteout", "link_group")  # fmt: skip


def diff_manifests(
    a: dict[str, dict[str, Any]],
    b: dict[str, dict[str, Any]],
    names: Sequence[str] = ("a", "b"),
) -> list[str]:
    """Human-readable differences between two manifests, one line each ([] when equal)."""
    na, nb = names[0], names[1]
    out: list[str] = []
    for path in sorted(set(a) | set(b), key=_sort_key):
        ea, eb = a.get(path), b.get(path)
        if ea is None or eb is None:
            which, e = (nb, eb) if ea is None else (na, ea)
            assert e is not None
            out.append(f"{path}: only in {which} ({_summary(e)})")
            continue
        for f in _FIELDS:
            va, vb = ea.get(f), eb.get(f)
            if va != vb:
                out.append(f"{path}: {f} {na}={_show(va)} {nb}={_show(vb)}")
        xa, xb = ea.get("xattrs", {}), eb.get("xattrs", {})
        for name in sorted(set(xa) | set(xb)):
            if xa.get(name) != xb.get(name):
                out.append(f"{path}: xattr {name} {na}={_show(xa.get(name))} "
                           f"{nb}={_show(xb.get(name))}")  # fmt: skip
        extra = sorted((set(ea) | set(eb)) - set(_FIELDS) - {"xattrs"})
        for f in extra:
            if ea.get(f) != eb.get(f):
                out.append(f"{path}: {f} {na}={_show(ea.get(f))} {nb}={_show(eb.get(f))}")
    return out


def _summary(e: dict[str, Any]) -> str:
    if e.get("whiteout"):
        return "whiteout"
    parts = [str(e.get("type")), str(e.get("mode"))]
    if "size" in e:
        parts.append(f"{e['size']} bytes")
    if "target" in e:
        parts.append(f"-> {e['target']}")
    return " ".join(parts)


def _show(v: Any) -> str:
    if v is None:
        return "(none)"
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."
