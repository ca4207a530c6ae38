"""The merged view the waste figure rests on, compared with a real ``mount -t overlay`` of
the same layer dirs (exported from the HostFS: whiteouts, opaque xattrs, hard links)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from overlaysim.dive.stack import merged
from overlaysim.dive.waste import honest_waste
from tests.dive.conftest import SAMPLE, Op, build
from tests.overlay.oharness import can_mount, kernel_side

pytestmark = pytest.mark.kernel

EXTRA: list[list[Op]] = [
    [("file", "/p", 11, 0o644), ("file", "/q/r", 13, 0o644), ("file", "/t/u/v", 5, 0o644)],
    [("dir", "/p"), ("file", "/p/in", 2, 0o644), ("symlink", "/q", "/p"), ("whiteout", "/t/u")],
    [("opaque", "/t"), ("file", "/t/w", 3, 0o644)],
]  # fmt: skip


def _kernel_tree(top: str) -> dict[str, tuple[str, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            kind = "dir" if stat.S_ISDIR(s.st_mode) else "symlink" if stat.S_ISLNK(s.st_mode) \
                else "file"  # fmt: skip
            out["/" + os.path.relpath(p, top)] = (kind, s.st_size if kind == "file" else 0)
    return out


@pytest.mark.parametrize("spec", [SAMPLE, EXTRA], ids=["sample", "extra"])
def test_merged_view_matches_the_kernel(spec: list[list[Op]]) -> None:
    reason = can_mount()
    if reason:
        pytest.skip(reason)
    fs, layers = build(spec)
    ours = {p: (n.entry.kind, n.entry.size) for p, n in merged(layers).walk()}
    with kernel_side() as k:
        dirs = []
        for layer in layers:
            real = k.p(f"l{layer.index}")
            fs.export_tree(layer.dir, real)
            dirs.append(real)
        k.dirs("m")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=" + ":".join(reversed(dirs)), k.p("m")], check=True)  # fmt: skip
        try:
            theirs = _kernel_tree(k.p("m"))
        finally:
            subprocess.run(["umount", k.p("m")], check=False)
    assert ours == theirs
    # a wasted inode has no name the kernel shows from its layer (the view matched above)
    view = merged(layers)
    for w in honest_waste(layers).items:
        for p in w.paths:
            node = view.get(p)
            assert node is None or node.layer != w.layer
