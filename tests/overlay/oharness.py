"""Run one overlay scenario on the kernel (`mount -t overlay` on a fresh tmpfs) and on HostFS.

A scenario builds its layers and applies operations through an os-like module, so the very
same code runs on both sides; observations are errno/return values, listings and normalised
trees of the merged, upper and work directories (section 10 of the kernel spec).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from overlaysim import HostFS
from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import umount as kumount

PRESENCE_ONLY = {"origin", "uuid", "upper"}
Obs = dict[str, Any]


class Side:
    """One implementation: ``o`` (os-like), ``base`` (an empty dir), mount/umount."""

    def __init__(self, o: Any, base: str) -> None:
        self.o = o
        self.base = base
        self.mnt = f"{base}/m"

    def run_as(self, uid: int, gid: int, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(os_like)`` with other credentials."""
        raise NotImplementedError

    def mount(self, opts: str) -> None:
        raise NotImplementedError

    def umount(self) -> None:
        raise NotImplementedError

    def mount_options(self) -> str:
        """The options field of the overlay's /proc/self/mounts line, base dir as ``<B>``."""
        raise NotImplementedError

    def tmpfs(self, *rels: str) -> None:
        """Mount a new tmpfs on each of these dirs (created), so that layers can live on
        filesystems of their own (xino); unmounted with the rest at the end."""
        raise NotImplementedError

    def mount_at(self, rel: str, opts: str) -> None:
        """Mount another overlay at ``rel`` (e.g. one to use as a lower layer)."""
        raise NotImplementedError

    def p(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def write(self, rel: str, data: str = "", mode: int = 0o644) -> None:
        path = self.p(rel)
        self.o.makedirs(os.path.dirname(path), exist_ok=True)
        fd = self.o.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        self.o.write(fd, data.encode())
        self.o.close(fd)
        self.o.chmod(path, mode)

    def dirs(self, *rels: str) -> None:
        for r in rels:
            self.o.makedirs(self.p(r), exist_ok=True)

    def std(self, lowers: str = "l1:l2", extra: str = "") -> str:
        """Standard options: the named lower dirs, u, w (created) and mount dir m."""
        self.dirs("u", "w", "m", *lowers.split(":"))
        low = ":".join(self.p(x) for x in lowers.split(":"))
        return f"lowerdir={low},upperdir={self.p('u')},workdir={self.p('w')}" + (
            f",{extra}" if extra else "")


class KernelSide(Side):
    def run_as(self, uid: int, gid: int, fn: Callable[[Any], Any]) -> Any:
        return _run_forked(uid, gid, fn)

    def mount(self, opts: str) -> None:
        kmount("overlay", self.mnt, "overlay", opts)  # mount(2): errors carry the errno

    def umount(self) -> None:
        kumount(self.mnt)

    def tmpfs(self, *rels: str) -> None:
        for rel in rels:
            self.dirs(rel)
            kmount("tmpfs", self.p(rel), "tmpfs", "")

    def mount_at(self, rel: str, opts: str) -> None:
        self.dirs(rel)
        kmount("overlay", self.p(rel), "overlay", opts)

    def mount_options(self) -> str:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            lines = [line.split() for line in f]
        opts = [fields[3] for fields in lines if fields[1] == self.mnt]
        return opts[-1].replace(self.base, "<B>")


def _run_forked(uid: int, gid: int, fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(os)`` in a forked child with other credentials; value or OSError comes back."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, run, report (value or errno) as JSON
        os.close(r)
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            out = {"ok": fn(os)}
        except OSError as e:
            out = {"errno": e.errno, "msg": e.strerror}
        except BaseException as e:
            out = {"errno": 0, "msg": repr(e)}
        os.write(w, json.dumps(out, default=str).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(data)
    if "errno" in res:
        raise OSError(res["errno"], res["msg"])
    return res["ok"]


class SimSide(Side):
    def run_as(self, uid: int, gid: int, fn: Callable[[Any], Any]) -> Any:
        return fn(self.fs.as_user(uid, gid).os)

    def __init__(self) -> None:
        self.fs = HostFS()
        super().__init__(self.fs.os, "/t")
        self.fs.os.makedirs("/t")

    def mount(self, opts: str) -> None:
        self.fs.mount("overlay", self.mnt, "overlay", opts)

    def umount(self) -> None:
        self.fs.umount(self.mnt)

    def tmpfs(self, *rels: str) -> None:
        for rel in rels:
            self.dirs(rel)
            self.fs.mount("tmpfs", self.p(rel), "tmpfs", "")

    def mount_at(self, rel: str, opts: str) -> None:
        self.dirs(rel)
        self.fs.mount("overlay", self.p(rel), "overlay", opts)

    def mount_options(self) -> str:
        opts = [m.options for m in self.fs.mounts() if m.target == self.mnt]
        return opts[-1].replace(self.base, "<B>")


class Rec:
    def __init__(self, side: Side) -> None:
        self.side = side
        self.obs: Obs = {}
        self.inos: dict[int, str] = {}

    def record(self, key: str, value: Any) -> None:
        assert key not in self.obs, key
        self.obs[key] = value

    def call(self, key: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            value = fn(*args, **kw)
        except OSError as e:
            self.record(key, ["errno", errno.errorcode.get(e.errno or 0, str(e.errno))])
            return None
        self.record(key, _norm(value))
        return value

    def ino(self, key: str, rel: str) -> None:
        """Record a label for the inode number, so relations (not values) are compared."""
        n = self.side.o.lstat(self.side.p(rel)).st_ino
        label = self.inos.setdefault(n, f"i{len(self.inos)}")
        self.record(key, label)

    def ls(self, key: str, rel: str) -> None:
        self.call(key, self.side.o.listdir, self.side.p(rel))

    def work(self, key: str) -> None:
        """The work dir's names with the kernel-wide temp counter normalised (#hex -> #N)."""
        names = self.side.o.listdir(self.side.p("w/work"))
        self.record(key, sorted(re.sub(r"^#[0-9a-f]+$", "#N", n) for n in names))

    def tree(self, key: str, rel: str, *, upper: bool = False) -> None:
        self.record(key, snapshot(self.side.o, self.side.p(rel), upper=upper))

    def read(self, key: str, rel: str) -> None:
        def go() -> str:
            fd = self.side.o.open(self.side.p(rel), os.O_RDONLY)
            try:
                return self.side.o.read(fd, 1 << 16).decode("utf-8", "replace")
            finally:
                self.side.o.close(fd)

        self.call(key, go)


def _norm(value: Any) -> Any:
    if isinstance(value, os.stat_result):
        return {"mode": oct(value.st_mode), "nlink": value.st_nlink, "size": value.st_size}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def snapshot(o: Any, top: str, *, upper: bool) -> list[list[Any]]:
    rows: list[list[Any]] = []

    def visit(path: str, rel: str) -> None:
        for name in sorted(o.listdir(path)):
            p, r = f"{path}/{name}", f"{rel}/{name}"
            try:
                s = o.lstat(p)
            except OSError as e:
                rows.append([r, "listed-but-" + errno.errorcode[e.errno or 0]])
                continue
            mode = s.st_mode
            row: list[Any] = [r, oct(mode)]
            if stat.S_ISREG(mode):
                fd = o.open(p, os.O_RDONLY)
                data = o.read(fd, 1 << 20)
                o.close(fd)
                row += [s.st_size, hashlib.sha1(data).hexdigest()[:8], s.st_nlink]
            elif stat.S_ISLNK(mode):
                row += [o.readlink(p)]
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                row += [s.st_rdev, s.st_nlink]
            row += [s.st_uid, s.st_gid, _xattrs(o, p, upper)]
            rows.append(row)
            if stat.S_ISDIR(mode):
                visit(p, r)

    visit(top, "")
    return rows


def _xattrs(o: Any, p: str, upper: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in sorted(o.listxattr(p, follow_symlinks=False)):
        short = name.split(".", 2)[-1] if name.startswith(("trusted.overlay.", "user.overlay.")) else None
        if upper and short in PRESENCE_ONLY:
            out[name] = "<present>"
        else:
            out[name] = o.getxattr(p, name, follow_symlinks=False).decode("utf-8", "replace")
    return out


@contextmanager
def kernel_side() -> Iterator[KernelSide]:
    d = tempfile.mkdtemp(prefix="osim-ovl-")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], check=True)
    try:
        yield KernelSide(os, d)
    finally:
        subprocess.run(f"grep -o ' {d}/[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount",
                       shell=True, check=False)  # fmt: skip
        subprocess.run(["umount", d], check=False)
        os.rmdir(d)


def can_mount() -> str | None:
    """None if kernel overlays can be mounted here, else the reason why not."""
    if os.geteuid() != 0:
        return "mounting a kernel overlay needs root (CI runs as root)"
    try:
        with kernel_side() as k:
            k.dirs("a", "b", "c", "m")
            k.mount(f"lowerdir={k.p('a')},upperdir={k.p('b')},workdir={k.p('c')}")
            k.umount()
    except (OSError, subprocess.CalledProcessError) as e:
        return f"mount -t overlay is not permitted here: {e}"
    return None


# --- file handles (nfs_export): name_to_handle_at / open_by_handle_at -------------------------
# Python's os has neither; on the kernel side they are called through libc (ctypes), on the
# simulator through its os look-alike. Both take and give ``struct file_handle`` as bytes.
MAX_HANDLE_SZ = 128


def name_to_handle_at(o: Any, dirfd: int | None, path: str, flags: int = 0,
                      handle_bytes: int = MAX_HANDLE_SZ) -> tuple[bytes, int]:  # fmt: skip
    if o is not os:
        return o.name_to_handle_at(dirfd, path, flags, handle_bytes)  # type: ignore[no-any-return]
    import ctypes
    import struct as _struct

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
    _struct.pack_into("<Ii", buf, 0, handle_bytes, 0)
    mount_id = ctypes.c_int(0)
    rc = libc.name_to_handle_at(-100 if dirfd is None else dirfd, os.fsencode(path), buf,
                                ctypes.byref(mount_id), flags)  # fmt: skip
    if rc != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    nbytes = _struct.unpack_from("<I", buf, 0)[0]
    return bytes(buf.raw[: 8 + nbytes]), mount_id.value


def open_by_handle_at(o: Any, mount_fd: int | None, handle: bytes, flags: int) -> int:
    if o is not os:
        return o.open_by_handle_at(mount_fd, handle, flags)  # type: ignore[no-any-return]
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    raw = bytes(handle)[: 8 + MAX_HANDLE_SZ]
    buf = ctypes.create_string_buffer(raw + bytes(8 + MAX_HANDLE_SZ - len(raw)), 8 + MAX_HANDLE_SZ)
    fd = libc.open_by_handle_at(-100 if mount_fd is None else mount_fd, buf, flags)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(fd)
