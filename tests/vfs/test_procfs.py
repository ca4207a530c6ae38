"""/proc/mounts, /proc/self/mountinfo and /proc/filesystems of the simulated machine, checked
field by field against a real overlay mount of this machine's kernel (modulo mount ids and
device numbers), and the files' behaviour as a reader meets it (cat, grep, a container)."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from overlaysim import HostFS
from overlaysim.testing import kernel as K
from overlaysim.vfs import fstypes
from overlaysim.vfs.procfs import mangle, split_options
from overlaysim.world import World, load_world, save_world
from tests.worldcli import demo_web

CAN_MOUNT, WHY = K.can_mount()
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason=WHY)


def _sim_read(fs: HostFS, path: str) -> str:
    with fs.open(path) as f:
        return str(f.read())


def _line_at(text: str, mountpoint: str, mounts: bool) -> list[str]:
    """The fields of the (topmost) line for ``mountpoint`` in a mounts or mountinfo text."""
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split(" ")
        if (fields[1] if mounts else fields[4]) == mangle(mountpoint):
            found = fields
    assert found, f"{mountpoint} not in:\n{text}"
    return found


def _comparable(fields: list[str]) -> dict[str, object]:
    """A mountinfo line without what differs between two machines (ids, device numbers,
    optional propagation fields: the test's mounts are private on both sides)."""
    head, tail = fields[: fields.index("-")], fields[fields.index("-") + 1 :]
    return {"root": head[3], "mountpoint": head[4], "mount_options": head[5],
            "type": tail[0], "source": tail[1], "super_options": tail[2]}  # fmt: skip


# (layer dirs to make, mount target, overlay data) with {b} the base directory
CASES = [
    (["lo w1", "l,2", "u", "w", "m"], "m",
     r"lowerdir={b}/lo w1:{b}/l\,2,upperdir={b}/u,workdir={b}/w"),
    (["l1", "l2", "m p"], "m p", "lowerdir={b}/l1:{b}/l2"),
    (["l1", "u", "w", "m"], "m",
     "lowerdir={b}/l1,upperdir={b}/u,workdir={b}/w,index=on,redirect_dir=on"),
    (["l1", "l2", "u", "w", "m"], "m",
     "lowerdir={b}/l1:{b}/l2,upperdir={b}/u,workdir={b}/w,uuid=off,metacopy=on,redirect_dir=on"),
    (["l\\x", "u", "w", "m"], "m", "lowerdir={b}/l\\\\x,upperdir={b}/u,workdir={b}/w,volatile"),
    # "ro" in the data string (mount(2) without MS_RDONLY): only the superblock is read-only
    (["l1", "u", "w", "m"], "m", "ro,lowerdir={b}/l1,upperdir={b}/u,workdir={b}/w"),
    # a superblock flag: before the mount flags in /proc/mounts, after the "-" in mountinfo
    (["l1", "l2", "m"], "m", "lowerdir={b}/l1:{b}/l2,sync,dirsync"),
]  # fmt: skip


@needs_mount
@pytest.mark.parametrize(("dirs", "target", "data"), CASES, ids=[c[2].split(",")[0] for c in CASES])
def test_mountinfo_and_mounts_lines_match_the_kernel(
    tmp_path: Path, dirs: list[str], target: str, data: str
) -> None:
    base = str(tmp_path)
    opts = data.format(b=base)
    for d in dirs:
        os.mkdir(os.path.join(base, d))
    where = os.path.join(base, target)
    K.mount("overlay", where, "overlay", opts)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            real_info = _line_at(f.read(), where, mounts=False)
        with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as f:
            real_mounts = _line_at(f.read(), where, mounts=True)
    finally:
        K.umount(where)
    fs = World.new().fs
    for d in dirs:
        fs.os.makedirs(os.path.join(base, d))
    fs.mount("overlay", where, "overlay", opts)
    sim_info = _line_at(_sim_read(fs, "/proc/self/mountinfo"), where, mounts=False)
    assert _comparable(sim_info) == _comparable(real_info)
    assert re.fullmatch(r"\d+:\d+", sim_info[2]) and int(sim_info[0]) != int(sim_info[1])
    assert _line_at(_sim_read(fs, "/proc/mounts"), where, mounts=True) == real_mounts


@needs_mount
def test_tmpfs_and_proc_lines_match_the_kernel(tmp_path: Path) -> None:
    """The other types the machine mounts: tmpfs with a mode, and proc as runc mounts it."""
    real: dict[str, dict[str, object]] = {}
    fs = World.new().fs
    for kind, data in (("tmpfs", "mode=755"), ("proc", "nosuid,nodev,noexec")):
        where = str(tmp_path / kind)
        os.mkdir(where)
        flags = 0x2 | 0x4 | 0x8 if kind == "proc" else 0  # MS_NOSUID | MS_NODEV | MS_NOEXEC
        K.mount(kind, where, kind, "mode=755" if kind == "tmpfs" else "", flags)
        try:
            with open("/proc/self/mountinfo", encoding="utf-8") as f:
                real[kind] = _comparable(_line_at(f.read(), where, mounts=False))
        finally:
            K.umount(where)
        fs.os.makedirs(where)
        fs.mount(kind, where, kind, data)
        sim = _comparable(_line_at(_sim_read(fs, "/proc/self/mountinfo"), where, mounts=False))
        if kind == "tmpfs":  # the host's tmpfs may add size=/nr_inodes= defaults: compare the rest
            sim_opts = str(sim.pop("super_options")).split(",")
            real_opts = str(real[kind].pop("super_options")).split(",")
            assert sim_opts[0] == real_opts[0] and "mode=755" in sim_opts and "mode=755" in real_opts
        assert sim == real[kind]


def test_filesystems_lists_the_registered_types_as_the_kernel_does() -> None:
    w = World.new()
    text = _sim_read(w.fs, "/proc/filesystems")
    names = [line.split("\t")[1] for line in text.splitlines()]
    assert names == fstypes.filesystems() and {"tmpfs", "proc", "overlay"} <= set(names)
    assert all(re.fullmatch(r"(nodev)?\t[\w.]+", line) for line in text.splitlines())
    with open("/proc/filesystems", encoding="ascii") as f:
        kernel = dict(reversed(line.split("\t")) for line in f.read().splitlines())
    for line in text.splitlines():
        nodev, name = line.split("\t")
        if name in kernel:
            assert kernel[name] == nodev, name


def test_proc_tree_as_ls_shows_it_and_refusals() -> None:
    w = World.new()
    o = w.fs.os
    assert sorted(o.listdir("/proc")) == ["filesystems", "mounts", "self"]
    assert o.readlink("/proc/mounts") == "self/mounts"
    assert sorted(o.listdir("/proc/self")) == ["mountinfo", "mounts"]
    s = o.stat("/proc/self/mountinfo")
    assert (stat.filemode(s.st_mode), s.st_size, s.st_dev) == ("-r--r--r--", 0, os.makedev(0, 21))
    assert stat.filemode(o.stat("/proc").st_mode) == "dr-xr-xr-x"
    fd = o.open("/proc/mounts", os.O_WRONLY | os.O_TRUNC)  # root may open it; writing fails
    try:
        with pytest.raises(OSError) as e:
            o.write(fd, b"x")
        assert e.value.errno == errno.EINVAL
    finally:
        o.close(fd)
    fd = o.open("/proc/filesystems", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            o.write(fd, b"x")
        assert e.value.errno == errno.EIO
    finally:
        o.close(fd)
    for call in (lambda: o.mkdir("/proc/x"), lambda: o.open("/proc/x", os.O_CREAT | os.O_WRONLY)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.ENOENT
    user = w.fs.as_user(1000, 1000).os
    with pytest.raises(PermissionError):
        user.open("/proc/self/mounts", os.O_WRONLY)
    assert "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0" in _sim_read(w.fs, "/proc/mounts")


def test_text_follows_the_mount_table_and_survives_a_save(tmp_path: Path) -> None:
    w = World.new()
    before = _sim_read(w.fs, "/proc/self/mountinfo")
    w.fs.os.makedirs("/srv/a b")
    w.fs.mount("tmpfs", "/srv/a b", "tmpfs", "mode=700")
    after = _sim_read(w.fs, "/proc/self/mountinfo")
    assert after.startswith(before) and r" /srv/a\040b rw,relatime - tmpfs" in after
    save_world(w, tmp_path / "w.world")
    again = load_world(tmp_path / "w.world")
    assert _sim_read(again.fs, "/proc/self/mountinfo") == after
    assert again.fs.os.stat("/proc/mounts").st_dev == os.makedev(0, 21)


def test_a_chrooted_process_sees_only_its_mounts() -> None:
    w = World.new()
    fs = w.fs
    for d in ("/c/l", "/c/u", "/c/w", "/c/m", "/elsewhere"):
        fs.os.makedirs(d)
    fs.mount("tmpfs", "/elsewhere", "tmpfs", "")
    fs.mount("overlay", "/c/m", "overlay", "lowerdir=/c/l,upperdir=/c/u,workdir=/c/w")
    fs.os.mkdir("/c/m/proc")
    p = fs.as_user(0, 0)
    p.os.chroot("/c/m")
    p.mount("proc", "/proc", "proc", "nosuid,nodev,noexec")
    text = _sim_read(p, "/proc/mounts")
    assert [line.split()[1] for line in text.splitlines()] == ["/", "/proc"]
    info = [line.split() for line in _sim_read(p, "/proc/self/mountinfo").splitlines()]
    assert info[1][1] == info[0][0]  # proc's parent is the overlay
    assert "/elsewhere" in _sim_read(fs, "/proc/mounts")  # the host still sees everything


def test_split_options_orders_words_as_proc_namespace_does() -> None:
    assert split_options("rw,relatime,sync,lowerdir=/a,uuid=on") == (
        "rw", ["relatime"], ["sync"], ["lowerdir=/a", "uuid=on"])  # fmt: skip
    assert split_options("ro") == ("ro", [], [], [])


def test_cat_grep_in_the_shell_and_in_a_container(tmp_path: Path) -> None:
    run = demo_web(tmp_path)
    host = run("sh", "-c", "grep overlay /proc/mounts; grep -c proc /proc/self/mountinfo")
    overlay_line, count = host.splitlines()
    assert overlay_line.startswith("overlay /var/lib/docker/overlay2/") and count == "1"
    inside = run("docker", "exec", "web", "cat", "/proc/mounts").splitlines()
    assert inside[0].startswith("overlay / overlay rw,relatime,lowerdir=")
    assert inside[1] == "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0"
    info = run("docker", "exec", "web", "cat", "/proc/self/mountinfo").splitlines()
    assert [line.split()[4] for line in info] == ["/", "/proc"]
    # the container's proc lives in its own namespace: the host's table never lists it
    assert run("sh", "-c", "grep -c ' proc ' /proc/mounts").strip() == "1"
