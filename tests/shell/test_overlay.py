"""The shell over an overlay mount: whiteouts in the upper dir, mount/umount, mv's EXDEV path.

The ``mount`` texts were checked against util-linux 2.38 on a real overlay mount with the same
relative options (only the absolute mount point differs).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from overlaysim import HostFS
from overlaysim.demo_layers import build_app, build_base
from overlaysim.shell.executor import Shell
from tests.shell.conftest import ENV, sim_shell

OPTS = "lowerdir=/l2:/l1,upperdir=/u,workdir=/w"


def _mounted() -> tuple[HostFS, Shell]:
    fs = HostFS()
    build_base(fs.os, "/l1")
    build_app(fs.os, "/l2")
    sh = sim_shell(fs)
    assert sh.run_capture(f"mkdir /u /w /m && mount -t overlay overlay -o {OPTS} /m")[0] == 0
    return fs, sh


def test_whiteout_in_upper_lists_as_char_device_0_0() -> None:
    fs, sh = _mounted()
    assert sh.run_capture("rm /m/hello.sh")[0] == 0
    status, out, err = sh.run_capture("ls -l /u")
    assert (status, err) == (0, b"")
    lines = out.decode().splitlines()
    assert lines[0] == "total 0"
    white = next(line for line in lines if line.endswith(" hello.sh"))
    # two links: the whiteout and its master in work/work; size column shows "0, 0"
    assert white.startswith("c--------- 2 root root 0, 0 ")
    st = fs.os.lstat("/u/hello.sh")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert sh.run_capture("ls /m | grep -c hello")[1] == b"0\n"
    assert sh.run_capture("stat -c '%F %t,%T %h' /u/hello.sh")[1] == (
        b"character special file 0,0 2\n")  # fmt: skip


def test_copy_up_and_opaque_dir_through_the_shell() -> None:
    _fs, sh = _mounted()
    assert sh.run_capture("echo edited >> /m/etc/motd")[0] == 0
    assert sh.run_capture("cat /u/etc/motd")[1].endswith(b"edited\n")
    out = sh.run_capture("getfattr -d -m - /u/etc/motd")[1]
    assert out.startswith(b"# file: u/etc/motd\ntrusted.overlay.origin=0s")
    assert sh.run_capture("rm -r /m/etc/apt && mkdir /m/etc/apt && ls -A /m/etc/apt")[1] == b""
    assert sh.run_capture("getfattr -n trusted.overlay.opaque /u/etc/apt")[1] == (
        b'# file: u/etc/apt\ntrusted.overlay.opaque="y"\n\n')  # fmt: skip


def test_mv_falls_back_to_copy_on_exdev() -> None:
    fs, sh = _mounted()
    _status, out, err = sh.run_capture("mv -T /m/var/log /m/var/log.old; echo $?")
    assert (out, err) == (b"0\n", b"")
    assert sh.run_capture("ls /m/var")[1] == b"cache\nlib\nlog.old\n"
    # the lower directory is hidden by a whiteout, the copy lives in the upper layer
    assert stat.S_ISCHR(fs.os.lstat("/u/var/log").st_mode)
    assert fs.os.listdir("/u/var/log.old") == fs.os.listdir("/l1/var/log")


def test_mount_listing_and_umount() -> None:
    fs, sh = _mounted()
    out = sh.run_capture("mount -t overlay")[1].decode()
    assert out == f"overlay on /m type overlay (rw,relatime,{OPTS},uuid=on)\n"
    assert "tmpfs" not in out
    assert sh.run_capture("umount /m && ls /m && mount -t overlay") == (0, b"", b"")
    assert fs.mounts()[-1].target != "/m"


def test_mount_errors_like_util_linux() -> None:
    fs = HostFS()
    sh = sim_shell(fs)
    cmd = ("mkdir -p /mo/l /mo/u /mo/w /mo/m && cd /mo && "
           "mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m; echo $?; "
           "mount | grep /mo; mount -t overlay overlay -o lowerdir=nope,upperdir=u,workdir=w m;"
           " echo $?; mount -t overlay overlay -o bogus m; echo $?; "
           "mount -t overlay overlay -o lowerdir=l nope; echo $?; umount m; echo $?; "
           "umount m; echo $?; umount nope; echo $?; umount; echo $?; "
           "mount -t bogusfs x m; echo $?; mount x; echo $?")  # fmt: skip
    _status, out, err = sh.run_capture(cmd)
    assert out.decode() == (
        "0\noverlay on /mo/m type overlay (rw,relatime,lowerdir=l,upperdir=u,workdir=w,uuid=on)"
        "\n32\n32\n32\n0\n32\n32\n1\n32\n1\n")  # fmt: skip
    dmesg = "       dmesg(1) may have more information after failed mount system call.\n"
    assert err.decode() == (
        "mount: /mo/m: special device overlay does not exist.\n" + dmesg
        + "mount: /mo/m: wrong fs type, bad option, bad superblock on overlay, missing "
        "codepage or helper program, or other error.\n" + dmesg
        + "mount: nope: mount point does not exist.\n" + dmesg
        + "umount: m: not mounted.\numount: nope: no mount point specified.\n"
        "umount: bad usage\nTry 'umount --help' for more information.\n"
        "mount: /mo/m: unknown filesystem type 'bogusfs'.\n" + dmesg
        + "mount: x: can't find in /etc/fstab.\n")  # fmt: skip


def test_non_root_cannot_mount() -> None:
    fs = HostFS()
    fs.os.mkdir("/m")
    user = fs.as_user(1000, 1000)
    sh = Shell(user.os, mounts=user.mounts, mount=user.mount, umount=user.umount, cwd="/")
    status, _, err = sh.run_capture("mount -t tmpfs tmpfs /m")
    assert status == 32 and err == b"mount: /m: must be superuser to use mount.\n"
    assert sh.run_capture("umount /m")[2] == b"umount: /m: must be superuser to unmount.\n"


STEPS = "rm m/a && rm -r m/d && mkdir m/d"
CHECK = "ls -l u; stat -c '%A %h %U %G %t %T %F %n' u/*; ls -A m; cat m/b"


def _without_times(text: str) -> str:
    return re.sub(r"[A-Z][a-z]{2} [ 0-9]\d [ 0-9]\d:\d\d", "DATE", text)


def test_upper_dir_same_as_kernel_overlay(tmp_path: Path) -> None:
    """The kernel oracle: the same deletions on a real overlay (tmpfs layers) and on HostFS,
    then the upper dir listed by the real ``ls``/``stat`` and by the shell (times masked, as
    the whiteouts are created 'now' on both sides)."""
    mnt = tmp_path / "k"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a real tmpfs and overlay as the oracle")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(mnt)],
                      capture_output=True, check=False).returncode:  # fmt: skip
        pytest.skip("cannot mount a real tmpfs here")
    try:
        setup = "mkdir l u w m && echo hi > l/a && echo x > l/b && mkdir l/d && touch l/d/f"
        mount = "mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m"
        assert _real(mnt, f"{setup} && {mount}")[0] == 0, "kernel overlay mount failed"
        try:
            real = _real(mnt, f"{STEPS} && {CHECK}")
        finally:
            subprocess.run(["umount", str(mnt / "m")], check=False)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    fs = HostFS()
    fs.os.mkdir("/k")
    sh = sim_shell(fs, "/k")
    assert sh.run_capture(f"{setup} && {mount}")[0] == 0
    sim = sh.run_capture(f"{STEPS} && {CHECK}")
    assert (sim[0], _without_times(sim[1].decode()), sim[2]) == (
        real[0], _without_times(real[1].decode()), real[2])  # fmt: skip
    assert "c--------- 2 root root 0, 0 DATE a\n" in _without_times(sim[1].decode())


def _real(cwd: Path, cmd: str) -> tuple[int, bytes, bytes]:
    p = subprocess.run(["sh", "-c", cmd], cwd=cwd, env=ENV, capture_output=True, check=False)
    return p.returncode, p.stdout, p.stderr
