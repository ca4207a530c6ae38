"""Untrusted text (names, history commands, explain text) cannot break out of the page."""

from __future__ import annotations

import json
import re

from overlaysim.report.escape import display, esc, human, script_json, short
from overlaysim.report.model import Band, Cell, CopyUp, PathRow, Report
from overlaysim.report.page import render

EVIL = "</script><script>alert(1)</script>\u2028&amp;\"'"


def test_script_json_round_trips_without_markup_characters() -> None:
    data = {"p": EVIL, "b": "bad\udcffname"}
    text = script_json(data)
    assert not set("<>&\u2028") & set(text) and text.isascii()
    assert json.loads(text) == data


def test_display_and_esc() -> None:
    assert display("a\nb\udcffc\x7f") == "a\\x0ab\\xffc\\x7f"
    assert esc('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert short("/very/long/path/name", 8) == "\u2026th/name" and len(short("x" * 99, 10)) == 10
    assert (human(999), human(6405), human(1_200_000)) == ("999 B", "6.4 kB", "1.2 MB")


def test_hostile_command_and_text_stay_inside_their_elements() -> None:
    rep = Report("image", EVIL, [Band("lower1", EVIL, "/l", EVIL, 1, 5, 0, 0)],
                 [PathRow("/" + EVIL, "regular file", 0, [Cell(0, "name+data")], EVIL)], 1,
                 [CopyUp(0, "/" + EVIL, "file", "lower1", 5, row=0)], 1, 5)  # fmt: skip
    page = render(rep)
    assert page.count("<script") == 2 and page.count("</script>") == 2
    body = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert body is not None
    data = json.loads(body.group(1))
    assert data["paths"] == ["/" + EVIL] and data["explain"] == [EVIL] and data["name"] == EVIL
