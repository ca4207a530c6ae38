"""Putting untrusted names into HTML, SVG and an inline script without breaking out of them.

File names may hold anything but ``/`` and NUL: ``<``, quotes, newlines, bytes that are not
UTF-8 (kept by Python as lone surrogates). Text and attributes are escaped for markup, with
control characters and undecodable bytes shown as ``\\xNN`` (XML forbids the former, UTF-8
the latter); the JSON for the script keeps names exact but never contains ``<``, ``>`` or
``&``, so no ``</script>`` can end the block early.
"""

from __future__ import annotations

import html
import json
from typing import Any


def display(s: str) -> str:
    """A printable rendering of a name: control chars and undecodable bytes as ``\\xNN``."""
    out = []
    for ch in s:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: one byte that was not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def esc(s: object) -> str:
    """Text or a quoted attribute value of HTML or inline SVG."""
    return html.escape(display(str(s)), quote=True)


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: ASCII only, no ``<>&``."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def short(s: str, width: int) -> str:
    """``s`` cut to ``width`` characters from the left (the name's end is what tells it apart)."""
    return s if len(s) <= width else "\u2026" + s[-(width - 1) :]


def human(n: int) -> str:
    """Bytes as people read them (``1.5 MB``, decimal as Docker prints sizes)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
