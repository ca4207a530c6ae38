"""The kernel is the oracle: our overlay merge of natively applied layers equals a real mount.

Layers are applied with the real ``os`` into a private tmpfs, the layer directories are
mounted as overlay lowers, and the real merged tree is compared with ``overlay_merge``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from overlaysim.image.importer import import_image, merged_view
from overlaysim.image.tree import Node, snapshot
from tests.image import tarbuild as tb
from tests.image.conftest import open_fixture
from tests.image.helpers import image_of

pytestmark = pytest.mark.kernel


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def scratch() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("kernel oracle needs root (mount -t tmpfs / overlay)")
    d = tempfile.mkdtemp(prefix="ovs-kimg-")
    try:
        try:
            _mount("-t", "tmpfs", "-o", "size=256m", "tmpfs", d)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            pytest.skip(f"mount -t tmpfs not permitted here ({exc})")
        try:
            yield d
        finally:
            subprocess.run(["umount", "-l", d], check=False)
    finally:
        os.rmdir(d)


def _observable(tree: dict[str, Node]) -> dict[str, tuple[object, ...]]:
    return {
        p: (
            n.kind,
            n.mode,
            n.uid,
            n.gid,
            n.size,
            n.digest,
            n.link,
            n.rdev,
            n.xattrs,
            None if n.kind == "dir" else n.mtime_ns,
        )
        for p, n in tree.items()
        if p
    }


def _kernel_vs_model(scratch: str, src: object, im: object) -> None:
    res = import_image(os, src, im, os.path.join(scratch, "img"), how="native")  # type: ignore[arg-type]
    model = merged_view(os, res)
    merged = os.path.join(scratch, "merged")
    os.mkdir(merged)
    lowers = ":".join(reversed(res.layer_dirs))
    if len(res.layer_dirs) == 1:
        lowers = lowers + ":" + os.path.join(scratch, "empty")
        os.mkdir(os.path.join(scratch, "empty"))
    _mount("-t", "overlay", "overlay", "-o", f"lowerdir={lowers}", merged)
    try:
        real = snapshot(os, merged)
    finally:
        subprocess.run(["umount", merged], check=True)
    assert _observable(model) == _observable(real)


@pytest.mark.parametrize(
    "rel", ["dive/test-docker-image.tar", "ggcr/whiteout_dir.tar", "ggcr/overwritten_file.tar"]
)
def test_fixture_merge_matches_the_kernel(scratch: str, rel: str) -> None:
    arch, src = open_fixture(rel)
    try:
        _kernel_vs_model(scratch, src, arch.images[0])
    finally:
        src.close()


CASES = {
    "symlinked-parent": [
        tb.tar(tb.dir_("etc/"), tb.symlink("a", "/etc")),
        tb.tar(tb.member("a/passwd", b"pw")),
    ],
    "opaque-dir": [
        tb.tar(
            tb.dir_("d/"), tb.member("d/old", b"1"), tb.dir_("d/sub/"), tb.member("d/sub/x", b"x")
        ),
        tb.tar(tb.dir_("d/"), tb.member("d/.wh..wh..opq"), tb.member("d/new", b"2")),
    ],
    "root-opaque": [
        tb.tar(tb.member("old", b"1")),
        tb.tar(tb.member(".wh..wh..opq"), tb.member("new", b"2")),
    ],
    "char-0-0": [
        tb.tar(tb.member("f", b"data")),
        tb.tar(tb.header("f", typeflag=b"3", mode=0o600)),
    ],
    "dir-over-file": [tb.tar(tb.member("x", b"file")), tb.tar(tb.member("x/y", b"in dir"))],
    "file-over-dir": [
        tb.tar(tb.dir_("x/"), tb.member("x/y", b"1")),
        tb.tar(tb.member("x", b"file")),
    ],
    "whiteout-then-recreate": [
        tb.tar(tb.dir_("d/"), tb.member("d/a", b"1")),
        tb.tar(tb.member(".wh.d")),
        tb.tar(tb.dir_("d/"), tb.member("d/b", b"2")),
    ],
    "overlay-xattr-escaped": [
        tb.tar(tb.dir_("d/"), tb.member("d/low", b"1")),
        tb.tar(
            tb.pax({"SCHILY.xattr.trusted.overlay.opaque": "y"}),
            tb.dir_("d/"),
            tb.member("d/up", b"2"),
        ),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_edge_case_merge_matches_the_kernel(scratch: str, case: str) -> None:
    src, im = image_of(CASES[case])
    _kernel_vs_model(scratch, src, im)
