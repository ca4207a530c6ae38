"""Process.fork/exit/set_cred: clone(2) semantics the trace replay relies on."""

from __future__ import annotations

import errno
import os

import pytest

from overlaysim import HostFS


def test_fork_copies_the_fd_table_but_shares_descriptions() -> None:
    fs = HostFS()
    with fs.open("/f", "wb") as f:
        f.write(b"0123456789")
    parent = fs.fork()
    fd = parent.os.open("/f", os.O_RDONLY)
    child = parent.fork()
    assert child.os.read(fd, 3) == b"012"
    assert parent.os.read(fd, 3) == b"345"  # one open file description, one offset
    child.os.close(fd)
    assert parent.os.read(fd, 1) == b"6"  # the parent's table is its own


def test_shared_fd_table_and_exit() -> None:
    fs = HostFS()
    fs.os.mkdir("/d")
    parent = fs.fork()
    thread = parent.fork(share_files=True)
    fd = thread.os.open("/d", os.O_RDONLY)
    assert parent.os.fstat(fd).st_ino == fs.os.stat("/d").st_ino
    thread.exit()
    parent.os.fstat(fd)  # still open: the parent shares the table
    parent.exit()
    with pytest.raises(OSError) as e:
        parent.os.fstat(fd)
    assert e.value.errno == errno.EBADF


def test_fork_keeps_cwd_and_root_and_set_cred_drops_privilege() -> None:
    fs = HostFS()
    fs.os.makedirs("/jail/sub")
    p = fs.fork()
    p.os.chroot("/jail")
    p.os.chdir("/sub")
    c = p.fork()
    assert c.os.getcwd() == "/sub"
    c.os.mkdir("/x")
    assert fs.os.path.isdir("/jail/x")
    c.set_cred(1000, 1000)
    with pytest.raises(PermissionError):
        c.os.mkdir("/y")
