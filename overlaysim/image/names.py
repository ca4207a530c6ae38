"""Member names as Docker reads them: Go's ``path.Clean``, escapes, whiteout markers, limits."""

from __future__ import annotations

import re

from overlaysim.errors import LimitExceeded, NameTooLong
from overlaysim.image.limits import Limits

WH_PREFIX = ".wh."
WH_META = ".wh..wh."
WH_OPAQUE = ".wh..wh..opq"
BAD_WHITEOUTS = frozenset({".wh.", ".wh..", ".wh..."})
# AUFS bookkeeping Docker's AUFS unpacker skips at the layer root
AUFS_META = frozenset({".wh..wh.aufs", ".wh..wh.orph", ".wh..wh.plnk"})


_SIMPLE = re.compile(r"[^/]+(?:/[^/]+)*/?")
_DOTS = re.compile(r"(?:^|/)\.\.?(?:/|$)")


def go_clean(p: str) -> str:
    """Go's ``path.Clean``: lexical, keeps leading ``..`` of relative paths, drops them at '/'."""
    if p and p[0] != "/" and p[0] != "." and "//" not in p and "/." not in p:
        # relative, no empty component, none starting with '.' (so no '.' or '..'): clean
        return p[:-1] if p[-1] == "/" else p
    return _go_clean(p)


def _go_clean(p: str) -> str:
    """go_clean for the names its quick test cannot vouch for."""
    if _SIMPLE.fullmatch(p) and not _DOTS.search(p):
        return p[:-1] if p.endswith("/") else p  # already clean
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def escapes(cleaned: str) -> bool:
    return cleaned == ".." or cleaned.startswith("../")


def clamp(name: str) -> str:
    """Chroot semantics: ``..`` at the root stays at the root."""
    parts: list[str] = []
    for seg in name.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    return "/".join(parts)


def relative(cleaned: str) -> str:
    """The path below the layer root ('' for the root itself)."""
    if cleaned in (".", "/"):
        return ""
    return cleaned.lstrip("/")


def check_lengths(rel: str, limits: Limits, where: str, name: str) -> None:
    if len(rel) <= limits.max_name_bytes and rel.isascii() and rel.count("/") < limits.max_depth:
        return  # short ASCII paths cannot exceed any of the limits (the common case)
    what = f"{where}: {name[:80]!r}"
    b = rel.encode("utf-8", "surrogateescape")
    if len(b) > limits.max_path_bytes:
        raise NameTooLong(f"{what}: path of {len(b)} bytes exceeds {limits.max_path_bytes}")
    parts = rel.split("/") if rel else []
    if len(parts) > limits.max_depth:
        raise LimitExceeded(f"{what}: depth {len(parts)} exceeds {limits.max_depth}")
    for part in parts:
        n = len(part.encode("utf-8", "surrogateescape"))
        if n > limits.max_name_bytes:
            raise NameTooLong(
                f"{what}: name component of {n} bytes exceeds {limits.max_name_bytes}"
            )


def split(rel: str) -> tuple[str, str]:
    """(parent, base) of a relative path."""
    i = rel.rfind("/")
    if i < 0:
        return "", rel
    return rel[:i], rel[i + 1 :]


def join(parent: str, base: str) -> str:
    return f"{parent}/{base}" if parent else base
