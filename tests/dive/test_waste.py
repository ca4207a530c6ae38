"""The honest waste figure on a small image, every number computed by hand."""

from __future__ import annotations

import pytest

from overlaysim.dive import waste as W
from overlaysim.dive.stack import ADDED, MODIFIED, OPAQUE, REMOVED, UNMODIFIED, layer_marks
from tests.dive.conftest import SAMPLE, build


def test_sample_by_hand() -> None:
    _, layers = build(SAMPLE)
    w = W.honest_waste(layers)
    # stored: layer 0 = 1000+200+30+40+5000 (f and g: one inode)+7+300+64; 1 = 9+300+64; 2 = 10
    assert [layer.size for layer in layers] == [6641, 373, 10]
    assert (w.total, w.user_total) == (7024, 383)
    reasons = {(i.layer, tuple(i.paths)): (i.size, i.by_layer, i.reason) for i in w.items}
    assert reasons == {
        (0, ("/a/gone",)): (200, 1, W.DELETED),
        (0, ("/a/keep",)): (1000, 2, W.OVERWRITTEN),
        (0, ("/c",)): (300, 1, W.SAME),
        (0, ("/d/x",)): (30, 1, W.DELETED_DIR),
        (0, ("/d/y",)): (40, 1, W.DELETED_DIR),
        (0, ("/o/old",)): (7, 1, W.OPAQUE_DIR),
        (0, ("/s",)): (64, 1, W.METADATA),
    }  # /h/f was deleted but its hard link /h/g still shows the data: not waste
    assert w.wasted == 1641
    assert w.efficiency == pytest.approx(1 - 1641 / 7024)
    assert w.user_wasted_percent == pytest.approx(1641 / 383)
    assert w.per_layer() == [1641, 0, 0]
    assert w.by_reason()[W.DELETED_DIR] == 70


def test_hard_link_counted_once_and_wasted_when_all_names_go() -> None:
    _, layers = build([[("file", "/f", 5000, 0o644), ("link", "/f", "/g")],
                       [("whiteout", "/f")], [("whiteout", "/g")]])  # fmt: skip
    w = W.honest_waste(layers)
    assert layers[0].size == 5000
    assert [(i.paths, i.size, i.by_layer) for i in w.items] == [(["/f", "/g"], 5000, 1)]
    assert w.efficiency == 0.0


def test_replaced_by_directory_and_parent_replaced() -> None:
    _, layers = build([[("file", "/p", 11, 0o644), ("file", "/q/r", 13, 0o644)],
                       [("dir", "/p"), ("symlink", "/q", "/p")]])  # fmt: skip
    w = W.honest_waste(layers)
    assert {i.paths[0]: i.reason for i in w.items} == {"/p": W.REPLACED,
                                                       "/q/r": W.PARENT_REPLACED}  # fmt: skip
    assert w.wasted == 24


def test_no_layers_above_no_waste() -> None:
    _, layers = build([[("file", "/x", 3, 0o644)]])
    w = W.honest_waste(layers)
    assert (w.wasted, w.efficiency, w.user_wasted_percent) == (0, 1.0, None)


def test_marks_per_layer() -> None:
    _, layers = build(SAMPLE)
    marks = layer_marks(layers)
    assert marks[0]["/a/keep"] == ADDED
    assert marks[1]["/a/gone"] == REMOVED and marks[1]["/d"] == REMOVED
    assert marks[1]["/o"] == OPAQUE and marks[1]["/o/new"] == ADDED
    assert marks[1]["/c"] == MODIFIED and marks[1]["/a"] == UNMODIFIED
    assert marks[2]["/a/keep"] == MODIFIED
