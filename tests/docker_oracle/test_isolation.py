"""The oracles must not disturb each other: found by ``make fuzz`` while a real dockerd ran
(a container copies the mounts of its daemon's namespace when it is created, so an oracle
overlay mounted at that moment stayed alive after its umount and the kernel refused the next
mount of the same upper dir with EBUSY). The kernel oracle mounts in a namespace of its own,
and the private dockerd runs in one of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overlaysim.testing import kernel
from overlaysim.testing.dockerd.daemon import RealDockerd
from overlaysim.testing.dockerd.sides import RealSide
from tests.docker_oracle.conftest import empty, fixture_path

pytestmark = pytest.mark.dockerd


def _overlay(tmp: Path) -> tuple[str, str]:
    for d in ("l", "u", "w", "m"):
        (tmp / d).mkdir()
    # index=on: only then is an upper dir in use by another mount an error (EBUSY)
    return str(tmp / "m"), f"lowerdir={tmp}/l,upperdir={tmp}/u,workdir={tmp}/w,index=on"


def test_kernel_oracle_mounts_are_invisible_to_other_processes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mount(2) needs root")
    target = str(tmp_path)
    kernel.mount("tmpfs", target, "tmpfs")
    try:
        with open(f"/proc/{os.getpid()}/mounts") as f:
            assert any(line.split()[1] == target for line in f)
        with open("/proc/1/mounts") as f:  # the machine's own namespace
            assert not any(line.split()[1] == target for line in f)
    finally:
        kernel.umount(target)


def test_container_created_while_an_overlay_is_mounted_does_not_pin_it(
    dockerd: RealDockerd, tmp_path: Path
) -> None:
    real = RealSide(dockerd)
    empty(real)
    assert real.docker("load", "-i", fixture_path("dive/test-docker-image.tar")).code == 0
    merged, opts = _overlay(tmp_path)
    kernel.mount("overlay", merged, "overlay", opts)
    # a bind mount of the directory holding the overlay: the container gets a copy of every
    # mount below it that the daemon's namespace has (rbind, private propagation)
    r = real.docker("run", "-d", "--network", "none", "-v", f"{tmp_path}:/host", "dive-test",
                    "sleep", "100000")  # fmt: skip
    assert r.code == 0, r.error
    kernel.umount(merged)
    try:
        kernel.mount("overlay", merged, "overlay", opts)  # EBUSY if the container pinned it
        kernel.umount(merged)
    finally:
        empty(real)
