"""The kernel is the oracle: the driver's layer dirs and its own option strings, mounted for real.

The HostFS ``overlay2`` home is exported to a private tmpfs, then every layer is mounted twice
with the option string the driver built: by overlaysim and by ``mount(2)`` (paths rewritten to
the tmpfs; the relative form is mounted from the home as dockerd does). The merged trees, the
shown mount options, and the upper dirs after the same writes must agree.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from overlaysim.image.tree import Node, compare, snapshot
from overlaysim.testing.kernel import can_mount, decode_octal, mount, umount
from tests.image import tarbuild as tb
from tests.overlay2.conftest import HOME, Docker, demo_tars, new_docker, whiteout_tar

pytestmark = pytest.mark.kernel
A, B, M = "a" * 64, "b" * 64, "e" * 64


@pytest.fixture
def scratch() -> Iterator[str]:
    ok, why = can_mount()
    if not ok:
        pytest.skip(f"kernel oracle unavailable: {why}")
    d = tempfile.mkdtemp(prefix="ovs-o2-")
    try:
        try:
            mount("tmpfs", d, "tmpfs", "size=256m")
        except OSError as exc:
            pytest.skip(f"mount -t tmpfs not permitted here ({exc})")
        try:
            yield d
        finally:
            subprocess.run(["umount", "-l", d], check=False)
    finally:
        os.rmdir(d)


def export(dk: Docker, scratch: str) -> str:
    assert not any(m.target.startswith(HOME + "/") for m in dk.fs.mounts()), "unmount first"
    real = os.path.join(scratch, "overlay2")
    dk.fs.export_tree(HOME, real, exact=True)
    return real


def kernel_mount(dk: Docker, id: str, real_home: str) -> str:
    """mount(2) the layer with the driver's own data string; returns the real merged dir."""
    md = dk.drv.mount_data(id)
    target = os.path.join(real_home, id, "merged")
    os.mkdir(target, 0o700)
    if md.relative:
        old = os.getcwd()
        os.chdir(real_home)  # moby's mountFrom
        try:
            mount("overlay", md.target, "overlay", md.data)
        finally:
            os.chdir(old)
    else:
        mount("overlay", target, "overlay", md.data.replace(HOME, real_home))
    return target


def proc_mounts_options(target: str) -> str | None:
    """The options column of the real /proc/self/mounts line of ``target``."""
    found = None
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if decode_octal(fields[1]) == target:
                found = decode_octal(fields[3])
    return found


def _no_handles(tree: dict[str, Node]) -> dict[str, Node]:
    """trusted.overlay.origin holds a file handle of the lower fs: compare presence only."""
    out = {}
    for p, n in tree.items():
        xs = tuple((k, b"<fh>" if k.endswith("overlay.origin") else v) for k, v in n.xattrs)
        out[p] = dataclasses.replace(n, xattrs=xs)
    return out


def same_tree(dk: Docker, sim: str, real: str) -> None:
    diffs = compare(_no_handles(snapshot(dk.fs.os, sim)), _no_handles(snapshot(os, real)))
    assert diffs == [], [str(d) for d in diffs[:10]]


def build_image_and_container(dk: Docker) -> None:
    drv = dk.drv
    drv.create(A)
    drv.apply_diff(A, None, demo_tars()[0])
    drv.create(B, A)
    drv.apply_diff(B, A, whiteout_tar())
    init = drv.create_init(M, B)
    drv.create_read_write(M, init)
    m = drv.get(M)
    with dk.fs.open(f"{m}/tmp/foo", "w") as f:
        f.write("foo")
    dk.fs.os.unlink(f"{m}/etc/passwd")
    dk.fs.os.rmdir(f"{m}/var/cache")
    dk.fs.os.mkdir(f"{m}/var/cache")
    drv.put(M)


def test_image_and_container_layers_match_the_kernel(scratch: str) -> None:
    dk = new_docker()
    build_image_and_container(dk)
    real_home = export(dk, scratch)
    mounted = []
    try:
        for id in (B, f"{M}-init", M):  # committed (ro) layers and the rw container layer
            real = kernel_mount(dk, id, real_home)
            mounted.append(real)
            sim = dk.drv.get(id)
            same_tree(dk, sim, real)
            options = proc_mounts_options(real)
            line = dk.drv.mount_line(id)
            assert options is not None and line is not None
            assert line.split()[3] == options.replace(real_home, HOME)
        # the same writes through both rw mounts leave the same upper dir
        for o, root in ((dk.fs.os, dk.drv.get(M)), (os, mounted[-1])):
            fd = o.open(f"{root}/etc/hostname", os.O_WRONLY | os.O_TRUNC)
            o.write(fd, b"k\n")
            o.close(fd)
            o.unlink(f"{root}/srv/new")
            o.rename(f"{root}/etc/group", f"{root}/tmp/group")
            o.mkdir(f"{root}/usr/share/more")
        same_tree(dk, f"{HOME}/{M}/diff", os.path.join(real_home, M, "diff"))
        same_tree(dk, dk.drv.get(M), mounted[-1])
    finally:
        for real in reversed(mounted):
            umount(real)


def test_relative_form_matches_the_kernel(scratch: str) -> None:
    dk = new_docker()
    prev = None
    for i in range(75):
        lid = f"{i + 1:064x}"
        dk.drv.create(lid, prev)
        files = [tb.member(f"f{i:02d}", str(i).encode())]
        if i % 10 == 9:  # now and then delete an earlier layer's file
            files.append(tb.member(f".wh.f{i - 5:02d}"))
        dk.drv.apply_diff(lid, prev, tb.tar(*files))
        prev = lid
    dk.drv.create_read_write(M, prev)
    assert dk.drv.mount_data(M).relative
    real_home = export(dk, scratch)
    real = kernel_mount(dk, M, real_home)
    try:
        sim = dk.drv.get(M)
        same_tree(dk, sim, real)
        options = proc_mounts_options(real)
        line = dk.drv.mount_line(M)
        assert options is not None and line is not None
        assert "lowerdir=l/" in options
        assert line.split()[3] == options
    finally:
        umount(real)
