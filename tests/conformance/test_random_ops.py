"""Differential fuzzing: random operation sequences on a real tmpfs dir and on HostFS.

Every operation's normalised result (value or errno) must match, and so must the final
tree (names, types, modes, sizes, contents, nlink, xattrs, symlink targets).  The name
space is tiny (a, b, c; depth 2) so that sequences collide often: renames over existing
names, links to removed files, rmdir of non-empty dirs, symlinks through symlinks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import diff, hostfs_unavailable, kernel_unavailable, mount_tmpfs, umount
from .recorder import Recorder

NAMES = ("a", "b", "c")
PATHS = NAMES + tuple(f"{d}/{n}" for d in NAMES for n in NAMES)
TARGETS = ("a", "b", "a/b", "../a", "c/..", "nowhere", "b/c/..", ".")
DATA = (b"", b"x", b"hello", b"\x00\xff" * 3)
XNAMES = ("user.a", "user.b", "trusted.t")
MODES = (0o644, 0o600, 0o755, 0o000, 0o4755, 0o1777)

OpFn = Callable[..., None]
OPS: dict[str, OpFn] = {}


def op(fn: OpFn) -> OpFn:
    """Register ``op_<name>``."""
    OPS[fn.__name__.removeprefix("op_")] = fn
    return fn


@op
def op_create(o: Any, r: str, obs: Recorder, key: str, p: str, data: bytes) -> None:
    def run() -> int:
        fd = o.open(f"{r}/{p}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            n: int = o.write(fd, data)
            return n
        finally:
            o.close(fd)

    obs.call(key, run)


@op
def op_append(o: Any, r: str, obs: Recorder, key: str, p: str, data: bytes) -> None:
    def run() -> int:
        fd = o.open(f"{r}/{p}", os.O_WRONLY | os.O_APPEND)
        try:
            n: int = o.write(fd, data)
            return n
        finally:
            o.close(fd)

    obs.call(key, run)


@op
def op_truncate(o: Any, r: str, obs: Recorder, key: str, p: str, n: int) -> None:
    obs.call(key, o.truncate, f"{r}/{p}", n)


@op
def op_mkdir(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    obs.call(key, o.mkdir, f"{r}/{p}")


@op
def op_rmdir(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    obs.call(key, o.rmdir, f"{r}/{p}")


@op
def op_unlink(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    obs.call(key, o.unlink, f"{r}/{p}")


@op
def op_rename(o: Any, r: str, obs: Recorder, key: str, src: str, dst: str) -> None:
    obs.call(key, o.rename, f"{r}/{src}", f"{r}/{dst}")


@op
def op_link(o: Any, r: str, obs: Recorder, key: str, src: str, dst: str) -> None:
    obs.call(key, o.link, f"{r}/{src}", f"{r}/{dst}", follow_symlinks=False)


@op
def op_symlink(o: Any, r: str, obs: Recorder, key: str, target: str, p: str) -> None:
    obs.call(key, o.symlink, target, f"{r}/{p}")


@op
def op_chmod(o: Any, r: str, obs: Recorder, key: str, p: str, mode: int) -> None:
    obs.call(key, o.chmod, f"{r}/{p}", mode)


@op
def op_setxattr(
    o: Any, r: str, obs: Recorder, key: str, p: str, name: str, value: bytes, flags: int
) -> None:
    obs.call(key, o.setxattr, f"{r}/{p}", name, value, flags)


@op
def op_listdir(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    obs.call(key, lambda: sorted(o.listdir(f"{r}/{p}")))


@op
def op_stat(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    obs.call(key + " lstat", o.lstat, f"{r}/{p}")
    obs.call(key + " stat", o.stat, f"{r}/{p}")


@op
def op_read(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    def run() -> bytes:
        fd = o.open(f"{r}/{p}", os.O_RDONLY)
        try:
            out: bytes = o.read(fd, 64)
            return out
        finally:
            o.close(fd)

    obs.call(key, run)


OPEN_FLAGS = (
    os.O_RDONLY,
    os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    os.O_RDWR | os.O_TRUNC,
    os.O_RDONLY | os.O_DIRECTORY,
    os.O_RDONLY | os.O_NOFOLLOW,
    os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW,
    os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY,
)


@op
def op_open(o: Any, r: str, obs: Recorder, key: str, p: str, flags: int) -> None:
    def run() -> Any:
        fd = o.open(f"{r}/{p}", flags, 0o640)
        try:
            return o.fstat(fd)
        finally:
            o.close(fd)

    obs.call(key, run)


@op
def op_removexattr(o: Any, r: str, obs: Recorder, key: str, p: str, name: str) -> None:
    obs.call(key, o.removexattr, f"{r}/{p}", name)


@op
def op_getxattrs(o: Any, r: str, obs: Recorder, key: str, p: str) -> None:
    def run() -> dict[str, bytes]:
        names = sorted(o.listxattr(f"{r}/{p}"))
        return {n: o.getxattr(f"{r}/{p}", n) for n in names}

    obs.call(key, run)


paths = st.sampled_from(PATHS)
ops = st.one_of(
    st.tuples(st.just("create"), st.tuples(paths, st.sampled_from(DATA))),
    st.tuples(st.just("append"), st.tuples(paths, st.sampled_from(DATA))),
    st.tuples(st.just("truncate"), st.tuples(paths, st.sampled_from((0, 3, 5000, -1)))),
    st.tuples(st.just("mkdir"), st.tuples(paths)),
    st.tuples(st.just("rmdir"), st.tuples(paths)),
    st.tuples(st.just("unlink"), st.tuples(paths)),
    st.tuples(st.just("rename"), st.tuples(paths, paths)),
    st.tuples(st.just("link"), st.tuples(paths, paths)),
    st.tuples(st.just("symlink"), st.tuples(st.sampled_from(TARGETS), paths)),
    st.tuples(st.just("chmod"), st.tuples(paths, st.sampled_from(MODES))),
    st.tuples(
        st.just("setxattr"),
        st.tuples(
            paths,
            st.sampled_from(XNAMES),
            st.sampled_from((b"", b"v")),
            st.sampled_from((0, os.XATTR_CREATE, os.XATTR_REPLACE)),
        ),
    ),
    st.tuples(st.just("open"), st.tuples(paths, st.sampled_from(OPEN_FLAGS))),
    st.tuples(st.just("removexattr"), st.tuples(paths, st.sampled_from(XNAMES))),
    st.tuples(st.just("getxattrs"), st.tuples(paths)),
    st.tuples(st.just("listdir"), st.tuples(paths)),
    st.tuples(st.just("stat"), st.tuples(paths)),
    st.tuples(st.just("read"), st.tuples(paths)),
)
programs = st.lists(ops, max_size=30)


def run_program(o: Any, box: str, program: list[tuple[str, tuple[Any, ...]]]) -> dict[str, Any]:
    """Apply ``program`` in ``box``/ex (``box`` an existing empty dir); return observations.

    Symlinks such as ``a -> ../a`` escape ``ex``, and O_CREAT through them creates files
    beside it, so the whole ``box`` is the sandbox and is what the final tree records.
    """
    obs = Recorder(box)
    root = box + "/ex"
    o.mkdir(root)
    for i, (name, args) in enumerate(program):
        OPS[name](o, root, obs, f"{i:02d} {name}{args!r}", *args)
    obs.tree("final tree", o, box)
    return obs.obs


@pytest.fixture(scope="module")
def kernel_dir() -> Iterator[str]:
    """A tmpfs mounted for this module; each example works in a fresh subdirectory."""
    reason = kernel_unavailable() or hostfs_unavailable()
    if reason is not None:
        pytest.skip(reason)
    top = tempfile.mkdtemp(prefix="osim-rand-")
    mount_tmpfs(top)
    try:
        yield top
    finally:
        umount(top)
        os.rmdir(top)


def hostfs_program(program: list[tuple[str, tuple[Any, ...]]]) -> dict[str, Any]:
    from overlaysim import HostFS

    fs = HostFS()
    fs.os.umask(0o022)
    box = "/srv/rand/box"
    fs.os.makedirs(box)
    fs.os.chmod(box, 0o755)
    return run_program(fs.os, box, program)


def kernel_program(top: str, program: list[tuple[str, tuple[Any, ...]]]) -> dict[str, Any]:
    box = top + "/box"
    old = os.umask(0o022)
    try:
        os.mkdir(box)
        os.chmod(box, 0o755)
        return run_program(os, box, program)
    finally:
        os.umask(old)
        shutil.rmtree(box)


@pytest.mark.kernel
@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=programs)
def test_random_ops_match_kernel(kernel_dir: str, program: list[tuple[str, tuple[Any, ...]]]) -> None:
    expected = kernel_program(kernel_dir, program)
    actual = hostfs_program(program)
    d = diff(expected, actual)
    assert not d, f"HostFS diverges from the kernel:\n{d}"


def test_program_runner_records_every_op(tmp_path: Any) -> None:
    """The runner itself (on the real fs, no mount needed): one key per op plus the tree."""
    root = str(tmp_path / "box")
    os.mkdir(root)
    program: list[tuple[str, tuple[Any, ...]]] = [
        ("mkdir", ("a",)),
        ("create", ("a/b", b"hello")),
        ("rmdir", ("a",)),
        ("stat", ("a/b",)),
    ]
    out = run_program(os, root, program)
    assert out["02 rmdir('a',)"] == ["errno", "ENOTEMPTY"]
    assert out["01 create('a/b', b'hello')"] == 5
    assert out["final tree"]["ex/a/b"]["data"] == "b:b'hello'"
    assert len(out) == 1 + 3 + 2  # stat records lstat and stat
