"""Run the hostile corpus: typed rejection or neutralisation, never an escape, never a leak.

Each layer case runs three ways: strict into a HostFS (expected error or acceptance, and an
unchanged filesystem on failure), lenient into a HostFS (neutralised with its findings), and
lenient into a real directory next to a sentinel directory (nothing may appear outside).
"""

from __future__ import annotations

import os
import time
import tracemalloc

import pytest

from overlaysim import HostFS
from overlaysim.errors import OverlaySimError
from overlaysim.image.formats import open_archive
from overlaysim.image.importer import import_image
from overlaysim.image.tree import snapshot
from overlaysim.image.verify import verify_image
from tests.image.helpers import image_of
from tests.image.hostile_ambiguity import AMBIGUOUS_IMAGE_CASES, AMBIGUOUS_LAYER_CASES
from tests.image.hostile_cases import IMAGE_CASES as BASE_IMAGE_CASES
from tests.image.hostile_cases import LAYER_CASES as BASE_LAYER_CASES
from tests.image.hostile_cases import ImageCase, LayerCase

LAYER_CASES = BASE_LAYER_CASES + AMBIGUOUS_LAYER_CASES
IMAGE_CASES = BASE_IMAGE_CASES + AMBIGUOUS_IMAGE_CASES


def test_corpus_is_large_and_covers_every_family() -> None:
    assert len(LAYER_CASES) + len(IMAGE_CASES) >= 60
    assert {c.family for c in LAYER_CASES} == {
        "names",
        "links",
        "whiteouts",
        "overlay",
        "metadata",
        "parser",
        "resources",
    }
    assert len({c.id for c in LAYER_CASES} | {c.id for c in IMAGE_CASES}) == len(LAYER_CASES) + len(
        IMAGE_CASES
    )


def _outside(tree: dict[str, object], target: str) -> dict[str, object]:
    t = target.strip("/")
    return {p: n for p, n in tree.items() if p and p != t and not p.startswith(t + "/")}


def _run(case: LayerCase, strict: bool, o: object, target: str) -> object:
    src, im = image_of(case.layers())
    return import_image(o, src, im, target, how="both", strict=strict, limits=case.limits)


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.id)
def test_layer_case_strict(case: LayerCase) -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/sentinel")
    before = snapshot(o, "/")
    t0 = time.monotonic()
    if case.strict is not None:
        with pytest.raises(case.strict) as info:
            _run(case, True, o, "/img")
        assert "\n" not in str(info.value)
        after = snapshot(o, "/")
        assert _outside(after, "/img") == _outside(before, "/img") and "img" not in after
    else:
        res = _run(case, True, o, "/img")
        assert case.codes <= res.findings.codes()  # type: ignore[attr-defined]
        assert _outside(snapshot(o, "/"), "/img") == _outside(before, "/img")
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.id)
def test_layer_case_lenient(case: LayerCase) -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/sentinel")
    before = snapshot(o, "/")
    if case.lenient is not None:
        with pytest.raises(case.lenient):
            _run(case, False, o, "/img")
        assert "img" not in snapshot(o, "/")
        return
    res = _run(case, False, o, "/img")
    assert case.codes <= res.findings.codes()  # type: ignore[attr-defined]
    assert _outside(snapshot(o, "/"), "/img") == _outside(before, "/img")


@pytest.mark.parametrize("case", [c for c in LAYER_CASES if c.lenient is None], ids=lambda c: c.id)
def test_layer_case_on_the_real_disk_stays_inside(
    case: LayerCase, tmpdir_root: str, need_root: None
) -> None:
    sentinel = os.path.join(tmpdir_root, "sentinel")
    os.mkdir(sentinel)
    os.mkdir(os.path.join(tmpdir_root, "root"))
    _run(case, False, os, os.path.join(tmpdir_root, "root", "img"))
    assert sorted(os.listdir(tmpdir_root)) == ["root", "sentinel"]
    assert os.listdir(sentinel) == [] and os.listdir(os.path.join(tmpdir_root, "root")) == ["img"]
    assert not os.path.lexists("/etc/evil")


@pytest.mark.parametrize("case", IMAGE_CASES, ids=lambda c: c.id)
def test_image_case(case: ImageCase, tmpdir_root: str) -> None:
    path = case.build(tmpdir_root)
    with pytest.raises(case.error):
        arch, src = open_archive(path, case.limits)
        try:
            for im in arch.images:
                verify_image(src, im, src.limits)
                import_image(HostFS().os, src, im, "/img")
        finally:
            src.close()


def test_gzip_bomb_stays_within_stated_memory() -> None:
    import gzip

    from overlaysim.errors import LimitExceeded
    from overlaysim.image.limits import Limits
    from tests.image import tarbuild as tb

    bomb = gzip.compress(tb.tar(tb.member("z", b"\x00" * (64 << 20))), mtime=0)
    src, im = image_of([bomb])
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded):
            import_image(HostFS().os, src, im, "/img", limits=Limits(max_layer_bytes=4 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 << 20  # a few MiB of budget plus one read buffer, not 64 MiB


def test_errors_are_all_typed() -> None:
    for case in LAYER_CASES:
        for exc in (case.strict, case.lenient):
            assert exc is None or issubclass(exc, OverlaySimError)
