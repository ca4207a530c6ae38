"""A mount served from a thread of this process while the Python API changes the same
HostFS: nothing the kernel could cache (names, negative lookups, attributes, pages at open)
is ever served stale, and st_ino/d_ino are the overlay's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overlaysim import HostFS
from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]


@pytest.fixture
def sim() -> HostFS:
    fs = HostFS()
    o = fs.os
    for d in ("/l", "/u", "/w", "/m"):
        o.mkdir(d)
    with fs.open("/l/a", "w") as f:
        f.write("aaaaa")
    with fs.open("/l/b", "w") as f:
        f.write("bbb")
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    return fs


def test_api_changes_are_never_served_stale(sim: HostFS, tmp_path: Path) -> None:
    from overlaysim.fuse.inproc import FuseMount

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with FuseMount(sim, "/m", str(mnt)) as m:
        assert (mnt / "a").stat().st_size == 5 and not (mnt / "c").exists()
        with m.locked():
            with sim.open("/m/a", "a") as f:
                f.write("-more")
            with sim.open("/m/c", "w") as f:
                f.write("new")
            sim.os.unlink("/m/b")
            sim.os.chmod("/m/a", 0o600)
        st = (mnt / "a").stat()
        assert (st.st_size, st.st_mode & 0o777) == (10, 0o600)  # attributes: not cached
        assert (mnt / "a").read_text() == "aaaaa-more"  # pages: dropped at open
        assert (mnt / "c").read_text() == "new"  # negative lookup: not cached
        assert not (mnt / "b").exists()  # positive lookup: not cached
        assert sorted(os.listdir(mnt)) == ["a", "c"]
        fd = os.open(mnt / "a", os.O_RDONLY)
        try:
            assert os.pread(fd, 100, 0) == b"aaaaa-more"
            with m.locked(), sim.open("/m/a", "w") as f:
                f.write("rewritten!")
            m.invalidate("a")  # an open file's cached pages go on request
            assert os.pread(fd, 100, 0) == b"rewritten!"
        finally:
            os.close(fd)
        with m.locked():
            inos = {e.name: e.inode() for e in sim.os.scandir("/m")}
            st_inos = {n: sim.os.lstat(f"/m/{n}").st_ino for n in inos}
        assert {e.name: e.inode() for e in os.scandir(mnt)} == inos == st_inos
        assert {n: os.lstat(mnt / n).st_ino for n in inos} == st_inos
    assert fh.fstype(mnt) is None
    assert sim.os.path.exists("/u/c")  # the upper is the simulation's
