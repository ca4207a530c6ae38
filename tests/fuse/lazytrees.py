"""Real lower trees and manifests for the lazy-lower tests: a tree of many entries with every
kind of inode, and what a walk of it shows (without changing its atimes)."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOPS, SUBS, FILES = 20, 99, 100  # 20 + 1,980 dirs; 198,000 files in the leaves
TARGET = "g07/s012/f050"  # a file with content, 3 dirs deep
#: system.posix_acl_access: user::rwx user:1000:r-- group::r-x mask::r-x other::r--
ACL = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in (
    (1, 7, 0xFFFFFFFF), (2, 4, 1000), (4, 5, 0xFFFFFFFF), (0x10, 5, 0xFFFFFFFF),
    (0x20, 4, 0xFFFFFFFF)))  # fmt: skip


def content(i: int) -> bytes:
    return f"file {i}\n".encode() * (1 + i % 7) if i % 50 == 0 else b""


def build(low: Path, tops: int = TOPS, subs: int = SUBS, files: int = FILES) -> int:
    """The bulk (every 50th file has bytes) and ``rich/``; returns the number of entries."""
    n = 0
    for t in range(tops):
        for s in range(subs):
            d = low / f"g{t:02d}" / f"s{s:03d}"
            d.mkdir(parents=True)
            for f in range(files):
                i = (t * subs + s) * files + f
                fd = os.open(d / f"f{f:03d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                if data := content(i):
                    os.write(fd, data)
                os.close(fd)
            n += 1 + files
        n += 1
    return n + _rich(low / "rich", low)


def _rich(r: Path, low: Path) -> int:
    r.mkdir()
    (r / "hl1").write_bytes(os.urandom(300_000))
    os.link(r / "hl1", r / "hl2")
    os.link(r / "hl1", low / "g00" / "s000" / "hl3")  # a link group across dirs
    os.symlink("hl1", r / "short")
    os.symlink("x" * 200, r / "long")  # >= 128 bytes: a block on tmpfs
    os.mkfifo(r / "fifo")
    os.mknod(r / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(r / "blk", 0o640 | stat.S_IFBLK, os.makedev(7, 0))
    (r / "suid").write_bytes(b"#!/bin/sh\n")
    os.chmod(r / "suid", 0o4755)
    (r / "owned").write_bytes(b"mine\n")
    os.chown(r / "owned", 1000, 1001)
    (r / "sticky").mkdir(0o755)
    os.chmod(r / "sticky", 0o1777)
    os.chown(r / "sticky", 1234, 5678)
    (r / "sticky" / "inner").write_bytes(b"in\n")
    os.setxattr(r / "hl1", "user.note", b"hello")
    os.setxattr(r / "hl1", "trusted.tag", b"\x00\x01")
    os.setxattr(r / "sticky", "trusted.dir", b"d")
    os.setxattr(r / "owned", "security.label", b"lbl")
    os.setxattr(r / "owned", "system.posix_acl_access", ACL)
    os.utime(r / "owned", ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    return 1 + 12


def walk(top: str, listdir: Callable[[str], list[str]] = os.listdir,
         reader: Callable[[str], bytes] | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """path -> what lstat, xattrs, readlink and the bytes show; ``link`` is the inode's first
    path in sorted order (the hard-link group), its number left out."""
    out: dict[str, dict[str, Any]] = {}
    first: dict[int, str] = {}
    read = reader or (lambda p: Path(p).read_bytes())

    def one(path: str, rel: str) -> None:
        s = os.lstat(path)
        m = s.st_mode
        e: dict[str, Any] = {
            "mode": m, "uid": s.st_uid, "gid": s.st_gid, "size": s.st_size,
            "nlink": s.st_nlink, "rdev": s.st_rdev, "mtime": s.st_mtime_ns,
            "blocks": s.st_blocks,
            "xattrs": {n: os.getxattr(path, n, follow_symlinks=False)
                       for n in sorted(os.listxattr(path, follow_symlinks=False))},
        }  # fmt: skip
        if stat.S_ISLNK(m):
            e["target"] = os.readlink(path)
        if stat.S_ISREG(m):
            e["sha"] = hashlib.sha256(read(path)).hexdigest() if s.st_size else ""
        if not stat.S_ISDIR(m) and s.st_nlink > 1:
            e["link"] = first.setdefault(s.st_ino, rel)
        out[rel] = e
        if stat.S_ISDIR(m):
            for name in sorted(listdir(path)):
                one(os.path.join(path, name), f"{rel}/{name}")

    one(top, "")
    return out


def noatime_listdir(path: str) -> list[str]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def noatime_read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        with open(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def real_state(top: Path) -> dict[str, tuple[Any, ...]]:
    """Everything of the real tree, atimes and ctimes included, read without changing them."""
    man = walk(str(top), noatime_listdir, noatime_read)
    out = {}
    for rel, e in man.items():
        s = os.lstat(str(top) + rel)
        out[rel] = (repr(sorted(e.items())), s.st_ino, s.st_atime_ns, s.st_ctime_ns)
    return out
