"""The lowers of ``overlaysim mount`` are read lazily: a lower of 200,000 entries in 2,000
dirs answers the first stat after listing its top dir only, a read reads only its file, a
full walk then shows what an eager import and a kernel overlay of the same lower show, and
the real lower is left exactly as it was, atimes included. A lower file that vanishes or
changes under the mount reads as EIO; the daemon keeps serving."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overlaysim.fuse import options, simulation
from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import umount as kumount
from overlaysim.vfs.hostfs import HostFS
from tests.fuse import fharness as H
from tests.fuse import lazytrees as T

WHY = H.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    base = tmp_path_factory.mktemp("lazy")
    kmount("tmpfs", str(base), "tmpfs", "")  # 200,000 files: 2 s here, 90 s on this ext4
    try:
        low = base / "lower"
        n = T.build(low)
        (base / "empty").mkdir()  # the kernel wants two lowers when there is no upper
        yield low, n
    finally:
        kumount(str(base))


def test_first_stat_and_one_read_list_and_read_only_what_they_need(
    big: tuple[Path, int], tmp_path: Path
) -> None:
    from overlaysim.fuse.inproc import FuseMount

    low, n = big
    assert n >= 200_000
    mnt = tmp_path / "m"
    mnt.mkdir()
    sim = simulation.build(options.parse(str(mnt), lowerdir=f"{low}:{low.parent}/empty"))
    tree = sim.lazy[0]
    # the mount looks up work/incompat/volatile in each layer: the top dir is listed
    assert (tree.dirs_listed, tree.files_read) == (1, 0)
    with FuseMount(sim.fs, sim.merged, str(mnt)):
        assert os.stat(mnt).st_nlink == 1  # merged from two dirs
        assert (tree.dirs_listed, tree.files_read) == (1, 0)  # nothing more
        want = T.content((7 * T.SUBS + 12) * T.FILES + 50)
        assert os.stat(mnt / T.TARGET).st_size == len(want) > 0
        assert (tree.dirs_listed, tree.files_read) == (3, 0)  # its two dirs; no byte read
        assert (mnt / T.TARGET).read_bytes() == want
        assert (tree.dirs_listed, tree.files_read) == (3, 1)  # that file only
    for t in sim.lazy:
        t.close()


def test_a_walk_shows_what_eager_import_and_kernel_show_and_the_lower_is_untouched(
    big: tuple[Path, int], tmp_path: Path
) -> None:
    low, n = big
    before = T.real_state(low)
    assert len(before) == n + 1
    mnt, runtime = tmp_path / "m", tmp_path / "rt"
    mnt.mkdir()
    runtime.mkdir()
    lowerdir = f"{low}:{low.parent}/empty"
    res = H.run([H.OVERLAYSIM, "mount", "--lowerdir", lowerdir, str(mnt)], runtime)
    assert res.returncode == 0, res.stderr
    try:
        fuse = T.walk(str(mnt))
    finally:
        res = H.run([H.OVERLAYSIM, "umount", str(mnt)], runtime)
    assert res.returncode == 0, res.stderr
    assert T.real_state(low) == before  # bytes, metadata, atimes, ctimes: all as they were

    eager = _eager(low)
    assert fuse.pop("") == {**eager.pop(""), "nlink": 1}  # the root is merged
    assert fuse == eager

    kmount("overlay", str(mnt), "overlay", f"lowerdir={lowerdir}")
    try:
        kernel = T.walk(str(mnt))
    finally:
        kumount(str(mnt))
    kernel.pop("")
    assert _fs_neutral(fuse) == _fs_neutral(kernel)
    assert fuse["/rich/hl2"]["link"] == fuse["/g00/s000/hl3"]["link"] == "/g00/s000/hl3"


def _eager(low: Path) -> dict[str, dict[str, Any]]:
    """The same walk over an eager import, on the HostFS (its ``os``)."""
    fs = HostFS()
    fs.import_tree(low, "/l")
    o = fs.os
    real_os = {k: getattr(os, k) for k in ("lstat", "listxattr", "getxattr", "readlink")}
    try:
        for k in real_os:
            setattr(os, k, getattr(o, k))

        def read(p: str) -> bytes:
            with fs.open(p, "rb") as f:
                data: bytes = f.read()
                return data

        return T.walk("/l", o.listdir, read)
    finally:
        for k, v in real_os.items():
            setattr(os, k, v)


def _fs_neutral(man: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Without what the backing fs decides (a dir's size, blocks): tmpfs vs the real fs."""
    out = {}
    for rel, e in man.items():
        e = {k: v for k, v in e.items() if k != "blocks"}
        if e["mode"] & 0o170000 == 0o040000:
            del e["size"]
        out[rel] = e
    return out


def test_lower_files_that_vanish_or_change_read_as_eio_and_the_daemon_serves_on(
    tmp_path: Path,
) -> None:
    low, mnt, runtime = tmp_path / "l", tmp_path / "m", tmp_path / "rt"
    for d in (low / "d", low / "e", low / "gone", mnt, runtime):
        d.mkdir(parents=True)
    for name in ("d/a", "d/b", "d/c", "d/keep", "e/x", "e/y", "gone/z"):
        (low / name).write_bytes(b"data of " + name.encode())
    res = H.run([H.OVERLAYSIM, "mount", "--lowerdir", str(low), "--scratch-upper", str(mnt)],
                runtime)  # fmt: skip
    assert res.returncode == 0, res.stderr
    try:
        assert sorted(os.listdir(mnt / "d")) == ["a", "b", "c", "keep"]  # listed: sizes known
        os.unlink(low / "d" / "a")
        (low / "d" / "b").write_bytes(b"rewritten, longer than before")
        os.unlink(low / "d" / "c")
        shutil.rmtree(low / "gone")
        os.unlink(low / "e" / "x")  # before its dir is listed: simply not there
        assert _errno(lambda: (mnt / "d" / "a").read_bytes()) == errno.EIO
        assert _errno(lambda: (mnt / "d" / "b").read_bytes()) == errno.EIO
        assert _errno(lambda: os.truncate(mnt / "d" / "c", 1)) == errno.EIO  # copy-up reads
        assert _errno(lambda: os.listdir(mnt / "gone")) == errno.EIO
        assert _errno(lambda: os.stat(mnt / "e" / "x")) == errno.ENOENT
        assert (mnt / "e" / "y").read_bytes() == b"data of e/y"
        assert (mnt / "d" / "keep").read_bytes() == b"data of d/keep"
        assert os.stat(mnt / "d" / "a").st_size == len(b"data of d/a")  # as listed
        assert H.record(mnt, runtime).alive()
    finally:
        res = H.run([H.OVERLAYSIM, "umount", str(mnt)], runtime)
    assert res.returncode == 0, res.stderr


def _errno(fn: Any) -> int | None:
    try:
        fn()
    except OSError as e:
        return e.errno
    return None
