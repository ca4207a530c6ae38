"""fs.os has the os module's surface: same parameter names and kinds, and nothing forwarded."""

from __future__ import annotations

import inspect
import os

import pytest

from overlaysim import HostFS

FUNCS = [
    "open", "read", "write", "pread", "pwrite", "lseek", "close", "fstat", "ftruncate", "dup",
    "dup2", "fsync", "stat", "lstat", "listdir", "scandir", "mkdir", "makedirs", "rmdir", "unlink",
    "remove", "rename", "replace", "link", "symlink", "readlink", "chmod", "chown", "lchown",
    "utime", "truncate", "mknod", "mkfifo", "access", "getxattr", "setxattr", "listxattr",
    "removexattr", "getcwd", "chdir", "fchdir", "walk", "chroot", "umask", "fchmod", "fchown",
    "removedirs", "renames", "statvfs",
]  # fmt: skip


def _params(fn: object) -> list[tuple[str, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", FUNCS)
def test_same_parameters_as_os(name: str) -> None:
    ours = getattr(HostFS().os, name)
    try:
        theirs = _params(getattr(os, name))
    except ValueError:
        pytest.skip(f"os.{name} has no introspectable signature on this Python")
    assert _params(ours) == theirs


def test_nothing_is_forwarded_to_the_host() -> None:
    o = HostFS().os
    for name in ("system", "popen", "execv", "fork", "kill", "copy_file_range", "sendfile"):
        assert not hasattr(o, name), name


def test_constants_are_the_hosts() -> None:
    o = HostFS().os
    for name in ("O_RDONLY", "O_CREAT", "O_NOFOLLOW", "XATTR_CREATE", "SEEK_DATA", "F_OK"):
        assert getattr(o, name) == getattr(os, name)
