"""Formatting shared by the tools: sizes (``-h``), times (UTC), modes, device numbers.

All times print in UTC, as the real tools do under ``TZ=UTC``; the clock only decides
``ls``'s "recent" rule, the times themselves come from ``stat``.
"""

from __future__ import annotations

import os
import stat as statmod
import time
from typing import Any

_UNITS = "KMGTPEZYRQ"
_SIX_MONTHS = 31556952 // 2
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def human(n: int) -> str:
    """coreutils ``-h``: powers of 1024, rounded up, one decimal below 10 (``4.0K``, ``11K``)."""
    if n < 1024:
        return str(n)
    for exp, unit in enumerate(_UNITS, 1):
        base = 1024**exp
        if n < 10 * base:
            tenths = -(-n * 10 // base)
            if tenths < 100:
                return f"{tenths // 10}.{tenths % 10}{unit}"
            return f"10{unit}"
        whole = -(-n // base)
        if whole < 1024:
            return f"{whole}{unit}"
    return str(n)


def ns_of(st: Any, which: str) -> int:
    """``st_mtime_ns`` and friends, falling back to float seconds for minimal stat results."""
    value = getattr(st, f"st_{which}_ns", None)
    if value is not None:
        return int(value)
    return round(float(getattr(st, f"st_{which}")) * 1_000_000_000)


def full_iso(ns: int) -> str:
    """``2024-01-02 03:04:05.123456789 +0000`` (``stat``, ``ls --full-time``)."""
    sec, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(sec)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + f".{frac:09d} +0000"


def ls_date(ns: int, now: float) -> str:
    """``Nov 28 17:44`` within the last six months, ``Jan  2  2020`` otherwise."""
    sec = ns // 1_000_000_000
    t = time.gmtime(sec)
    month = _MONTHS[t.tm_mon - 1]
    recent = now - _SIX_MONTHS < ns / 1e9 <= now
    if recent:
        return f"{month} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"
    return f"{month} {t.tm_mday:2d}  {t.tm_year}"


def filemode(mode: int) -> str:
    """``drwxr-xr-x``, ``c---------`` (whiteout), with s/S/t/T as ``ls`` shows them."""
    return statmod.filemode(mode)


def dev_split(dev: int) -> tuple[int, int]:
    return os.major(dev), os.minor(dev)


def file_type(mode: int, size: int) -> str:
    """``stat``'s %F wording."""
    if statmod.S_ISREG(mode):
        return "regular empty file" if size == 0 else "regular file"
    if statmod.S_ISDIR(mode):
        return "directory"
    if statmod.S_ISLNK(mode):
        return "symbolic link"
    if statmod.S_ISCHR(mode):
        return "character special file"
    if statmod.S_ISBLK(mode):
        return "block special file"
    if statmod.S_ISFIFO(mode):
        return "fifo"
    if statmod.S_ISSOCK(mode):
        return "socket"
    return "weird file"


def classify(mode: int | None, slash_only: bool = False) -> str:
    """The ``-F`` indicator for a mode (``/``, ``@``, ``|``, ``=``, ``*``) or '' (unknown)."""
    if mode is None or mode == 0:
        return ""
    if statmod.S_ISDIR(mode):
        return "/"
    if slash_only:
        return ""
    if statmod.S_ISREG(mode):
        return "*" if mode & 0o111 else ""
    if statmod.S_ISLNK(mode):
        return "@"
    if statmod.S_ISFIFO(mode):
        return "|"
    if statmod.S_ISSOCK(mode):
        return "="
    return ""


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def c_sorted(names: list[str]) -> list[str]:
    """Sorted as ``strcmp`` sorts in the C locale: by UTF-8 bytes."""
    return sorted(names, key=encode)
