"""A rich machine to save, and a full observable view of a HostFS to compare machines by.

``view`` is deterministic given the machine's state (its reads update atimes the same way on
two identical machines), so two machines are equal iff their views are, taken at the same
point. It is JSON-able so that a separate process can print it.
"""

from __future__ import annotations

import os
import stat as st
from typing import Any

from overlaysim import HostFS, StepClock
from overlaysim.world import World

PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), ".venv", "bin",
                  "python")  # fmt: skip
T0 = 1_650_000_000_123_456_789


def build_rich() -> World:
    """Every file type, xattrs (trusted.* too), hard links, a whiteout, sparse and shared data,
    an overlay with a copy-up and a whiteout in its upper, a stacked overlay, tmpfs mounts."""
    fs = HostFS(StepClock(T0, 7_919))
    o = fs.os
    o.umask(0o022)
    for d in ("/data", "/data/sub", "/l1", "/l2", "/u", "/w", "/merged", "/mnt", "/mnt/t",
              "/mnt/t2", "/stack", "/stack/merged"):  # fmt: skip
        o.mkdir(d, 0o755)
    o.chmod("/data/sub", 0o2775)
    o.mkdir("/data/sticky", 0o1777)
    _write(fs, "/data/file", b"hello world\n" * 100, 0o644)
    _write(fs, "/data/empty", b"", 0o600)
    fd = o.open("/data/sparse", os.O_WRONLY | os.O_CREAT, 0o644)
    o.pwrite(fd, b"end", 3 * 4096 + 5)
    o.close(fd)
    o.symlink("file", "/data/short-link")
    o.symlink("/" + "x" * 200, "/data/long-link")
    o.mkfifo("/data/fifo", 0o640)
    o.mknod("/data/sock", st.S_IFSOCK | 0o755)
    o.mknod("/data/null", st.S_IFCHR | 0o666, os.makedev(1, 3))
    o.mknod("/data/sda", st.S_IFBLK | 0o660, os.makedev(8, 0))
    o.mknod("/data/whiteout", st.S_IFCHR | 0o000, 0)
    o.link("/data/file", "/data/sub/hard1")
    o.link("/data/file", "/data/hard2")
    o.mkdir(b"/data/caf\xc3\xa9-\xff", 0o700)  # a name that is not UTF-8
    o.setxattr("/data/file", "user.comment", b"a\0binary\xffvalue")
    o.setxattr("/data/sub", "trusted.overlay.opaque", b"y")
    o.setxattr("/data/sub", "security.selinux", b"system_u:object_r:tmp_t:s0\0")
    o.setxattr("/data/short-link", "trusted.link", b"on-a-symlink", follow_symlinks=False)
    o.chown("/data/sub/hard1", 1000, 1000)
    o.chown("/data/short-link", 33, 44, follow_symlinks=False)
    o.utime("/data/empty", ns=(1_000_000_001, 2_000_000_002))
    # the overlay: two lowers, a copy-up (shared data), a changed copy-up, whiteouts
    for layer, name in (("/l1", "a"), ("/l2", "b")):
        _write(fs, f"{layer}/{name}.txt", f"layer {name}\n".encode() * 50, 0o644)
        o.mkdir(f"{layer}/dir", 0o755)
        _write(fs, f"{layer}/dir/{name}-in-dir", name.encode(), 0o644)
    _write(fs, "/l1/gone.txt", b"to be deleted", 0o644)
    o.mkdir("/l1/lowdir", 0o755)
    fs.mount("overlay", "/merged", "overlay", "lowerdir=/l2:/l1,upperdir=/u,workdir=/w")
    o.chmod("/merged/a.txt", 0o600)  # copy-up sharing the lower data
    with fs.open("/merged/b.txt", "a") as f:  # copy-up, then changed
        f.write("appended\n")
    o.unlink("/merged/gone.txt")  # a whiteout in the upper
    o.unlink("/merged/dir/a-in-dir")  # a second one: linked to the same master
    o.setxattr("/merged/dir", "user.merged", b"1")
    o.mkdir("/merged/newdir", 0o750)
    fs.mount("tmpfs", "/merged/lowdir", "tmpfs", "mode=700")  # a mount on an overlay dir
    _write(fs, "/merged/lowdir/on-tmpfs", b"tmpfs inside an overlay", 0o644)
    # tmpfs mounts keep their own content
    fs.mount("tmpfs", "/mnt/t", "tmpfs", "mode=755,uid=0")
    _write(fs, "/mnt/t/keep", b"kept in tmpfs", 0o644)
    o.mkdir("/mnt/t/upper", 0o755)
    o.mkdir("/mnt/t/work", 0o755)
    fs.mount("tmpfs", "/mnt/t2", "tmpfs", "")
    fs.mount("tmpfs", "/mnt/t2", "tmpfs", "mode=711")  # stacked on the same mountpoint
    # a stacked overlay: an overlay directory as lower, the upper on tmpfs
    fs.mount("overlay", "/stack/merged", "overlay",
             "lowerdir=/merged/dir,upperdir=/mnt/t/upper,workdir=/mnt/t/work")  # fmt: skip
    o.unlink("/stack/merged/b-in-dir")
    _write(fs, "/stack/merged/new", b"on the stacked overlay", 0o644)
    o.lstat("/stack/merged/new")  # allocates the upper fs's pseudo st_dev (a saved counter)
    return World(fs, {"component": {"counter": 3}, "names": ["x", "y"]}, seed=42)


def _write(fs: HostFS, path: str, data: bytes, mode: int) -> None:
    with fs.open(path, "wb") as f:
        f.write(data)
    fs.os.chmod(path, mode)


def view(fs: HostFS, top: str = "/") -> dict[str, Any]:
    """lstat (every field), listing order, contents, link targets and xattrs of every path,
    following mounts (so merged views are included), plus the mount table."""
    o = fs.os
    entries: dict[str, Any] = {}
    stats: dict[str, list[Any]] = {}
    order: list[str] = []

    def walk(path: str) -> None:
        try:
            s = o.lstat(path)
        except OSError as e:  # listed but not there: a lower whiteout seen through an overlay
            stats[path] = ["error", e.errno]
            return
        stats[path] = [*list(s), s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns, s.st_blocks,
                       s.st_blksize, s.st_rdev]  # fmt: skip
        order.append(path)
        if st.S_ISDIR(s.st_mode):
            names = o.listdir(path)
            entries[path] = {"list": names}
            for name in names:
                walk(os.path.join(path, name))

    walk(top)
    for path in order:  # contents after every lstat: reads move atimes
        s = o.lstat(path)  # every path in ``order`` was found by the walk
        item = entries.setdefault(path, {})
        item["xattrs"] = {
            n: o.getxattr(path, n, follow_symlinks=False).hex()
            for n in o.listxattr(path, follow_symlinks=False)
        }
        if st.S_ISREG(s.st_mode):
            with fs.open(path, "rb") as f:
                item["data"] = f.read().hex()
        elif st.S_ISLNK(s.st_mode):
            item["target"] = o.readlink(path)
    return {
        "stats": stats,
        "entries": entries,
        "order": order,
        "mounts": [m.line() for m in fs.mounts()],
    }


def stable(v: Any) -> Any:
    """A view as JSON would give it back (tuples become lists), to compare across processes."""
    import json

    return json.loads(json.dumps(v))


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
