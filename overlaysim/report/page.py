"""One self-contained HTML page: inline CSS, inline SVG, inline script, the data as JSON.

Nothing is fetched (no external script, style, font or image), so the file can be mailed or
opened offline. The script only shows the explain text stored for a path: clicking a row (or
a timeline bar), or opening the page at ``#explain=/etc/passwd``, runs the same handler.
"""

from __future__ import annotations

from overlaysim.report import svg
from overlaysim.report.escape import esc, human, script_json
from overlaysim.report.model import MAX_BARS, Report

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
td.num{text-align:right} .facts th{background:#f4f4f4}
svg text{font:12px monospace;fill:#222} svg .axis{fill:#666} svg .role{font-weight:bold}
svg .cmd{fill:#555;font-size:11px} svg .stats{fill:#333}
.band rect{stroke:#333;stroke-width:1} .band-upper rect{fill:#ffd8a8} .band-init rect{fill:#e9ecef}
.band-lower rect{fill:#d0ebff} .band-data rect{fill:#e6fcf5}
.row .hit{fill:transparent} .row:hover .hit{fill:#f1f3f5} .row.selected .hit{fill:#fff3bf}
.row{cursor:pointer} .row.removed text{fill:#c92a2a;text-decoration:line-through}
.row .mtype{fill:#555}
.cell{stroke:#1c7ed6;stroke-width:1} .cell.win{fill:#1c7ed6} .cell.merged{fill:#a5d8ff}
.cell.data{fill:#74c0fc} .cell.hidden{fill:#fff;stroke:#adb5bd;stroke-dasharray:2 2}
.cell.opaque{stroke:#000;stroke-width:3} .cell.whiteout rect{fill:#ffe3e3;stroke:#c92a2a}
.cell.whiteout path{stroke:#c92a2a;stroke-width:2}
.copyup{fill:#e8590c;cursor:pointer} .copyup.zero{fill:#868e96} .copyup:hover{fill:#862e9c}
.cumulative{fill:none;stroke:#2b8a3e;stroke-width:2} .axisline{stroke:#666}
.grid{display:grid;grid-template-columns:minmax(0,960px) minmax(320px,1fr);gap:12px;
align-items:start} #stack,#paths,#timeline{max-width:100%;height:auto}
#explain{position:sticky;top:8px;border:1px solid #ccc;padding:8px;max-height:92vh;overflow:auto}
#explain-text{white-space:pre-wrap;overflow-wrap:anywhere;font:12px monospace;margin:0}
.legend span{display:inline-block;margin-right:14px} .sw{display:inline-block;width:14px;
height:10px;margin-right:4px;vertical-align:middle;border:1px solid #1c7ed6}
.note{color:#555;font-size:13px}
"""

_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var title = document.getElementById('explain-path');
  var body = document.getElementById('explain-text');
  function show(i) {
    title.textContent = data.paths[i];
    body.textContent = data.explain[i];
    document.body.setAttribute('data-shown', String(i));
    var rows = document.querySelectorAll('#paths .row');
    for (var k = 0; k < rows.length; k++) {
      rows[k].classList.toggle('selected', rows[k].getAttribute('data-i') === String(i));
    }
  }
  document.addEventListener('click', function (ev) {
    var el = ev.target.closest ? ev.target.closest('[data-i]') : null;
    if (el) { show(Number(el.getAttribute('data-i'))); }
  });
  function fromHash() {
    var m = /^#explain=(.*)$/.exec(location.hash);
    if (!m) { return; }
    var path = decodeURIComponent(m[1]);
    var i = data.paths.indexOf(path);
    var row = document.querySelector('#paths .row[data-i="' + i + '"]');
    if (i < 0 || !row) {
      title.textContent = path;
      body.textContent = 'not in this report (only the drawn paths are explained)';
      return;
    }
    row.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  }
  window.addEventListener('hashchange', fromHash);
  fromHash();
  document.body.setAttribute('data-ready', '1');
})();
"""


def _facts(rep: Report) -> str:
    rows = [("subject", f"{rep.kind} {rep.name}"), *rep.facts]
    return '<table class="facts" id="facts">' + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"  # fmt: skip


def _legend() -> str:
    items = [("win", "the layer the merged view shows"), ("merged", "a directory merged in"),
             ("data", "data under a metacopy"), ("hidden", "hidden (click for what hides it)")]  # fmt: skip
    out = "".join(f'<span><svg class="sw" width="14" height="10"><rect class="cell {c}" '
                  f'width="14" height="10"/></svg>{esc(t)}</span>' for c, t in items)  # fmt: skip
    out += ('<span><svg width="14" height="10"><g class="cell whiteout"><rect width="14" '
            'height="10"/><path d="M0 0l14 10M14 0l-14 10"/></g></svg>whiteout</span>'
            '<span><svg width="14" height="10"><rect class="cell win opaque" width="14" '
            'height="10"/></svg>opaque directory (thick border)</span>')  # fmt: skip
    return f'<p class="legend">{out}</p>'


def _row_attr(row: int | None) -> str:
    return "" if row is None else f' data-i="{row}"'


def _copyup_table(rep: Report) -> str:
    ups = (rep.copy_ups or [])[:MAX_BARS]
    if not ups:
        return ""
    cause = "call" if rep.kind == "replay" else "command (from the world's event log)"
    head = f"<tr><th>#</th><th>trace line</th><th>{cause}</th><th>path</th><th>type</th>" \
           "<th>from</th><th>bytes</th></tr>"  # fmt: skip
    body = "".join(
        f'<tr class="copyup-row"{_row_attr(c.row)}>'
        f'<td class="num">{c.seq + 1}</td><td class="num">{esc(c.line if c.line is not None else "")}'
        f'</td><td>{esc(c.call or c.reason)}</td><td>{esc(c.path)}</td><td>{esc(c.type)}'
        f'{" (metadata only)" if c.metadata_only else ""}</td><td>{esc(c.layer)}</td>'
        f'<td class="num">{c.bytes}</td></tr>'
        for c in ups
    )  # fmt: skip
    return f'<table id="copyups">{head}{body}</table>'


def _upper_table(rep: Report) -> str:
    if not rep.upper_state:
        return '<p class="note" id="upper-state-empty">The upper layer is empty.</p>'
    head = "<tr><th>path</th><th>type</th><th>bytes</th><th>state</th></tr>"
    body = "".join(f'<tr class="upper-row"><td>{esc(u["path"])}</td><td>{esc(u["type"])}</td>'
                   f'<td class="num">{u["bytes"]}</td><td>{esc(u["state"])}</td></tr>'
                   for u in rep.upper_state)  # fmt: skip
    return f'<table id="upper-state">{head}{body}</table>'


def _timeline(rep: Report) -> str:
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in rep.notes)
    if rep.copy_ups is None:
        return f'<p id="no-events" class="note">No copy-up events recorded.</p>{notes}' \
               f"<h2>What the upper layer holds</h2>{_upper_table(rep)}"  # fmt: skip
    decisions = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(rep.decisions.items())
                          if v)  # fmt: skip
    summary = (f'<p id="copyup-summary" data-count="{rep.copy_up_count}" '
               f'data-bytes="{rep.copy_up_bytes}">{rep.copy_up_count} copy-ups, '
               f"{rep.copy_up_bytes} bytes ({esc(human(rep.copy_up_bytes))}) copied to the upper "
               f"layer{'; other decisions: ' + esc(decisions) if decisions else ''}.</p>")  # fmt: skip
    return summary + notes + svg.timeline(rep) + _copyup_table(rep)


def render(rep: Report) -> str:
    """The whole page as one string."""
    shown = len(rep.rows)
    cap = f"All {shown} paths of the layers are drawn." if shown == rep.total_paths else (
        f"{shown} of {rep.total_paths} paths are drawn: first those the events touched, "
        f"whiteouts and opaque dirs, names in several layers, names added above the base; "
        f"the bands' totals count every entry (--max-paths N draws more).")  # fmt: skip
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>overlaysim report: {esc(rep.kind)} {esc(rep.name)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>overlaysim report: {esc(rep.kind)} {esc(rep.name)}</h1>{_facts(rep)}"
        f"<h2>Layer stack</h2>{svg.stack(rep)}"
        f'<h2>Paths and their layers</h2><p class="note" id="path-count" data-shown="{shown}" '
        f'data-total="{rep.total_paths}">{esc(cap)}</p>{_legend()}'
        f'<div class="grid"><div>{svg.paths(rep)}</div><aside id="explain">'
        f'<h2 id="explain-path">explain</h2><pre id="explain-text">Click a path (or a copy-up '
        f"bar) to see what overlaysim explain says about it.</pre></aside></div>"
        f"<h2>Copy-up timeline</h2>{_timeline(rep)}"
        f'<script type="application/json" id="report-data">{script_json(rep.page_data())}'
        f"</script><script>{_SCRIPT}</script></body></html>\n"
    )
