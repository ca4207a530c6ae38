"""ApplyDiff, Diff, DiffSize and Changes: native (overlay whiteouts) and naive (tree compare)."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from overlaysim.errors import ImageError
from tests.image import tarbuild as tb
from tests.overlay2.conftest import HOME, Docker, demo_tars, read, whiteout_tar

A, B, C, D = "a" * 64, "b" * 64, "c" * 64, "d" * 64


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.getmembers()


def image(dk: Docker) -> None:
    """A = demo base; B = whiteouts + opaque dir on A."""
    base, _ = demo_tars()
    dk.drv.create(A)
    dk.drv.apply_diff(A, None, base)
    dk.drv.create(B, A)
    dk.drv.apply_diff(B, A, whiteout_tar())


def test_native_apply_writes_overlay_format(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    base, _ = demo_tars()
    drv.create(A)
    size_a = drv.apply_diff(A, None, base)
    assert size_a == drv.diff_size(A, None) > 0
    drv.create(B, A)
    size = drv.apply_diff(B, A, whiteout_tar())
    assert size == len(b"only me\n") + len(b"new file\n")  # directory.Size of diff/
    up = f"{HOME}/{B}/diff"
    for gone in ("etc/motd", "var/log"):
        st = fs.os.lstat(f"{up}/{gone}")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
        assert stat.S_IMODE(st.st_mode) == 0
    assert fs.os.getxattr(f"{up}/usr/share", "trusted.overlay.opaque") == b"y"
    assert stat.S_IMODE(fs.os.lstat(f"{up}/usr/share").st_mode) == 0o750
    assert fs.os.listdir(f"{up}/usr/share") == ["only"]
    st = fs.os.lstat(f"{up}/srv/new")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o640)
    assert not any(n.startswith(".wh.") for n in fs.os.listdir(f"{up}/etc"))


def test_merged_view_of_whiteouts_and_opaque_dir(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    image(dk)
    drv.create_read_write(C, B)
    m = drv.get(C)
    etc = fs.os.listdir(f"{m}/etc")
    assert "motd" not in etc and "passwd" in etc
    assert "log" not in fs.os.listdir(f"{m}/var")
    assert fs.os.listdir(f"{m}/usr/share") == ["only"]  # the lower usr/share is hidden
    assert "bin" in fs.os.listdir(f"{m}/usr")
    assert read(fs, f"{m}/srv/new") == b"new file\n"
    drv.put(C)


def test_native_diff_round_trip(dk: Docker) -> None:
    drv = dk.drv
    image(dk)
    tar = drv.diff(B, A)
    ms = members(tar)
    assert [m.name for m in ms] == [
        "etc", "etc/.wh.motd", "srv", "srv/new", "usr", "usr/share",
        "usr/share/.wh..wh..opq", "usr/share/only", "var", "var/.wh.log",
    ]  # fmt: skip
    wh = ms[1]
    assert wh.isreg() and wh.mode == 0o600 and wh.size == 0
    opq = ms[6]
    assert opq.isreg() and opq.mode == 0o750  # the directory's permissions
    # the same layer applied again gives the very same bytes
    drv.create(D, A)
    drv.apply_diff(D, A, tar)
    assert drv.diff(D, A) == tar


def test_container_changes_and_diff(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    image(dk)
    drv.create_read_write(C, B)
    m = drv.get(C)
    with fs.open(f"{m}/tmp/foo", "w") as f:
        f.write("foo")
    with fs.open(f"{m}/etc/hostname", "w") as f:
        f.write("changed\n")
    fs.os.unlink(f"{m}/etc/passwd")
    fs.os.rmdir(f"{m}/var/cache")
    fs.os.mkdir(f"{m}/var/cache")
    fs.os.chmod(f"{m}/usr/bin/ls", 0o700)
    fs.os.unlink(f"{m}/srv/new")
    drv.put(C)
    got = [str(c) for c in drv.changes(C, B)]
    assert set(got) == {
        "C /etc", "C /etc/hostname", "D /etc/passwd", "C /srv", "D /srv/new",
        "C /tmp", "A /tmp/foo", "C /usr", "C /usr/bin", "C /usr/bin/ls",
    }  # fmt: skip
    # parents come before their children; the root is never reported
    for i, line in enumerate(got):
        parent = line[2:].rsplit("/", 1)[0]
        if parent:
            assert f"C {parent}" in got[:i]
    # var/cache: rmdir + mkdir of an empty lower dir shows no change (dir times ignored)
    assert not any("/var" in x for x in got)
    assert not drv.is_mounted(C) and not drv.is_mounted(B)

    names = {m.name: m for m in members(drv.diff(C, B))}
    assert names["etc/.wh.passwd"].mode == 0o600
    assert names["srv/.wh.new"].isreg()
    assert names["var/cache/.wh..wh..opq"].isreg()  # opaque dir of the rmdir + mkdir
    assert names["usr/bin/ls"].mode == 0o700
    assert names["tmp/foo"].size == 3
    assert drv.diff_size(C, B) == len(b"changed\n") + 3 + len(
        read(fs, f"{HOME}/{C}/diff/usr/bin/ls")
    )


def test_naive_diff_when_parent_is_not_the_direct_parent(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    image(dk)
    assert not drv.is_parent(B, "") and drv.is_parent(B, A) and drv.is_parent(A, "")
    drv.create_read_write(C, B)
    m = drv.get(C)
    with fs.open(f"{m}/etc/issue", "w") as f:
        f.write("hi")
    drv.put(C)
    # against A (two layers down): the changes of B and C together, exported naively
    changes = {str(c) for c in drv.changes(C, A)}
    assert {"D /etc/motd", "D /var/log", "A /etc/issue", "A /srv/new", "C /usr/share"} <= changes
    ms = {m.name: m for m in members(drv.diff(C, A))}
    wh = ms["etc/.wh.motd"]
    assert (wh.mode, wh.uid, wh.gid, wh.size) == (0, 0, 0, 0)
    assert "usr/share/.wh..wh..opq" not in ms  # naive diffs never carry opaque markers
    assert ms["etc/issue"].size == 2
    assert drv.diff_size(C, A) == sum(
        x.size
        for x in ms.values()
        if x.isreg() and not x.name.rsplit("/", 1)[-1].startswith(".wh.")
    )
    raw = drv.diff(C, A)
    whiteout_header = raw[raw.index(b"etc/.wh.motd") :][:512]
    assert whiteout_header[156:157] == b"\0"


def test_naive_apply_goes_through_the_merged_view(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    image(dk)
    drv.create(D, B)
    # parent given as A: not D's direct parent, so the tar is applied through a mount of D
    layer = tb.tar(tb.dir_("etc/"), tb.member("etc/.wh.passwd"), tb.member("etc/x", b"x"))
    drv.apply_diff(D, A, layer)
    up = f"{HOME}/{D}/diff"
    st = fs.os.lstat(f"{up}/etc/passwd")  # the kernel's whiteout from the unlink
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert read(fs, f"{up}/etc/x") == b"x"
    assert not drv.is_mounted(D)


def test_hostile_layer_is_refused(dk: Docker) -> None:
    dk.drv.create(A)
    with pytest.raises(ImageError):
        dk.drv.apply_diff(A, None, tb.tar(tb.member(".wh..")))
    with pytest.raises(ImageError):
        dk.drv.apply_diff(A, None, tb.tar(tb.member("../escape", b"x")))
    assert dk.fs.os.listdir(f"{HOME}/{A}/diff") == []


def test_diff_of_a_registered_layer_is_the_layer_docker_wrote(dk: Docker) -> None:
    """Native Diff of an applied layer reproduces the tar byte for byte (same diff_id)."""
    base, app = demo_tars()
    l0 = dk.store.register(base)
    l1 = dk.store.register(app, l0.chain_id)
    assert dk.drv.diff(l0.cache_id) == base
    assert dk.drv.diff(l1.cache_id, l0.cache_id) == app
