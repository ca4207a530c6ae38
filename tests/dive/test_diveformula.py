"""dive's figures, reproduced: its own unit test, its expectations on its fixture image, and
the sample image computed by hand with dive's rules (see overlaysim.dive.diveformula)."""

from __future__ import annotations

import pytest

from overlaysim.dive.diveformula import dive_figures, figures_from_tars
from overlaysim.dive.sources import from_archive
from overlaysim.dive.waste import honest_waste
from tests.dive.conftest import SAMPLE, build
from tests.docker.conftest import fixture_path


def test_dives_own_unit_case() -> None:
    # dive's filetree TestEfficiency: directories never named in a tar are not directories
    # to dive, so the whiteout of /etc/nginx counts 0 and the score is 0.75.
    f = figures_from_tars([
        [("/etc/nginx/nginx.conf", 2000, False), ("/etc/nginx/public", 3000, False)],
        [("/etc/nginx/nginx.conf", 5000, False), ("/etc/athing", 10000, False)],
        [("/etc/.wh.nginx", 0, False)],
    ])  # fmt: skip
    assert f.efficiency == 0.75
    assert f.inefficiencies == [("/etc/nginx/nginx.conf", 7000, 2)]


def test_dive_fixture_matches_dives_expectations() -> None:
    # wagoodman/dive dive/image/docker/image_archive_analysis_test.go, "docker-image"
    s = from_archive(fixture_path("dive/test-docker-image.tar"))
    f = dive_figures(s.layers)
    assert f.efficiency == 0.9844212134184309
    assert (f.size, f.user_size, f.wasted) == (1220598, 66237, 32025)
    assert f.user_wasted_percent == 0.4834911001404049
    # the same bytes, counted the honest way: 5 hidden copies of the 6405-byte file
    w = honest_waste(s.layers)
    assert (w.total, w.user_total, w.wasted) == (1220598, 66237, 5 * 6405)
    assert w.efficiency == pytest.approx(1 - 32025 / 1220598)
    # ...but not the same files: dive counts both copies of saved.txt and never counts
    # somefile2.txt, which disappeared with its directory (a path seen in one layer only)
    assert {p for p, _, _ in f.inefficiencies} == {
        "/root/example/somefile1.txt", "/root/example/somefile3.txt", "/root/saved.txt"}
    assert "/root/example/somefile2.txt" in {p for i in w.items for p in i.paths}


def test_sample_by_hand_with_dives_rules() -> None:
    _, layers = build(SAMPLE)
    f = dive_figures(layers)
    # leaves per path (sizes per layer): a/gone 200,0  a/keep 1000,10  c 300,300  s 64,64
    # h/f 5000,0 (its link h/g keeps the data, dive does not know)  d (whiteout of a dir:
    # the stacked dir's nodes 0+30+40)  d/x 30  d/y 40  h/g 0  o/old 7 (opacity ignored)  o/new 9
    assert f.layer_sizes == [6641, 373, 10]
    assert (f.size, f.user_size) == (7024, 383)
    assert f.wasted == 200 + 1010 + 600 + 128 + 5000
    assert f.efficiency == (0 + 10 + 300 + 64 + 0 + 70 + 30 + 40 + 0 + 7 + 9) / (
        200 + 1010 + 600 + 128 + 5000 + 70 + 30 + 40 + 0 + 7 + 9)
    assert f.user_wasted_percent == 6938 / 383
    # the honest figure on the same image (test_waste): 1641 bytes
    assert honest_waste(layers).wasted == 1641


def test_whiteout_of_a_missing_name_skips_the_rest_of_the_layer() -> None:
    # dive's visitor fails to find the name below and abandons the layer: /z is never seen,
    # and the missing path keeps a minimum of -1
    f = figures_from_tars([[("/a", 4, False)], [("/.wh.nope", 0, False), ("/z", 8, False)]])
    assert (f.efficiency, f.wasted) == ((4 - 1) / 4, 0)
