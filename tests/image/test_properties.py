"""Property tests: arbitrary bytes and mutated real archives raise only our typed errors."""

from __future__ import annotations

import io
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim import HostFS
from overlaysim.errors import OverlaySimError
from overlaysim.image.formats import open_archive
from overlaysim.image.importer import import_image
from overlaysim.image.layer import parse_layer
from overlaysim.image.limits import Limits
from overlaysim.image.verify import verify_image
from tests.image import tarbuild as tb
from tests.image.conftest import fixture_path
from tests.image.helpers import image_of

LIMITS = Limits(max_layer_bytes=8 << 20, max_entries=2000, max_json_bytes=1 << 20)
FAST = settings(
    max_examples=int(os.environ.get("OVS_FUZZ_EXAMPLES", "80")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _typed(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except OverlaySimError:
        return None


def _import(layers: list[bytes], strict: bool) -> None:
    src, im = image_of(layers)
    o = HostFS().os
    _typed(lambda: import_image(o, src, im, "/img", how="both", strict=strict, limits=LIMITS))
    # success or typed failure; either way nothing is left half-written on failure
    assert o.listdir("/") in ([], ["img"])


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_as_a_layer(data: bytes) -> None:
    _typed(lambda: parse_layer(io.BytesIO(data), LIMITS, strict=False))
    _import([data], strict=False)


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_as_an_archive(data: bytes) -> None:
    fd, path = tempfile.mkstemp()
    try:
        os.write(fd, data)
        os.close(fd)

        def go() -> None:
            arch, src = open_archive(path, LIMITS)
            try:
                for im in arch.images:
                    verify_image(src, im, LIMITS)
            finally:
                src.close()

        _typed(go)
    finally:
        os.unlink(path)


_BASE = tb.tar(
    tb.dir_("d/"),
    tb.member("d/f", b"hello"),
    tb.symlink("d/l", "f"),
    tb.hardlink("d/h", "d/f"),
    tb.pax({"path": "d/" + "p" * 120, "SCHILY.xattr.user.a": "b"}),
    tb.member("ignored", b"x"),
    tb.member("d/.wh.gone"),
    tb.member("d/.wh..wh..opq"),
    tb.gnu_long("d/" + "g" * 150),
    tb.member("x", b"long"),
)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 600))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[i : i + 12] = b"\x00" * 12
    return bytes(data)


@FAST
@given(mutated(_BASE), st.booleans())
def test_mutated_layers_import_or_fail_typed(data: bytes, strict: bool) -> None:
    _import([tb.tar(tb.member("d/keep", b"1")), data], strict=strict)


def _fixture_bytes(rel: str) -> bytes:
    with open(fixture_path(rel), "rb") as f:
        return f.read()


@settings(
    max_examples=int(os.environ.get("OVS_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_mutated_fixture_archives_fail_typed(data: st.DataObject) -> None:
    rel = data.draw(
        st.sampled_from(
            [
                "ggcr/whiteout_dir.tar",
                "ggcr/test_link.tar",
                "dive/test-oci-gzip-image.tar",
                "ggcr/hello-world-v25.tar",
            ]
        )
    )
    blob = data.draw(mutated(_fixture_bytes(rel)))
    fd, path = tempfile.mkstemp()
    try:
        os.write(fd, blob)
        os.close(fd)

        def go() -> None:
            arch, src = open_archive(path, LIMITS)
            try:
                for im in arch.images:
                    import_image(
                        HostFS().os, src, im, "/img", how="both", strict=False, limits=LIMITS
                    )
            finally:
                src.close()

        _typed(go)
    finally:
        os.unlink(path)
