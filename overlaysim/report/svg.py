"""The pictures: the layer stack as bands, the path matrix, the copy-up timeline (inline SVG).

Every element a reader or a test may look for carries a class and ``data-`` attributes with
the numbers it stands for (``band`` with ``data-entries``, ``copyup`` with ``data-bytes``...):
the page is checked structurally in a browser, never by pixels.
"""

from __future__ import annotations

from overlaysim.report.escape import esc, human, short
from overlaysim.report.model import MAX_BARS, Band, Report

WIDTH = 960
_BAND_H, _BAND_GAP = 40, 4
_ROW_H, _LEFT, _HEAD = 18, 400, 70


def _band_kind(b: Band) -> str:
    if b.role == "upper":
        return "upper"
    if b.role.startswith("data"):
        return "data"
    return "init" if b.label.startswith("init layer") else "lower"


def stack(rep: Report) -> str:
    """One band per layer, topmost first, as the kernel documentation draws the stack."""
    h = 24 + len(rep.bands) * (_BAND_H + _BAND_GAP) + 20
    out = [f'<svg id="stack" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" '
           f'viewBox="0 0 {WIDTH} {h}" role="img" aria-label="layer stack">',
           '<text class="axis" x="4" y="14">top: looked up first (the merged view sees it '
           'over everything below)</text>']  # fmt: skip
    for i, b in enumerate(rep.bands):
        y = 22 + i * (_BAND_H + _BAND_GAP)
        stats = (f"{b.entries} entries \u00b7 {human(b.bytes)} \u00b7 {b.whiteouts} whiteouts"
                 f" \u00b7 {b.opaque} opaque dirs")  # fmt: skip
        out.append(
            f'<g class="band band-{_band_kind(b)}" data-band="{i}" data-role="{esc(b.role)}" '
            f'data-entries="{b.entries}" data-bytes="{b.bytes}" data-whiteouts="{b.whiteouts}" '
            f'data-opaque="{b.opaque}"><title>{esc(b.dir)}</title>'
            f'<rect x="2" y="{y}" width="{WIDTH - 4}" height="{_BAND_H}" rx="4"/>'
            f'<text class="role" x="10" y="{y + 16}">{esc(b.role)}</text>'
            f'<text x="80" y="{y + 16}">{esc(short(b.label, 60))}</text>'
            f'<text class="stats" x="{WIDTH - 10}" y="{y + 16}" text-anchor="end">{stats}</text>'
            f'<text class="cmd" x="80" y="{y + 32}">{esc(short(b.command, 130))}</text></g>'
        )  # fmt: skip
    out.append(f'<text class="axis" x="4" y="{h - 4}">bottom: the base layer</text></svg>')
    return "".join(out)


def _cell_class(role: str) -> str:
    if role == "merged into the directory":
        return "merged"
    return "data" if role == "data" else "hidden"


def paths(rep: Report) -> str:
    """A row per drawn path, a column per layer: where the name is, and which layer wins."""
    n = max(len(rep.bands), 1)
    col = max(12, min(40, (WIDTH - _LEFT - 130) // n))
    right = _LEFT + n * col + 8
    h = _HEAD + len(rep.rows) * _ROW_H + 8
    out = [f'<svg id="paths" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" '
           f'viewBox="0 0 {WIDTH} {h}" role="img" aria-label="paths by layer">',
           f'<text class="axis" x="4" y="{_HEAD - 8}">path (click for explain)</text>',
           f'<text class="axis" x="{right}" y="{_HEAD - 8}">merged view</text>']  # fmt: skip
    for i, b in enumerate(rep.bands):
        x = _LEFT + i * col + col // 2
        out.append(f'<text class="colhead" data-band="{i}" transform="translate({x},{_HEAD - 8}) '
                   f'rotate(-55)">{esc(b.role)}</text>')  # fmt: skip
    for k, r in enumerate(rep.rows):
        y = _HEAD + k * _ROW_H
        state = "removed" if not r.merged else "visible"
        winner = "" if r.winner is None else str(r.winner)
        out.append(f'<g class="row {state}" data-i="{k}" data-winner="{winner}" '
                   f'data-merged="{esc(r.merged)}"><rect class="hit" x="0" y="{y}" '
                   f'width="{WIDTH}" height="{_ROW_H}"/><text x="4" y="{y + 13}">'
                   f'<title>{esc(r.path)}</title>{esc(short(r.path, 56))}</text>')  # fmt: skip
        for c in r.cells:
            x = _LEFT + c.band * col + 2
            w = col - 4
            if c.whiteout:
                out.append(f'<g class="cell whiteout" data-band="{c.band}"><rect x="{x}" '
                           f'y="{y + 2}" width="{w}" height="{_ROW_H - 4}"/><path d="M{x} '
                           f'{y + 2}l{w} {_ROW_H - 4}M{x + w} {y + 2}l-{w} {_ROW_H - 4}"/>'
                           f'<title>whiteout in {esc(rep.bands[c.band].role)}</title></g>')  # fmt: skip
                continue
            kind = "win" if c.band == r.winner else _cell_class(c.role)
            opaque = " opaque" if c.opaque else ""
            label = f"{rep.bands[c.band].role}: {c.role}" + (", opaque dir" if c.opaque else "")
            out.append(f'<rect class="cell {kind}{opaque}" data-band="{c.band}" x="{x}" '
                       f'y="{y + 2}" width="{w}" height="{_ROW_H - 4}"><title>{esc(label)}'
                       f'</title></rect>')  # fmt: skip
        shown = r.merged or "hidden (no merged name)"
        out.append(f'<text class="mtype" x="{right}" y="{y + 13}">{esc(shown)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def timeline(rep: Report) -> str:
    """The copy-ups in the order the engine made them: a bar of bytes each, and the running
    total as a line. Zero-byte copy-ups (directories, metadata-only) are thin ticks."""
    ups = (rep.copy_ups or [])[:MAX_BARS]
    if not ups:
        return ""
    h, top, bottom, left = 240, 20, 200, 70
    plot = WIDTH - left - 20
    step = plot / len(ups)
    biggest = max(max(c.bytes for c in ups), 1)
    total = max(sum(c.bytes for c in ups), 1)
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" '
           f'viewBox="0 0 {WIDTH} {h}" role="img" aria-label="copy-up timeline">',
           f'<line class="axisline" x1="{left}" y1="{bottom}" x2="{WIDTH - 20}" y2="{bottom}"/>',
           f'<text class="axis" x="{left - 6}" y="{top + 8}" text-anchor="end">'
           f'{esc(human(biggest))}</text>',
           f'<text class="axis" x="{left - 6}" y="{bottom}" text-anchor="end">0</text>',
           f'<text class="axis" x="{left}" y="{h - 16}">copy-ups in the order they happened '
           f'(bars: bytes of each; line: running total, {esc(human(sum(c.bytes for c in ups)))})'
           f'</text>']  # fmt: skip
    run = 0
    points = [f"{left},{bottom}"]
    for k, c in enumerate(ups):
        x = left + k * step
        bh = (bottom - top) * c.bytes / biggest
        zero = c.bytes == 0
        bh = max(bh, 3.0 if zero else 1.0)
        row = "" if c.row is None else f' data-i="{c.row}"'
        where = f"line {c.line}, " if c.line is not None else ""
        tip = f"#{c.seq + 1} {c.path}: {c.bytes} bytes ({where}{c.call or c.reason}, from {c.layer})"
        out.append(f'<rect class="copyup{" zero" if zero else ""}" data-seq="{c.seq}" '
                   f'data-bytes="{c.bytes}" data-path="{esc(c.path)}"{row} x="{x:.2f}" '
                   f'y="{bottom - bh:.2f}" width="{max(step - 1, 1):.2f}" height="{bh:.2f}">'
                   f'<title>{esc(tip)}</title></rect>')  # fmt: skip
        run += c.bytes
        points.append(f"{x + step:.2f},{bottom - (bottom - top) * run / total:.2f}")
    out.append(f'<polyline class="cumulative" points="{" ".join(points)}"/></svg>')
    return "".join(out)
