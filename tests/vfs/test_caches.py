"""The lookup cache (namei.resolve) and the stat cache (MemInode.stc) never show stale state.

Random operations run on a HostFS; after each one every cached stat must equal a freshly
built one, and every path must resolve as the uncached walk resolves it.
"""

from __future__ import annotations

import errno
import os
import random

import pytest

from overlaysim import HostFS
from overlaysim.vfs import namei
from overlaysim.vfs.cred import Cred
from overlaysim.vfs.memfs import MemInode
from overlaysim.vfs.node import Node

NAMES = ["a", "b", "c"]


PATHS = sorted({"/t", *[f"/t/{a}" for a in NAMES], *[f"/t/{a}/{b}" for a in NAMES for b in NAMES],
                *[f"/t/{a}/{b}/{c}" for a in NAMES for b in NAMES for c in NAMES]})  # fmt: skip


def _all_nodes(fs: HostFS) -> list[MemInode]:
    seen: dict[int, MemInode] = {}
    todo: list[Node] = [m.root for m in fs.mount_table.order]
    todo += [f.node for f in fs.task.fds.values()]
    while todo:
        n = todo.pop()
        if not isinstance(n, MemInode) or id(n) in seen:
            continue
        seen[id(n)] = n
        if n.ftype == 0o040000:
            todo += n.entries.values()
    return list(seen.values())


def _uncached(fs: HostFS, path: str) -> tuple[object, object] | int:
    t = fs.task
    try:
        mnt, node, _ = namei.walk(t, *t.root, path.split("/"), False)
    except OSError as e:
        return e.errno or 0
    return mnt, node


def _check(fs: HostFS, paths: list[str] = PATHS) -> None:
    for n in _all_nodes(fs):
        fresh = os.stat_result(n.stat_fields(n.ino, n.sb.dev, n.nlink))
        assert n.stat() == fresh, (n.ino, n.stat(), fresh)
    for p in paths:
        want = _uncached(fs, p)
        try:
            got: tuple[object, object] | int = namei.resolve(fs.task, p, None, False)
        except OSError as e:
            got = e.errno or 0
        if isinstance(want, int) or isinstance(got, int):
            assert got == want, p
        else:
            assert got[0] is want[0] and got[1] is want[1], p
        try:
            s = fs.os.lstat(p)
        except OSError as e:
            assert e.errno == want, p
        else:
            assert not isinstance(want, int) and s == want[1].stat(), p  # type: ignore[union-attr]


def _pick(rnd: random.Random, top: str) -> str:
    depth = rnd.choices([1, 2, 3], [5, 4, 1])[0]
    return f"{top}/" + "/".join(rnd.choice(NAMES) for _ in range(depth))


def _op(fs: HostFS, rnd: random.Random, fds: list[int], tops: tuple[str, ...] = ("/t",)) -> None:
    o = fs.os
    p, q = _pick(rnd, rnd.choice(tops)), _pick(rnd, rnd.choice(tops))
    k = rnd.randrange(17)
    if k == 0:
        o.mkdir(p)
    elif k == 1:
        fds.append(o.open(p, os.O_CREAT | os.O_RDWR, 0o644))
    elif k == 2 and fds:
        o.write(rnd.choice(fds), b"x" * rnd.randrange(1, 9000))
    elif k == 3:
        o.truncate(p, rnd.randrange(0, 20000))
    elif k == 4:
        o.chmod(p, rnd.choice([0o755, 0o700, 0o000, 0o4755]))
    elif k == 5:
        o.chown(p, rnd.randrange(3), rnd.randrange(3), follow_symlinks=False)
    elif k == 6:
        o.utime(p, ns=(rnd.randrange(10**18), rnd.randrange(10**18)), follow_symlinks=False)
    elif k == 7:
        o.link(p, q)
    elif k == 8:
        o.unlink(p)
    elif k == 9:
        o.rmdir(p)
    elif k == 10:
        o.renameat2(p, q, rnd.choice([0, 0, 1, 2]))
    elif k == 11:
        o.symlink(rnd.choice(["/t/a", "b", "../c", "/nowhere"]), p)
    elif k == 12:
        o.setxattr(p, "user.k", b"v", follow_symlinks=False)
    elif k == 13:
        o.removexattr(p, "user.k", follow_symlinks=False)
    elif k == 14:
        fd = o.open(p, os.O_RDONLY)
        o.read(fd, 10)
        o.close(fd)
    elif k == 15:
        if rnd.random() < 0.5:
            fs.mount("tmpfs", p, "tmpfs")
        else:
            fs.umount(p)
    elif k == 16 and fds:
        o.ftruncate(fds.pop(rnd.randrange(len(fds))), rnd.randrange(5000))


@pytest.mark.parametrize("seed", range(6))
def test_random_ops_never_see_a_stale_cache(seed: int) -> None:
    fs = HostFS()
    for d in ("/t/a/a", "/t/b/c"):
        fs.os.makedirs(d)
    for f in ("/t/c", "/t/a/b", "/t/b/a"):
        fs.os.close(fs.os.open(f, os.O_CREAT | os.O_WRONLY, 0o644))
    rnd = random.Random(seed)
    fds: list[int] = []
    for _ in range(400):
        try:
            _op(fs, rnd, fds)
        except (OSError, NotImplementedError):
            pass
        _check(fs)


@pytest.mark.parametrize("seed", range(4))
def test_walks_into_an_overlay_resume_where_tmpfs_ends(seed: int) -> None:
    fs = HostFS()
    o = fs.os
    for d in ("/l/a/a", "/l/b", "/u", "/w", "/m", "/t/a"):
        o.makedirs(d)
    for f in ("/l/c", "/l/a/b"):
        o.close(o.open(f, os.O_CREAT | os.O_WRONLY, 0o644))
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    paths = [p.replace("/t", top, 1) for top in ("/m", "/l", "/u") for p in PATHS]
    rnd = random.Random(seed)
    fds: list[int] = []
    for _ in range(300):
        try:
            _op(fs, rnd, fds, ("/m", "/t"))  # layers change only through the overlay
        except (OSError, NotImplementedError):
            pass
        _check(fs, paths)


def test_cached_walk_rechecks_a_dropped_credential() -> None:
    fs = HostFS()
    fs.os.makedirs("/s/d")
    fs.os.chmod("/s", 0o700)
    assert fs.os.lstat("/s/d")  # cached as root
    fs.task.cred = Cred(1000, 1000)  # as runtime.process drops privileges
    with pytest.raises(PermissionError):
        fs.os.lstat("/s/d")
    with pytest.raises(PermissionError):
        fs.os.stat("/s/d")


def test_cached_walk_follows_chroot_mount_and_replacement() -> None:
    fs = HostFS()
    o = fs.os
    o.makedirs("/r/x/y")
    o.makedirs("/x")
    ino = o.lstat("/x").st_ino
    assert o.lstat("/r/x/y").st_ino != ino
    fs.mount("tmpfs", "/r/x", "tmpfs")
    with pytest.raises(FileNotFoundError):
        o.lstat("/r/x/y")
    fs.umount("/r/x")
    assert o.stat("/r/x/y")
    o.chroot("/r")
    assert o.lstat("/x").st_ino != ino
    o.rmdir("/x/y")
    o.symlink("/", "/x/y")
    assert o.stat("/x/y/x").st_ino == o.lstat("/x").st_ino


def test_stat_cache_sees_writes_through_any_fd_and_times() -> None:
    fs = HostFS()
    o = fs.os
    fd = o.open("/f", os.O_CREAT | os.O_RDWR, 0o644)
    s0 = o.lstat("/f")
    o.write(fd, b"abc")
    s1 = o.lstat("/f")
    assert (s0.st_size, s1.st_size) == (0, 3)
    o.lseek(fd, 0, os.SEEK_SET)
    o.read(fd, 3)
    assert o.fstat(fd) == o.lstat("/f")
    o.link("/f", "/g")
    assert o.lstat("/f").st_nlink == 2
    o.unlink("/g")
    assert o.lstat("/f").st_nlink == 1
    o.utime("/f", ns=(5, 7))
    s = o.stat("/f")
    assert (s.st_atime_ns, s.st_mtime_ns) == (5, 7)
    o.close(fd)
    with pytest.raises(OSError) as e:
        o.lstat("/f/")
    assert e.value.errno == errno.ENOTDIR
