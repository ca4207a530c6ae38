"""The lazy import (vfs/lazytree) against the eager one (vfs/hosttree) on the HostFS: the same
tree, listing order, sizes, link counts and bytes, also after changes made inside dirs not
read yet; inode numbers that do not depend on the order things are first looked at."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from overlaysim.vfs.hostfs import HostFS
from overlaysim.vfs.lazytree import import_lazy


def _tree(r: Path) -> None:
    (r / "a" / "b").mkdir(parents=True)
    (r / "c").mkdir()
    (r / "a" / "f").write_bytes(b"hello")
    (r / "a" / "empty").write_bytes(b"")
    os.link(r / "a" / "f", r / "c" / "g")
    os.symlink("a/f", r / "s")
    os.mkfifo(r / "p")
    (r / "c" / "x").write_bytes(b"x" * 10_000)
    os.setxattr(r / "a" / "f", "user.k", b"v")
    os.chmod(r / "a" / "b", 0o1750)


def _view(fs: HostFS, top: str) -> dict[str, Any]:
    o = fs.os
    out: dict[str, Any] = {}

    def one(p: str, rel: str) -> None:
        s = o.lstat(p)
        e: list[Any] = [s.st_mode, s.st_uid, s.st_size, s.st_nlink, s.st_blocks, s.st_mtime_ns,
                        sorted(o.listxattr(p, follow_symlinks=False))]  # fmt: skip
        if stat.S_ISREG(s.st_mode):
            with fs.open(p, "rb") as f:
                e.append(f.read())
        if stat.S_ISDIR(s.st_mode):
            names = o.listdir(p)
            e.append(names)  # in readdir order
            for n in names:
                one(f"{p}/{n}", f"{rel}/{n}")
        out[rel] = e

    one(top, "")
    return out


def _change(fs: HostFS) -> None:
    o = fs.os
    o.rename("/l/c/x", "/l/a/b/x")  # between two dirs not read yet
    o.link("/l/a/f", "/l/a/b/f2")
    o.unlink("/l/c/g")
    o.mkdir("/l/a/new")
    with fs.open("/l/a/f", "ab") as f:
        f.write(b" world")


def test_lazy_import_equals_eager_import_before_and_after_changes(tmp_path: Path) -> None:
    _tree(tmp_path / "r")
    now = 1_800_000_000_000_000_000  # one instant for every change on both sides
    eager, lazy = HostFS(clock=lambda: now), HostFS(clock=lambda: now)
    eager.import_tree(tmp_path / "r", "/l")
    tree = import_lazy(lazy, str(tmp_path / "r"), "/l")
    assert (tree.dirs_listed, tree.files_read) == (0, 0)
    _change(eager)
    _change(lazy)
    assert _view(lazy, "/l") == _view(eager, "/l")
    assert tree.files_read == 2  # the two files with bytes; the empty one is never opened


def test_inode_numbers_do_not_depend_on_the_order_of_first_access(tmp_path: Path) -> None:
    _tree(tmp_path / "r")
    one, two = HostFS(), HostFS()
    import_lazy(one, str(tmp_path / "r"), "/l")
    import_lazy(two, str(tmp_path / "r"), "/l")
    paths = ["/l/a/f", "/l/c/g", "/l/c/x", "/l/a/b", "/l/s"]
    first = {p: one.os.lstat(p).st_ino for p in paths}
    second = {p: two.os.lstat(p).st_ino for p in reversed(paths)}
    assert first == second
    assert first["/l/a/f"] == first["/l/c/g"]  # one inode per real one
    assert first["/l/a/f"] & ((1 << 48) - 1) == os.lstat(tmp_path / "r" / "a" / "f").st_ino
