"""What the issue-11 classes turn into beyond "strict refuses": lenient trees read the way
Docker's applier reads them, whiteouts of nothing never show as devices, refusals are one
line on the command line and leave the state (an import target, a world file) untouched.

The corpus itself (strict/lenient/real-disk runs) is ``hostile_ambiguity.py`` via
``test_hostile.py``; the Docker observations are listed there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from overlaysim import HostFS
from overlaysim.image.export import rootfs_tar
from overlaysim.image.formats import open_archive
from overlaysim.image.importer import ImportResult, merged_view
from overlaysim.image.tree import Node, snapshot
from tests.image import tarbuild as tb
from tests.image.conftest import image_archive
from tests.image.helpers import import_both
from tests.image.hostile_ambiguity import BOTTOM_WHITEOUT, _layout

T, M, D, S, H = tb.tar, tb.member, tb.dir_, tb.symlink, tb.hardlink


def _trees(res: ImportResult, o: Any) -> tuple[dict[str, Node], dict[str, Node]]:
    assert res.rootfs is not None
    return merged_view(o, res), snapshot(o, res.rootfs)


def _shape(tree: dict[str, Node]) -> dict[str, tuple[str, int]]:
    return {p: (n.kind, n.mode) for p, n in tree.items() if p}


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        # Docker 20.10: 'f/' (a file) unpacks as the file 'f'; an empty name is skipped
        ([T(M("f/", b"x", mode=0o600))], {"f": ("file", 0o600)}),
        ([T(M("", b"x"), M("ok", b"y"))], {"ok": ("file", 0o644)}),
        # the applier lets the later entry win: the dir replaces the file ...
        ([T(M("x", b"1"), D("x/", mode=0o700))], {"x": ("dir", 0o700)}),
        # ... the file replaces the dir and what this layer put below it
        ([T(D("x/"), M("x/k", b"k"), M("x", b"1"))], {"x": ("file", 0o644)}),
        ([T(M("x", b"1", mode=0o644), M("x", b"2", mode=0o4755))], {"x": ("file", 0o4755)}),
        ([T(D("d/"), D("d/", mode=0o700))], {"d": ("dir", 0o700)}),
    ],
)
def test_lenient_reads_an_ambiguous_layer_the_way_dockers_applier_does(
    layers: list[bytes], expected: dict[str, tuple[str, int]]
) -> None:
    o, res = import_both(layers, strict=False)
    native, flat = _trees(res, o)
    assert _shape(native) == expected == _shape(flat)
    assert res.findings.codes() & {"slash-non-dir", "empty-name", "same-layer-conflict"}


def test_a_file_replaced_by_a_directory_in_the_next_layer_applies_both_ways() -> None:
    o, res = import_both([T(M("x", b"1")), T(D("x/"), M("x/k", b"k"))], strict=True)
    native, flat = _trees(res, o)
    assert _shape(native) == _shape(flat) == {"x": ("dir", 0o755), "x/k": ("file", 0o644)}


def test_whiteout_prefix_on_a_parent_is_dropped_and_hides_nothing() -> None:
    layers = [T(D("a/"), M("a/b", b"low")), T(M("a/.wh.b/c", b"x"), M("a/d", b"d"))]
    o, res = import_both(layers, strict=False)
    native, flat = _trees(res, o)
    assert sorted(native) == sorted(flat) == ["", "a", "a/b", "a/d"]
    assert "whiteout-in-parent" in res.findings.codes()


def test_aufs_hardlink_directory_is_skipped_and_its_links_become_copies() -> None:
    layer = T(D(".wh..wh.plnk/"), M(".wh..wh.plnk/123", b"data"), H("h", ".wh..wh.plnk/123"))
    o, res = import_both([layer], strict=True)
    native, flat = _trees(res, o)
    assert sorted(native) == sorted(flat) == ["", "h"]
    assert native["h"].digest == hashlib.sha256(b"data").hexdigest()


def test_media_type_of_the_same_kind_follows_the_descriptor(tmpdir_root: str) -> None:
    docker_v2 = "application/vnd.docker.distribution.manifest.v2+json"
    arch, src = open_archive(_layout(tmpdir_root, man_patch={"mediaType": docker_v2}))
    src.close()
    assert len(arch.images) == 1 and "media-type-mismatch" in arch.findings.codes()


# --- 3. a whiteout with nothing beneath it ---------------------------------------------------
def _is_whiteout(n: Node) -> bool:
    return n.kind == "char" and n.rdev == (0, 0)


@pytest.mark.parametrize("extra", [[], [T(M("x", b"x"))]], ids=["one-layer", "two-layers"])
def test_a_whiteout_of_nothing_stays_in_the_diff_dir_but_never_shows(extra: list[bytes]) -> None:
    o, res = import_both([BOTTOM_WHITEOUT, *extra], strict=True)
    bottom = snapshot(o, res.layer_dirs[0])
    assert _is_whiteout(bottom["top"]) and _is_whiteout(bottom["d/gone"])  # as Docker leaves it
    native, flat = _trees(res, o)
    for tree in (native, flat):
        assert not any(_is_whiteout(n) for n in tree.values())
        assert "top" not in tree and "d/gone" not in tree and "d/keep" in tree


def _tar_names(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: m.type for m in t.getmembers()}


def test_docker_export_of_a_container_over_a_bottom_whiteout() -> None:
    """The kernel (6.18, observed): in a dir only the bottom layer has, readdir lists the
    whiteout's name and lstat says ENOENT; Docker's export skips it and so do we."""
    fs = HostFS()
    o, res = import_both([BOTTOM_WHITEOUT, T(M("x", b"x"))], strict=True, o=fs.os)
    for d in ("/u", "/w", "/m"):
        o.mkdir(d)
    lowers = ":".join(reversed(res.layer_dirs))
    fs.mount("overlay", "/m", "overlay", f"lowerdir={lowers},upperdir=/u,workdir=/w")
    assert sorted(o.listdir("/m/d")) == ["gone", "keep"]
    with pytest.raises(FileNotFoundError):
        o.lstat("/m/d/gone")
    buf = io.BytesIO()
    rootfs_tar(o, "/m", buf)
    assert _tar_names(buf.getvalue()) == {"d": tarfile.DIRTYPE, "d/keep": b"0", "x": b"0"}


@pytest.fixture
def kernel_scratch() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("kernel oracle needs root (mount -t tmpfs / overlay)")
    d = tempfile.mkdtemp(prefix="ovs-wh-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], capture_output=True)
        if r.returncode:
            pytest.skip(f"mount -t tmpfs not permitted here ({r.stderr.decode().strip()})")
        try:
            yield d
        finally:
            subprocess.run(["umount", "-l", d], check=False)
    finally:
        os.rmdir(d)


@pytest.mark.kernel
def test_kernel_lists_but_hides_a_bottom_whiteout(kernel_scratch: str) -> None:
    _, res = import_both(
        [BOTTOM_WHITEOUT, T(M("x", b"x"))],
        strict=True,
        o=os,
        target=os.path.join(kernel_scratch, "img"),
    )
    m, u, w = (os.path.join(kernel_scratch, n) for n in ("m", "u", "w"))
    for d in (m, u, w):
        os.mkdir(d)
    lowers = ":".join(reversed(res.layer_dirs))
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lowers},upperdir={u},workdir={w}",
            m,
        ],
        check=True,
        capture_output=True,
    )
    try:
        assert sorted(os.listdir(os.path.join(m, "d"))) == ["gone", "keep"]
        assert "top" not in os.listdir(m)  # the root is merged: the whiteout is filtered
        with pytest.raises(FileNotFoundError):
            os.lstat(os.path.join(m, "d", "gone"))
        with pytest.raises(PermissionError):  # no overlay ever holds a char 0/0 device
            os.mknod(os.path.join(m, "dev00"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
        buf = io.BytesIO()
        rootfs_tar(os, m, buf)
        assert set(_tar_names(buf.getvalue())) == {"d", "d/keep", "x"}
    finally:
        subprocess.run(["umount", m], check=False)


# --- the command line: one line, non-zero, nothing left behind --------------------------------
@pytest.fixture(scope="module")
def main() -> Any:
    from overlaysim.cli import main as entry

    return entry


@pytest.mark.parametrize("n_extra", [0, 1], ids=["one-layer", "two-layers"])
def test_flatten_never_writes_a_whiteout_device(main: Any, tmpdir_root: str, n_extra: int) -> None:
    layers = [BOTTOM_WHITEOUT] + [T(M("x", b"x"))] * n_extra
    out = os.path.join(tmpdir_root, "rootfs.tar")
    r = CliRunner().invoke(
        main, ["image", "flatten", image_archive(tmpdir_root, layers), "-o", out]
    )
    assert r.exit_code == 0, r.output
    with open(out, "rb") as f:
        names = _tar_names(f.read())
    assert tarfile.CHRTYPE not in names.values() and "d/keep" in names and "d/gone" not in names


HOSTILE = {
    "slash": [T(M("f/", b"x"))],
    "duplicate": [T(M("base", b"b")), T(D("x/"), M("x", b"1"))],
    "wh-parent": [T(M("a/.wh.b/c", b"x"))],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("command", ["flatten", "bundle", "divergence"])
def test_refusals_are_one_line_and_write_nothing(
    main: Any, tmpdir_root: str, case: str, command: str
) -> None:
    src = image_archive(tmpdir_root, HOSTILE[case])
    out = os.path.join(tmpdir_root, "out")
    args = [command, src] + (["-o", out] if command != "divergence" else [])
    r = CliRunner().invoke(main, ["image", *args])
    assert r.exit_code == 1 and r.output.startswith("overlaysim: error:"), r.output
    assert r.output.count("\n") == 1 and not os.path.lexists(out)
    r = CliRunner().invoke(main, ["image", *args, "--lenient"])
    assert r.exit_code == 0, r.output


def test_a_refused_docker_load_leaves_the_world_as_it_was(main: Any, tmpdir_root: str) -> None:
    from overlaysim.demo_image import write_demo_archive

    world = os.path.join(tmpdir_root, "w.world")
    demo = os.path.join(tmpdir_root, "demo.tar")
    with open(demo, "wb") as f:
        write_demo_archive(f)
    runner = CliRunner(env={"OVERLAYSIM_WORLD": world})
    assert runner.invoke(main, ["docker", "load", "-i", demo]).exit_code == 0
    images = runner.invoke(main, ["docker", "images", "--format", "json"]).output
    with open(world, "rb") as f:
        before = f.read()
    for case, layers in sorted(HOSTILE.items()):
        src = image_archive(tmpdir_root, layers, name=f"{case}.tar", tags=["evil:1"])
        r = runner.invoke(main, ["docker", "load", "-i", src])
        assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1, r.output
        with open(world, "rb") as f:
            assert f.read() == before, case
    assert runner.invoke(main, ["docker", "images", "--format", "json"]).output == images
    assert json.loads(images.splitlines()[0])["Repository"] == "demo"


def test_a_refused_import_leaves_the_target_parent_untouched() -> None:
    fs = HostFS()
    o = fs.os
    o.mkdir("/srv")
    with fs.open("/srv/keep", "w") as f:
        f.write("k")
    before = snapshot(o, "/")
    for layers in HOSTILE.values():
        with pytest.raises(Exception) as info:
            import_both(layers, strict=True, o=o, target="/srv/img")
        assert type(info.value).__module__.startswith("overlaysim.")
        assert snapshot(o, "/") == before
