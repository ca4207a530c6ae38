"""The explorer driven by textual's Pilot: keys pressed, panes and screen asserted."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Awaitable, Callable

from textual.pilot import Pilot
from textual.widgets import DataTable

from overlaysim.dive.app import DiveApp
from overlaysim.dive.diveformula import dive_figures
from overlaysim.dive.sources import Subject, from_archive
from overlaysim.dive.waste import honest_waste
from tests.dive.conftest import SAMPLE, build
from tests.docker.conftest import fixture_path


def _screen(app: DiveApp) -> str:
    """The screen's text, from textual's SVG screenshot (spaces are no-break spaces there)."""
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r">([^<]*)</text>", svg))).replace("\xa0", " ")


def _drive(subject: Subject, steps: Callable[[DiveApp, Pilot[None]], Awaitable[None]]) -> None:
    app = DiveApp(subject, honest_waste(subject.layers), dive_figures(subject.layers))

    async def go() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            await steps(app, pilot)

    asyncio.run(go())


def test_fixture_layers_tree_and_figures() -> None:
    subject = from_archive(fixture_path("dive/test-docker-image.tar"))

    async def steps(app: DiveApp, pilot: Pilot[None]) -> None:
        table = app.query_one("#layers", DataTable)
        assert table.row_count == 14
        assert app.layer == 13  # the top layer is selected first
        assert app.tree_lines() == ["  root/", "  ~ saved.txt  6405 B"]
        details = app.details_text()
        assert "chmod +x /root/saved.txt" in details
        assert "honest: efficiency 97.38 %" in details and "dive: efficiency 98.44 %" in details
        await pilot.press("up", "up", "up", "up")  # layer 9: rm -rf /root/example/
        assert app.layer == 9
        assert app.tree_lines() == ["  root/", "  - example"]
        await pilot.press("v")  # merged view up to layer 9: busybox and all
        lines = [x.strip() for x in app.tree_lines()]
        assert "bin/" in lines and "- example" in lines and len(lines) > 400
        assert "[  1075464 B" in lines and "busybox  (hard link: data counted once)" in lines
        await pilot.press("u")  # hide what layer 9 did not touch
        assert app.tree_lines() == ["  root/", "  - example"]
        screen = _screen(app)
        assert "Command" in screen and "rm -rf /root/example/" in screen
        assert "- example" in screen and "hidden marks: unmodified" in screen

    _drive(subject, steps)


def test_filters_and_waste_marks_on_the_sample() -> None:
    _, layers = build(SAMPLE)
    subject = Subject("image", "sample", "sha256:none", layers)

    async def steps(app: DiveApp, pilot: Pilot[None]) -> None:
        await pilot.press("up")  # layer 1
        assert app.layer == 1
        lines = [x.strip() for x in app.tree_lines()]
        assert {"- gone", "- d", "- f", "o o/", "+ new  9 B", "~ c  300 B", "~ s  64 B"} <= set(lines)
        await pilot.press("r")  # hide removed: /a and /h stay, they are unmodified dirs
        lines = [x.strip() for x in app.tree_lines()]
        assert lines == ["a/", "~ c  300 B", "h/", "o o/", "+ new  9 B", "~ s  64 B"]
        await pilot.press("o", "m")  # hide opaque and modified: /o stays for its new name
        assert [x.strip() for x in app.tree_lines()] == ["a/", "h/", "o o/", "+ new  9 B"]
        await pilot.press("u")
        assert [x.strip() for x in app.tree_lines()] == ["o o/", "+ new  9 B"]
        assert "hidden marks: modified, opaque, removed, unmodified" in app.details_text()
        await pilot.press("r", "o", "m", "u", "up")  # all shown again, layer 0
        lines = [x.strip() for x in app.tree_lines()]
        assert "+ keep  1000 B  [wasted: overwritten with new content]" in lines
        assert "+ f  5000 B" in lines and "+ g  (hard link: data counted once)" in lines
        await pilot.press("down", "down", "v")  # merged view of all three layers
        lines = [x.strip() for x in app.tree_lines()]
        assert "~ keep  10 B" in lines and "old" not in " ".join(lines)
        assert "g  (hard link: data counted once)" in lines  # the name that still shows f's data
        assert not any(x.startswith("f ") for x in lines)

    _drive(subject, steps)
