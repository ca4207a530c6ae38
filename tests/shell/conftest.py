"""Fixtures: the same small tree on a real tmpfs and in a HostFS, and runners for both.

A real tmpfs (not the disk under /tmp) is the oracle because HostFS models tmpfs: directory
sizes (40 + 20 per entry), link counts and block counts then agree byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from overlaysim import HostFS
from overlaysim.shell.executor import Shell

MTIME_NS = 1_577_934_245_123_456_789  # 2020-01-02 03:04:05.123456789 UTC: an "old" date
ENV = {"LC_ALL": "C", "TZ": "UTC", "COLUMNS": "80", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


@dataclass
class Pair:
    real: Path  # the tmpfs mount point; the tree is under real/t
    fs: HostFS  # the same tree imported at /r (so /r/t)

    def real_run(self, cmd: str) -> tuple[int, bytes, bytes]:
        p = subprocess.run(["sh", "-c", cmd], cwd=self.real, env=ENV, capture_output=True,
                           check=False)  # fmt: skip
        return p.returncode, p.stdout, p.stderr

    def sim_run(self, cmd: str) -> tuple[int, bytes, bytes]:
        return sim_shell(self.fs, "/r").run_capture(cmd)


def sim_shell(fs: HostFS, cwd: str = "/") -> Shell:
    return Shell(fs.os, mounts=fs.mounts, mount=fs.mount, umount=fs.umount, cwd=cwd, env=ENV)


def _set_times(path: Path) -> None:
    os.utime(path, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)


def build_tree(root: Path) -> None:
    """Every file type ls distinguishes, a setuid file, a hard link, foreign ids, a subdir."""
    t = root / "t"
    t.mkdir()
    (t / "a").write_bytes(b"hello\nworld\n")
    (t / "e").write_bytes(b"")
    os.symlink("a", t / "l")
    os.mkfifo(t / "p")
    os.mknod(t / "c", 0o20000 | 0o000, os.makedev(0, 0))  # a whiteout
    os.mknod(t / "n", 0o20000 | 0o666, os.makedev(1, 3))
    (t / "s").write_bytes(b"x")
    os.chmod(t / "s", 0o4755)
    (t / "o").write_bytes(b"owned\n")
    os.chown(t / "o", 1234, 5678)
    os.chmod(t / "o", 0o640)
    os.link(t / "a", t / "h")
    d = t / "d"
    d.mkdir()
    (d / "x").write_bytes(b"data " * 2000)
    (d / ".hidden").write_bytes(b"h\n")
    (d / "sub").mkdir()
    for p in [*sorted(t.rglob("*"), reverse=True), t, root]:
        _set_times(p)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a real tmpfs as the oracle")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(mnt)],
                       capture_output=True, check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a real tmpfs here: {r.stderr.decode().strip()}")
    try:
        build_tree(mnt)
        fs = HostFS()
        fs.import_tree(mnt, "/r")
        yield Pair(mnt, fs)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
