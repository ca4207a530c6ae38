"""Where Python's ``tarfile`` reads a layer differently from Go's ``archive/tar``.

Docker extracts with Go; many scanners and Python tools (and our users' scripts) read the same
bytes with ``tarfile``. An entry the two parsers see differently is a classic smuggling trick
(a PAX global header renaming later members, a bad header that Python treats as the end), so
``inspect --differential`` lists every disagreement as a finding.
"""

from __future__ import annotations

import io
import tarfile

from overlaysim.errors import OverlaySimError
from overlaysim.image.findings import Findings
from overlaysim.image.limits import Limits
from overlaysim.image.tar_reader import DIR, LINK, SYMLINK, XGLOBAL, TarReader

_PY_KIND = {tarfile.DIRTYPE: DIR, tarfile.SYMTYPE: SYMLINK, tarfile.LNKTYPE: LINK}


def _go_view(data: bytes, limits: Limits) -> tuple[list[tuple[str, str, int, str]], str | None]:
    out = []
    try:
        r = TarReader(io.BytesIO(data), limits)
        for h in r:
            if h.typeflag == XGLOBAL:
                continue
            out.append((h.name.rstrip("/"), h.typeflag, h.size, h.linkname))
    except OverlaySimError as exc:
        return out, str(exc)
    return out, None


def _py_view(data: bytes) -> tuple[list[tuple[str, str, int, str]], str | None]:
    out = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
            for m in t:
                tf = _PY_KIND.get(m.type, m.type.decode("latin-1") if m.type else "0")
                if m.type in tarfile.REGULAR_TYPES:
                    tf = "0"
                out.append((m.name.rstrip("/"), tf, m.size, m.linkname))
    except (tarfile.TarError, EOFError, ValueError, UnicodeError) as exc:
        return out, f"{type(exc).__name__}: {exc}"
    return out, None


def tarfile_differential(data: bytes, limits: Limits, layer: int | None = None) -> Findings:
    """Findings for every entry Go and Python's tarfile read differently (uncompressed tar)."""
    f = Findings()
    go, go_err = _go_view(data, limits)
    py, py_err = _py_view(data)
    if (go_err is None) != (py_err is None):
        who, why = ("Go", go_err) if go_err else ("Python's tarfile", py_err)
        f.add(
            "parser-refuses", f"{who} refuses this layer ({why}); the other reads it", layer=layer
        )
    n = max(len(go), len(py))
    for i in range(n):
        a = go[i] if i < len(go) else None
        b = py[i] if i < len(py) else None
        if a == b:
            continue
        if a is None or b is None:
            side = "Python's tarfile" if a is None else "Go"
            entry = b if a is None else a
            assert entry is not None
            f.add(
                "parser-extra-entry", f"only {side} sees entry {i} ({entry[0]!r})", entry[0], layer
            )
            continue
        fields = [
            k for k, x, y in zip(("name", "type", "size", "link"), a, b, strict=True) if x != y
        ]
        f.add(
            "parser-differential",
            f"entry {i}: Go reads {a[0]!r}, Python's tarfile {b[0]!r} (differs in {', '.join(fields)})",
            a[0],
            layer,
        )
    return f
