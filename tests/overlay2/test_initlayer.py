"""The <mount-id>-init layer (spec §1.6, §8.6)."""

from __future__ import annotations

import stat

from overlaysim.image.tree import snapshot
from tests.image import tarbuild as tb
from tests.overlay2.conftest import HOME, Docker, demo_tars

A, M = "a" * 64, "e" * 64


def test_init_layer_on_the_demo_image(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    drv.create(A)
    drv.apply_diff(A, None, demo_tars()[0])
    init = drv.create_init(M, A)
    assert init == f"{M}-init"
    tree = snapshot(fs.os, f"{HOME}/{init}/diff")
    kinds = {p: (n.kind, n.mode, n.uid, n.gid, n.size) for p, n in tree.items() if p}
    assert kinds == {
        ".dockerenv": ("file", 0o755, 0, 0, 0),
        "dev": ("dir", 0o755, 0, 0, 0),  # copied up from the image
        "dev/console": ("file", 0o755, 0, 0, 0),
        "dev/pts": ("dir", 0o755, 0, 0, 0),
        "dev/shm": ("dir", 0o755, 0, 0, 0),
        "etc": ("dir", 0o755, 0, 0, 0),
        "etc/hostname": ("file", 0o755, 0, 0, 0),  # the image's hostname is replaced
        "etc/hosts": ("file", 0o755, 0, 0, 0),
        "etc/mtab": ("symlink", 0o777, 0, 0, len("/proc/mounts")),
        "etc/resolv.conf": ("file", 0o755, 0, 0, 0),
    }
    assert tree["etc/mtab"].link == "/proc/mounts"
    # /proc and /sys exist in the image: nothing to do there
    # the init layer was mounted read-write once (work/work), then unmounted, then committed
    assert fs.os.listdir(f"{HOME}/{init}/work") == ["work"]
    assert not drv.is_mounted(init)
    assert "merged" not in fs.os.listdir(f"{HOME}/{init}")
    drv.create_read_write(M, init)
    assert fs.os.path.exists(f"{HOME}/{init}/committed")
    assert drv.lower(M)[0] == f"l/{drv.link(init)}"


def test_image_files_at_init_paths_are_replaced(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    layer = tb.tar(
        tb.dir_("etc/"),
        tb.member("etc/mtab", b"not a symlink"),
        tb.symlink("etc/resolv.conf", "../run/resolv.conf"),
        tb.member("proc", b"a file where a dir belongs"),
    )
    drv.create(A)
    drv.apply_diff(A, None, layer)
    init = drv.create_init(M, A)
    drv.create_read_write(M, init)
    m = drv.get(M)
    assert fs.os.readlink(f"{m}/etc/mtab") == "/proc/mounts"
    st = fs.os.lstat(f"{m}/etc/resolv.conf")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert stat.S_ISDIR(fs.os.lstat(f"{m}/proc").st_mode)
    drv.put(M)


def test_init_layer_of_a_scratch_container(dk: Docker) -> None:
    fs, drv = dk.fs, dk.drv
    init = drv.create_init(M, None)
    top = sorted(fs.os.listdir(f"{HOME}/{init}/diff"))
    assert top == [".dockerenv", "dev", "etc", "proc", "sys"]
    assert not fs.os.path.exists(f"{HOME}/{init}/lower")
    assert not fs.os.path.exists(f"{HOME}/{init}/work")
