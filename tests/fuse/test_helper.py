"""``mount.fuse.overlaysim``, called the way mount(8) calls helpers, and mount(8) itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]


def _layers(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    lower, upper, work, mnt = (tmp_path / n for n in ("l", "u", "w", "m"))
    for p in (lower, upper, work, mnt):
        p.mkdir()
    (lower / "f").write_text("from the lower\n")
    return lower, upper, work, mnt


def test_helper_linked_into_path_mounts_as_mount8_calls_it(tmp_path: Path) -> None:
    lower, upper, work, mnt = _layers(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(fh.HELPER, bindir / "mount.fuse.overlaysim")
    opts = f"rw,nosuid,lowerdir={lower},upperdir={upper},workdir={work},x-systemd.automount"
    res = fh.run([str(bindir / "mount.fuse.overlaysim"), "overlay", str(mnt), "-n", "-o", opts],
                 tmp_path / "run")  # fmt: skip
    assert (res.returncode, res.stderr) == (0, "")
    assert fh.fstype(mnt) == "fuse.overlaysim"
    line = next(x for x in Path("/proc/self/mounts").read_text().splitlines()
                if x.split()[1] == str(mnt))  # fmt: skip
    assert line.split()[0] == "overlay" and "nosuid" in line.split()[3]
    assert (mnt / "f").read_text() == "from the lower\n"
    (mnt / "f").write_text("changed\n")
    res = fh.run([fh.OVERLAYSIM, "umount", str(mnt)], tmp_path / "run")
    assert res.returncode == 0, res.stderr
    assert (upper / "f").read_text() == "changed\n"


def test_helper_fake_mount_and_refusals_use_mount8s_exit_codes(tmp_path: Path) -> None:
    lower, upper, work, mnt = _layers(tmp_path)
    ok = f"lowerdir={lower},upperdir={upper},workdir={work}"
    fake = fh.run([fh.HELPER, "overlay", str(mnt), "-f", "-o", ok], tmp_path / "run")
    assert fake.returncode == 0 and fh.fstype(mnt) is None
    bad = fh.run([fh.HELPER, "overlay", str(mnt), "-o", f"lowerdir={tmp_path}/nope"],
                 tmp_path / "run")  # fmt: skip
    assert bad.returncode == 32
    assert bad.stderr.strip() == f"mount.fuse.overlaysim: lowerdir {tmp_path}/nope: no such directory"
    usage = fh.run([fh.HELPER, "overlay"], tmp_path / "run")
    assert usage.returncode == 1 and "expected SOURCE and MOUNTPOINT" in usage.stderr


@pytest.mark.skipif(not os.path.exists("/sbin/mount.fuse") or shutil.which("unshare") is None,
                    reason="needs fuse3's /sbin/mount.fuse and unshare(1)")  # fmt: skip
def test_mount8_type_fuse_overlaysim(tmp_path: Path) -> None:
    """mount(8) runs helpers with a clean environment: with no /sbin/mount.fuse.overlaysim it
    runs fuse3's mount.fuse, which runs ``overlaysim SOURCE MOUNTPOINT -o ...`` from the
    default PATH. A private mount namespace puts ``overlaysim`` in /usr/local/sbin for it."""
    lower, upper, work, mnt = _layers(tmp_path)
    script = f"""
set -e
mount -t tmpfs tmpfs /usr/local/sbin
ln -s {fh.OVERLAYSIM} /usr/local/sbin/overlaysim
mount -t fuse.overlaysim overlay {mnt} -o lowerdir={lower},upperdir={upper},workdir={work}
grep " {mnt} fuse.overlaysim " /proc/self/mounts
echo through-mount8 > {mnt}/new
unset OVERLAYSIM_RUNTIME_DIR
overlaysim umount {mnt}
"""
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (upper / "new").read_text() == "through-mount8\n"
