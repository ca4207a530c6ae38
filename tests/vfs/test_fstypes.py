"""Filesystem types are found through a registry, as the kernel's register_filesystem, and
rooms low in the design's picture never import the rooms above them."""

from __future__ import annotations

import ast
import errno
from pathlib import Path

import pytest

from overlaysim import HostFS
from overlaysim.vfs import fstypes
from overlaysim.vfs.hostfs import Process, mount_tmpfs
from overlaysim.vfs.mount import Mount

PKG = Path(__file__).resolve().parents[2] / "overlaysim"
# room -> rooms it may import (besides itself and the package's leaf modules)
ALLOWED = {
    "vfs": set(),
    "overlay": {"vfs"},
    "image": {"vfs", "overlay"},
}
LEAVES = {"overlaysim.errors", "overlaysim.events"}


def test_both_builtin_types_are_registered() -> None:
    assert {"tmpfs", "overlay"} <= set(fstypes.filesystems())


def test_unknown_type_is_enodev_and_mounts_nothing() -> None:
    fs = HostFS()
    fs.os.mkdir("/m")
    before = fs.mounts()
    with pytest.raises(OSError) as e:
        fs.mount("none", "/m", "ext4")
    assert e.value.errno == errno.ENODEV
    assert fs.mounts() == before


def test_a_registered_type_is_mountable_and_a_clash_is_ebusy() -> None:
    calls: list[tuple[str, str, str]] = []

    def mount_ramfs(proc: Process, source: str, data: str, target: str) -> Mount:
        calls.append((source, data, target))
        mnt = mount_tmpfs(proc, source, "", target)
        mnt.fstype = "ramfs"
        return mnt

    fstypes.register_filesystem("ramfs", mount_ramfs)
    try:
        fstypes.register_filesystem("ramfs", mount_ramfs)  # the same module again: accepted
        with pytest.raises(OSError) as e:
            fstypes.register_filesystem("ramfs", mount_tmpfs)
        assert e.value.errno == errno.EBUSY
        fs = HostFS()
        fs.os.mkdir("/r")
        fs.mount("src", "/r", "ramfs", "x=1")
        assert calls == [("src", "x=1", "/r")]
        assert fs.mounts()[-1].fstype == "ramfs"
        fs.os.mkdir("/r/d")
        assert fs.os.listdir("/r") == ["d"]
    finally:
        fstypes.unregister_filesystem("ramfs")
    with pytest.raises(OSError) as e:
        fstypes.unregister_filesystem("ramfs")
    assert e.value.errno == errno.EINVAL
    fs = HostFS()
    fs.os.mkdir("/r")
    with pytest.raises(OSError) as e:
        fs.mount("src", "/r", "ramfs")
    assert e.value.errno == errno.ENODEV


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("overlaysim.")}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_never_import_upward(room: str) -> None:
    bad = []
    for path in sorted((PKG / room).rglob("*.py")):
        for mod in _imports(path):
            parts = mod.split(".")
            if mod in LEAVES or parts[1] == room:
                continue
            if parts[1] in ALLOWED[room] or not (PKG / parts[1]).is_dir():
                continue
            bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not bad, "\n".join(bad)
