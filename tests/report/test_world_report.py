"""``overlaysim report`` of an image and of containers, checked in headless Chromium against
the layer tars of dive's test image and against ``overlaysim explain``."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from tests.report.browser import Cdp, Node, dump_dom, parse, screenshot
from tests.report.conftest import FIXTURE
from tests.worldcli import cli


def _tars() -> list[list[tarfile.TarInfo]]:
    """Each layer tar's members, base layer first."""
    with tarfile.open(FIXTURE) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        out = []
        for name in manifest[0]["Layers"]:
            raw = io.BytesIO(t.extractfile(name).read())  # type: ignore[union-attr]
            with tarfile.open(fileobj=raw) as inner:
                out.append(inner.getmembers())
        return out


def _report(world: str, out: Path, *args: str) -> Path:
    r = cli(world, "report", *args, "-o", str(out), check=False)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def image_page(world: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _report(world, tmp_path_factory.mktemp("r") / "image.html", "dive-test")


def _dom(page: Path, tmp: Path, fragment: str = "") -> Node:
    return parse(dump_dom(page.as_uri() + fragment, tmp / "profile"))


def _rows(dom: Node) -> dict[str, Node]:
    data = json.loads(dom.by_id("report-data").all_text())
    return {data["paths"][int(r.attrs["data-i"])]: r for r in dom.find("g", "row")}


def test_image_bands_and_whiteouts_match_the_layer_tars(image_page: Path, tmp_path: Path) -> None:
    dom = _dom(image_page, tmp_path)
    assert dom.by_id("report-data") and dom.find("body")[0].attrs.get("data-ready") == "1"
    tars = _tars()
    bands = dom.find("g", "band")
    assert len(bands) == len(tars)  # one band per image layer, the topmost first
    rows = _rows(dom)
    for i, band in enumerate(bands):
        members = tars[len(tars) - 1 - i]
        outs = [m.name for m in members if os.path.basename(m.name).startswith(".wh.")]
        opq = [n for n in outs if n.endswith(".wh..wh..opq")]
        assert int(band.attrs["data-whiteouts"]) == len(outs) - len(opq)
        assert int(band.attrs["data-opaque"]) == len(opq)
        assert band.attrs["data-role"] == f"lower{i + 1}"
        size = sum(m.size for m in members if m.isreg() and "/.wh." not in "/" + m.name)
        assert int(band.attrs["data-bytes"]) == size
        for name in outs:  # each whiteout is drawn, marked in its layer's column
            if name in opq:
                continue
            d, b = os.path.split(name.removeprefix("./"))
            row = rows["/" + os.path.join(d, b.removeprefix(".wh."))]
            assert row.find(None, "whiteout", data_band=str(i)), name
    count = dom.by_id("path-count")
    assert int(count.attrs["data-shown"]) == len(rows) == min(200, int(count.attrs["data-total"]))
    s = dom.by_id("copyup-summary")
    assert (s.attrs["data-count"], s.attrs["data-bytes"]) == ("0", "0")  # an image: none
    assert not dom.find("rect", "copyup")


@pytest.mark.parametrize("path", ["/root/saved.txt", "/root/example", "/somefile.txt", "/tmp"])
def test_click_shows_explains_text_and_the_rows_agree_with_its_json(
        world: str, image_page: Path, tmp_path: Path, path: str) -> None:  # fmt: skip
    dom = _dom(image_page, tmp_path, "#explain=" + path)
    text = cli(world, "explain", f"dive-test:{path}").output
    assert dom.by_id("explain-text").all_text() == text.rstrip("\n")
    assert dom.by_id("explain-path").all_text() == path
    js = json.loads(cli(world, "explain", "--json", f"dive-test:{path}").output)
    row = _rows(dom)[path]
    assert "selected" in row.classes
    roles = [b.attrs["data-role"] for b in dom.find("g", "band")]
    name = js["lookup"]["name_from"]
    if js["merged"] is None:
        assert "removed" in row.classes and row.attrs["data-winner"] == ""
    else:
        assert roles[int(row.attrs["data-winner"])] == name["layer"]["role"]
    cells = {roles[int(c.attrs["data-band"])]: c for c in row.iter() if "cell" in c.classes}
    assert set(cells) == {p["layer"]["role"] for p in js["layers_with_path"]
                          if p["layer"]["role"] != "upper"}  # fmt: skip
    for p in js["layers_with_path"]:
        c = cells.get(p["layer"]["role"])
        if c is not None and p["role"] == "hidden" and p["type"] != "character device":
            assert "hidden" in c.classes


def test_a_real_click_in_chromium_shows_the_explanation(world: str, image_page: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    page = Cdp(image_page.as_uri(), tmp_path / "profile")
    try:
        i = page.eval("JSON.parse(document.getElementById('report-data').textContent)"
                      ".paths.indexOf('/root/saved.txt')")  # fmt: skip
        assert page.eval("document.getElementById('explain-text').textContent").startswith("Click")
        page.click(f'#paths .row[data-i="{i}"] text')
        shown = page.eval("document.getElementById('explain-text').textContent")
        selected = page.eval("document.querySelector('#paths .row.selected').dataset.i")
    finally:
        page.close()
    assert shown == cli(world, "explain", "dive-test:/root/saved.txt").output.rstrip("\n")
    assert selected == str(i)


def _lower_size(path: str) -> int:
    """The size of ``path`` in the topmost image layer tar that has it."""
    for members in reversed(_tars()):
        for m in members:
            if "/" + m.name.lstrip("./") == path:
                return m.size
    raise AssertionError(f"{path} is in no layer tar")


def test_container_timeline_comes_from_the_world_event_log(world: str, tmp_path: Path) -> None:
    page = _report(world, tmp_path / "ran.html", "ran")
    dom = _dom(page, tmp_path)
    bands = dom.find("g", "band")
    assert [b.attrs["data-role"] for b in bands][:2] == ["upper", "lower1"]
    assert len(bands) == len(_tars()) + 2  # container layer, init layer, the image's
    assert not dom.find(None, id="no-events") and dom.by_id("timeline")
    bars = {b.attrs["data-path"]: b for b in dom.find("rect", "copyup")}
    assert int(bars["/root/saved.txt"].attrs["data-bytes"]) == _lower_size("/root/saved.txt")
    summary = dom.by_id("copyup-summary")
    assert int(summary.attrs["data-bytes"]) == sum(int(b.attrs["data-bytes"]) for b in bars.values())
    assert "1 whiteouts" in summary.all_text()  # rm /somefile.txt
    logged = json.loads(cli(world, "world", "log", "ran", "--json").output)
    assert int(summary.attrs["data-count"]) == sum(r["kind"] == "copy_up" for r in logged)
    cmd = next(r for r in dom.find("tr", "copyup-row") if "/root/saved.txt" in r.all_text())
    assert "`sh -c 'echo hi >> /root/saved.txt; rm /somefile.txt'` (docker run)" in cmd.all_text()
    assert bands[0].attrs["data-whiteouts"] == "1"
    row = _rows(dom)["/somefile.txt"]
    assert "removed" in row.classes and row.find("g", "whiteout", data_band="0")
    saved = _rows(dom)["/root/saved.txt"]
    assert saved.attrs["data-winner"] == "0"  # the container layer's copy wins
    assert bars["/root/saved.txt"].attrs["data-i"] == saved.attrs["data-i"]  # bar -> its row


def test_container_without_events_lists_its_upper_layer(world: str, tmp_path: Path) -> None:
    dom = _dom(_report(world, tmp_path / "web.html", "web"), tmp_path)  # created, never ran
    assert dom.by_id("no-events") and not dom.find(None, id="timeline")
    assert dom.by_id("upper-state-empty")


def test_the_page_is_self_contained_and_readable(image_page: Path, tmp_path: Path) -> None:
    html = image_page.read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe|object)\b|\b(src|href)=|@import|url\(", html, re.I)
    assert set(re.findall(r"https?://[^\"' )]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert len(html) < 1_500_000  # 200 explained paths of a 14-layer image
    png = tmp_path / "shot.png"
    screenshot(image_page.as_uri(), png, tmp_path / "profile")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


def test_max_paths_caps_rows_but_keeps_whiteouts(world: str, tmp_path: Path) -> None:
    dom = _dom(_report(world, tmp_path / "small.html", "dive-test", "--max-paths", "5"), tmp_path)
    rows = dom.find("g", "row")
    assert len(rows) == 5 and dom.by_id("path-count").attrs["data-total"] != "5"
    assert any(r.find("g", "whiteout") for r in rows)  # whiteouts come before plain names


@pytest.mark.parametrize("args,message", [
    ([], "give an IMAGE or CONTAINER"),
    (["nosuch"], "no such container or image"),
    (["dive-test", "--lowerdir", "/x"], "--lowerdir goes with --trace"),
])  # fmt: skip
def test_bad_input_is_one_line(world: str, tmp_path: Path, args: list[str], message: str) -> None:
    r = cli(world, "report", *args, "-o", str(tmp_path / "x.html"), check=False)
    assert r.exit_code == 1 and message in r.output and r.output.count("\n") == 1
    assert not (tmp_path / "x.html").exists()
