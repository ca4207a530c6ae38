"""System calls through the FUSE mount answer as a kernel overlay does, for what the binding
had to get right: renameat2 flags, xattrs (trusted.* included), hard links and st_ino,
d_ino, the caller's credentials and umask, UTIME_OMIT, unlinked open files, fallocate.
O_TMPFILE is the one recorded divergence (libfuse's high-level API has no tmpfile)."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]

_libc = ctypes.CDLL(None, use_errno=True)
NOREPLACE, EXCHANGE, WHITEOUT = 1, 2, 4


def _renameat2(a: Path, b: Path, flags: int) -> str:
    if _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), flags) == 0:
        return "ok"
    return errno.errorcode[ctypes.get_errno()]


def _layers(base: Path) -> list[str]:
    low = base / "l"
    (low / "d").mkdir(parents=True)
    for name, text, mode in (("a", "a-content\n", 0o644), ("b", "b\n", 0o644),
                             ("c", "c\n", 0o644), ("e", "e\n", 0o666), ("priv", "p\n", 0o600),
                             ("d/inner", "i\n", 0o644), ("suid", "s\n", 0o4777),
                             ("t", "target\n", 0o644)):  # fmt: skip
        (low / name).write_text(text)
        os.chmod(low / name, mode)
    os.chmod(low, 0o755)
    return ["l"]


def _call(obs: dict[str, Any], key: str, fn: Callable[[], Any]) -> None:
    try:
        obs[key] = fn()
    except OSError as e:
        obs[key] = fh.errno_name(e)


def probe(m: Path) -> dict[str, Any]:
    obs: dict[str, Any] = {}
    ino_a = os.lstat(m / "c").st_ino
    with open(m / "c", "a") as f:  # copy-up
        f.write("more\n")
    obs["st_ino kept by copy-up"] = os.lstat(m / "c").st_ino == ino_a
    obs["noreplace"] = _renameat2(m / "a", m / "b", NOREPLACE)
    (m / "up").write_text("up\n")
    obs["exchange"] = _renameat2(m / "a", m / "up", EXCHANGE)
    obs["exchanged"] = ((m / "a").read_text(), (m / "up").read_text())
    obs["exchange with a lower dir"] = _renameat2(m / "a", m / "d", EXCHANGE)
    obs["whiteout"] = _renameat2(m / "b", m / "b2", WHITEOUT)
    _call(obs, "setxattr trusted", lambda: os.setxattr(m / "c", "trusted.t1", b"v"))
    _call(obs, "getxattr trusted", lambda: os.getxattr(m / "c", "trusted.t1"))
    _call(obs, "setxattr trusted.overlay", lambda: os.setxattr(m / "c", "trusted.overlay.x", b"1"))
    _call(obs, "getxattr origin", lambda: os.getxattr(m / "c", "trusted.overlay.origin"))
    _call(obs, "user create", lambda: os.setxattr(m / "c", "user.u", b"1", os.XATTR_CREATE))
    _call(obs, "user create again", lambda: os.setxattr(m / "c", "user.u", b"2", os.XATTR_CREATE))
    _call(obs, "user replace missing",
          lambda: os.setxattr(m / "c", "user.none", b"2", os.XATTR_REPLACE))  # fmt: skip
    _call(obs, "removexattr missing", lambda: os.removexattr(m / "c", "user.none"))
    obs["listxattr"] = sorted(os.listxattr(m / "c"))
    os.link(m / "c", m / "c2")
    s1, s2 = os.lstat(m / "c"), os.lstat(m / "c2")
    obs["hard link"] = (s1.st_ino == s2.st_ino, s1.st_nlink, s2.st_nlink)
    obs["d_ino == st_ino"] = all(e.inode() == os.lstat(e.path).st_ino for e in os.scandir(m))
    obs["d_type"] = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in os.scandir(m))
    old = os.umask(0o027)
    try:
        os.mkdir(m / "n", 0o777)
        os.close(os.open(m / "n/f", os.O_CREAT | os.O_WRONLY, 0o666))
    finally:
        os.umask(old)
    obs["umask"] = (oct(os.lstat(m / "n").st_mode), oct(os.lstat(m / "n/f").st_mode))
    def other(fn: Callable[[], Any]) -> Any:
        return fh.run_as(1000, 1000, fn, cwd=m)

    obs["other: read 0600"] = other(lambda: Path("priv").read_text())
    obs["other: mkdir in root's dir"] = other(lambda: os.mkdir("x"))
    obs["other: chmod root's file"] = other(lambda: os.chmod("e", 0o600))
    obs["other: write 0666"] = other(lambda: Path("e").write_text("o\n"))
    obs["other: write setuid 0777"] = other(lambda: Path("suid").write_text("w\n"))
    obs["setuid bit after another user's write"] = oct(os.lstat(m / "suid").st_mode)
    subprocess.run(["touch", "-m", "-d", "@1000000", str(m / "e")], check=True)
    subprocess.run(["touch", "-a", "-d", "@2000000", str(m / "e")], check=True)  # mtime OMIT
    st_e = os.lstat(m / "e")
    obs["utime omit"] = (int(st_e.st_atime), int(st_e.st_mtime))
    fd = os.open(m / "gone", os.O_CREAT | os.O_RDWR, 0o644)
    os.unlink(m / "gone")
    _call(obs, "unlinked: write", lambda: os.write(fd, b"zz"))
    _call(obs, "unlinked: ftruncate", lambda: os.ftruncate(fd, 1))
    _call(obs, "unlinked: fstat", lambda: (os.fstat(fd).st_size, os.fstat(fd).st_nlink))
    _call(obs, "unlinked: pread", lambda: os.pread(fd, 10, 0))
    obs["unlinked: listed"] = "gone" in os.listdir(m)
    os.close(fd)
    (m / "r2").write_text("new\n")
    fd = os.open(m / "t", os.O_RDONLY)  # a lower file, open while renamed over
    os.rename(m / "r2", m / "t")
    _call(obs, "renamed over while open", lambda: (os.pread(fd, 10, 0), os.fstat(fd).st_nlink))
    obs["renamed over: by name"] = (m / "t").read_text()
    os.close(fd)
    fd = os.open(m / "alloc", os.O_CREAT | os.O_RDWR, 0o644)
    os.posix_fallocate(fd, 0, 8192)
    obs["fallocate"] = os.fstat(fd).st_size
    os.close(fd)
    _call(obs, "O_TMPFILE", lambda: os.close(os.open(m, os.O_TMPFILE | os.O_RDWR, 0o600)))
    with tempfile.TemporaryFile(dir=m) as t:  # O_TMPFILE, else mkstemp + unlink + fstat
        t.write(b"temp")
        t.seek(0)
        obs["TemporaryFile"] = (t.read(), os.fstat(t.fileno()).st_nlink)
    obs["listing"] = sorted(os.listdir(m))
    return obs


def test_syscalls_through_fuse_answer_as_the_kernel_overlay(tmp_path: Path) -> None:
    layers = fh.Layers(tmp_path, _layers)
    box: dict[str, dict[str, Any]] = {}
    fh.on_kernel(layers, lambda m: box.setdefault("kernel", probe(m)))
    fh.on_fuse(layers, lambda m: box.setdefault("fuse", probe(m)), tmp_path / "run")
    kernel, fuse = box["kernel"], box["fuse"]
    # Recorded divergence: FUSE_TMPFILE reaches libfuse's high-level API, which has no
    # tmpfile operation, so the kernel answers EOPNOTSUPP (an overlay on tmpfs supports it).
    assert (kernel.pop("O_TMPFILE"), fuse.pop("O_TMPFILE")) == (None, errno.errorcode[errno.EOPNOTSUPP])
    assert {k: v for k, v in fuse.items() if v != kernel.get(k)} == {}
    assert kernel["noreplace"] == "EEXIST" and kernel["exchange"] == "ok"
    assert stat.S_IMODE(int(kernel["setuid bit after another user's write"], 8)) == 0o777


def test_the_upper_after_those_calls_matches_the_kernels(tmp_path: Path) -> None:
    layers = fh.Layers(tmp_path, _layers)
    k_upper, _ = fh.on_kernel(layers, lambda m: probe(m) and None)
    f_upper, _ = fh.on_fuse(layers, lambda m: probe(m) and None, tmp_path / "run")
    assert fh.diff(fh.upper_view(k_upper), fh.upper_view(f_upper)) == []

