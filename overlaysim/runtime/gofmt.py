"""Go's text shapes that runc and the docker CLI print: RFC 3339 times, tabwriter tables,
go-units human durations and sizes.

Tables follow ``text/tabwriter`` with flags 0: every tab-terminated cell is padded to the
widest cell of its column plus ``padding`` (at least ``minwidth``); the text after the last
tab of a line is not a column and is printed as is.
"""

from __future__ import annotations

import time


def rfc3339nano(ns: int) -> str:
    """``time.Time.Format(time.RFC3339Nano)`` in UTC: trailing zeros of the fraction dropped."""
    secs, frac = divmod(ns, 10**9)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (any zone, any fraction); 0 if invalid."""
    from datetime import datetime

    t = text.strip().replace("z", "Z")
    frac_ns = 0
    if "." in t:
        head, _, rest = t.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        t = head + rest[len(digits) :]
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(dt.timestamp()) * 10**9 + frac_ns


def tabwrite(rows: list[list[str]], minwidth: int, padding: int) -> str:
    """``tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0)`` of tab-joined rows."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * (ncols - 1)
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + padding, minwidth)
    lines = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("".join(cells) + (r[-1] if r else ""))
    return "\n".join(lines) + "\n"


#: Go's zero time.Time (January 1, year 1 UTC) in ns since the epoch
GO_ZERO_TIME_NS = -62135596800 * 10**9
#: the longest time.Duration (Go's ``Time.Sub`` saturates there): about 292 years
MAX_DURATION_SECONDS = (2**63 - 1) / 10**9


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration`` of a Go duration (so at most ~292 years)."""
    seconds = min(seconds, MAX_DURATION_SECONDS)
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def _go_g(value: float, precision: int) -> str:
    """Go's ``%.*g``: like C's, shortest of %e/%f with trailing zeros removed."""
    text = f"{value:.{precision}g}"
    if "e" in text:
        mant, _, exp = text.partition("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0").rjust(2, "0")
        text = f"{mant}e{sign}{digits}"
    return text


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision`` (decimal units: B, kB, MB, GB...)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000.0 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return _go_g(size, precision) + units[i]
