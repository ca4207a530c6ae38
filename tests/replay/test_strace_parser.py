"""The strace text parser: every line shape strace 6.1 prints, real logs recorded here with
many flag combinations, and hostile input (binary, NUL, 10 MB lines) that must never raise."""

from __future__ import annotations

import gzip
import lzma
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim.errors import TraceError
from overlaysim.replay import strace as S
from overlaysim.replay.format import validate
from overlaysim.replay.strace import (
    StraceParser,
    open_trace_text,
    parse_strace,
    parse_strace_files,
)

W, CREAT, TRUNC, CLOEXEC = os.O_WRONLY, os.O_CREAT, os.O_TRUNC, os.O_CLOEXEC


def parse(lines: str | list[str], **kw: Any) -> tuple[list[dict[str, Any]], StraceParser]:
    p = StraceParser(**kw)
    text = lines.splitlines() if isinstance(lines, str) else lines
    return [validate(op) for op in p.parse(text)], p


def one(line: str) -> dict[str, Any]:
    ops, p = parse([line])
    assert len(ops) == 1, (ops, p.skipped)
    return ops[0]


def sub(got: dict[str, Any], **want: Any) -> None:
    assert {k: got.get(k, "<absent>") for k in want} == want, got


# --- one real line per call: (line, the op keys it must give) ------------------------------------
CALLS: list[tuple[str, dict[str, Any]]] = [
    ('openat(AT_FDCWD, "a.txt", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3',
     {"op": "open", "path": "a.txt", "flags": W | CREAT | TRUNC | CLOEXEC, "mode": 0o644,
      "ret": 3, "dirfd": "<absent>"}),
    ('openat(AT_FDCWD, "nonexistent", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
     {"op": "open", "flags": CLOEXEC, "ret": -1, "err": "ENOENT", "mode": "<absent>"}),
    ('openat2(AT_FDCWD, "o2.txt", {flags=O_RDWR|O_CREAT, mode=0640, resolve=RESOLVE_BENEATH}, 24)'
     " = 3", {"op": "open", "flags": os.O_RDWR | CREAT, "mode": 0o640, "resolve": 8}),
    ('open("/etc/x", O_RDONLY) = 4', {"op": "open", "path": "/etc/x", "flags": 0, "ret": 4}),
    ('creat("creat.txt", 0644)          = 4', {"op": "open", "flags": W | CREAT | TRUNC}),
    ("close(3)                          = 0", {"op": "close", "fd": 3, "ret": 0}),
    ("close_range(3, 4294967295, CLOSE_RANGE_CLOEXEC) = 0",
     {"op": "close_range", "fd": 3, "max_fd": 0xFFFFFFFF, "flags": 4}),
    ("close_range(5, ~0U, CLOSE_RANGE_UNSHARE) = 0", {"max_fd": 0xFFFFFFFF, "flags": 2}),
    ("dup(3)                            = 5", {"op": "dup", "newfd": None, "cloexec": False}),
    ("dup2(3, 10)                       = 10", {"op": "dup", "fd": 3, "newfd": 10}),
    ("dup3(3, 11, O_CLOEXEC)            = 11", {"op": "dup", "newfd": 11, "cloexec": True}),
    ("fcntl(3, F_DUPFD, 20)             = 20", {"op": "dup", "minfd": 20, "newfd": None}),
    ("fcntl(3, F_DUPFD_CLOEXEC, 30)     = 30", {"op": "dup", "minfd": 30, "cloexec": True}),
    ("fcntl(3, F_SETFD, FD_CLOEXEC)     = 0", {"op": "setfd", "cloexec": True}),
    ("fcntl(3, F_SETFD, 0)              = 0", {"op": "setfd", "cloexec": False}),
    ('chdir("/tmp/st/w")                = 0', {"op": "chdir", "path": "/tmp/st/w"}),
    ("fchdir(3)                         = -1 ENOTDIR (Not a directory)",
     {"op": "chdir", "fd": 3, "err": "ENOTDIR"}),
    ('read(3, "heX\\0\\0\\0\\0\\0\\0"..., 100) = 100', {"op": "read", "size": 100, "ret": 100}),
    ('pread64(3, "eX\\0\\0", 4, 1)        = 4', {"op": "read", "size": 4, "offset": 1}),
    ('readv(3, [{iov_base="", iov_len=3}, {iov_base="", iov_len=5}], 2) = 0',
     {"op": "read", "size": 8, "ret": 0, "offset": "<absent>"}),
    ('preadv(3, [{iov_base="first", iov_len=5}, {iov_base="second!", iov_len=7}], 2, 0) = 12',
     {"op": "read", "size": 12, "offset": 0}),
    ('preadv2(3, [{iov_base="irsts", iov_len=5}], 1, -1, 0) = 5', {"offset": "<absent>"}),
    ('write(3, "hello\\nworld\\t\\0\\1\\377\\"\\\\ end of a long "..., 60) = 60',
     {"op": "write", "size": 60, "complete": False,
      "data": b'hello\nworld\t\0\1\377"\\ end of a long '.hex()}),
    ('write(1, "hi\\n", 3) = 3', {"size": 3, "data": "68690a", "complete": True}),
    ('write(1, "hi\\n", 3) = 2', {"size": 2, "data": "6869", "complete": True}),
    ('write(9, "abc", 3) = -1 EBADF (Bad file descriptor)', {"size": 3, "err": "EBADF"}),
    ('write(3, 0x7ffd0000, 16) = -1 EFAULT (Bad address)', {"data": "", "complete": False}),
    ('pwrite64(3, "XY", 2, 2)           = 2', {"op": "write", "offset": 2, "data": "5859"}),
    ('writev(3, [{iov_base="abc", iov_len=3}, {iov_base="def", iov_len=3}], 2) = 6',
     {"op": "write", "size": 6, "data": b"abcdef".hex(), "complete": True}),
    ('writev(5, [{iov_base="01234567"..., iov_len=16}, {iov_base="xyz", iov_len=3}], 2) = 19',
     {"size": 19, "complete": False, "data": (b"01234567" + b"\0" * 8 + b"xyz").hex()}),
    ('pwritev(3, [{iov_base="first", iov_len=5}], 1, 3) = 5', {"offset": 3, "data": "6669727374"}),
    ('pwritev2(3, [{iov_base="a", iov_len=1}], 1, -1, 0) = 1', {"offset": "<absent>"}),
    ("lseek(3, -1759, SEEK_CUR)         = 1582",
     {"op": "lseek", "offset": -1759, "whence": 1, "ret": 1582}),
    ("lseek(3, 0, SEEK_HOLE)            = 15", {"whence": 4}),
    ("_llseek(3, 4096, [4096], SEEK_SET) = 0", {"op": "lseek", "offset": 4096, "ret": 4096}),
    ('truncate("renamed.txt", 7)        = 0', {"op": "truncate", "path": "renamed.txt",
                                             "length": 7}),
    ("ftruncate(3, 3)                   = 0", {"op": "truncate", "fd": 3, "length": 3}),
    ("fallocate(3, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 100) = 0",
     {"op": "fallocate", "mode": 3, "offset": 0, "length": 100}),
    ("copy_file_range(3, [0], 4, [5], 10, 0) = 10",
     {"op": "copy", "fd_in": 3, "fd_out": 4, "off_in": 0, "off_out": 5, "size": 10}),
    ("copy_file_range(3, NULL, 4, NULL, 10, 0) = 10", {"off_in": None, "off_out": None}),
    ("sendfile(4, 3, [0] => [3], 3)     = 3",
     {"op": "copy", "fd_in": 3, "fd_out": 4, "off_in": 0, "off_out": None, "size": 3}),
    ("splice(6, NULL, 3, [2], 4, 0)     = 4", {"op": "copy", "fd_in": 6, "off_out": 2}),
    ('mkdir("sub", 0755)                = 0', {"op": "mkdir", "path": "sub", "mode": 0o755}),
    ('mkdirat(4</tmp/st/w>, "sub", 0777)      = 0', {"op": "mkdir", "dirfd": 4, "mode": 0o777}),
    ('mknod("nod", S_IFCHR|0644, makedev(0x1, 0x3)) = 0',
     {"op": "mknod", "mode": 0o20644, "dev": os.makedev(1, 3)}),
    ('mknodat(AT_FDCWD, "fifo", S_IFIFO|0600) = 0', {"op": "mknod", "mode": 0o10600, "dev": 0}),
    ('symlink("a.txt", "link")          = 0', {"op": "symlink", "target": "a.txt", "path": "link"}),
    ('symlinkat("renamed.txt", AT_FDCWD, "sl") = 0', {"target": "renamed.txt", "path": "sl"}),
    ('link("a.txt", "hard")             = 0', {"op": "link", "oldpath": "a.txt", "flags": 0}),
    ('linkat(AT_FDCWD, "renamed.txt", 5, "ln", AT_SYMLINK_FOLLOW) = 0',
     {"op": "link", "newpath": "ln", "newdirfd": 5, "olddirfd": "<absent>", "flags": 0x400}),
    ('unlink("hard2")                   = 0', {"op": "unlink", "path": "hard2", "flags": 0}),
    ('rmdir("sub/x")                    = 0', {"op": "unlink", "flags": 0x200}),
    ('unlinkat(AT_FDCWD, "dd", AT_REMOVEDIR) = 0', {"op": "unlink", "flags": 0x200}),
    ('rename("missing", "x")            = -1 ENOENT (No such file or directory)',
     {"op": "rename", "oldpath": "missing", "newpath": "x", "err": "ENOENT"}),
    ('renameat(AT_FDCWD, "a", AT_FDCWD, "b") = 0', {"op": "rename", "flags": 0}),
    ('renameat2(AT_FDCWD, "creat.txt", AT_FDCWD, "renamed.txt", RENAME_NOREPLACE) = 0',
     {"op": "rename", "flags": 1}),
    ('chmod("a.txt", 0600)              = 0', {"op": "chmod", "path": "a.txt", "mode": 0o600}),
    ("fchmod(3, 0600)                   = 0", {"op": "chmod", "fd": 3, "mode": 0o600}),
    ('fchmodat(AT_FDCWD, "renamed.txt", 0755) = 0', {"op": "chmod", "flags": 0}),
    ('fchmodat2(AT_FDCWD, "x", 0755, AT_SYMLINK_NOFOLLOW) = 0', {"op": "chmod", "flags": 0x100}),
    ('chown("a.txt", -1, -1)            = 0', {"op": "chown", "uid": -1, "gid": -1, "flags": 0}),
    ('lchown("link", 0, -1)             = 0', {"op": "chown", "uid": 0, "flags": 0x100}),
    ("fchown(3, 1000, 100)              = 0", {"op": "chown", "fd": 3, "uid": 1000}),
    ('fchownat(AT_FDCWD, "r", 0, 0, AT_SYMLINK_NOFOLLOW) = 0', {"op": "chown", "flags": 0x100}),
    ('utimensat(AT_FDCWD, "a.txt", NULL, 0) = 0', {"op": "utimes", "atime": None, "mtime": None}),
    ('utimensat(AT_FDCWD, "a.txt", [{tv_sec=1, tv_nsec=5} /* 1970-01-01T00:00:01.000000005+0000 */,'
     ' {tv_sec=2, tv_nsec=7} /* 1970-01-01T00:00:02.000000007+0000 */], 0) = 0',
     {"atime": [1, 5], "mtime": [2, 7]}),
    ('utimensat(AT_FDCWD, "r", [UTIME_NOW, UTIME_OMIT], AT_SYMLINK_NOFOLLOW) = 0',
     {"atime": None, "mtime": "omit", "flags": 0x100}),
    ("utimensat(3, NULL, NULL, 0)       = 0", {"op": "utimes", "fd": 3, "path": "<absent>"}),
    ('utimes("r", [{tv_sec=5, tv_usec=6} /* 1970-01-01T00:00:05.000006+0000 */, {tv_sec=7, '
     "tv_usec=8} /* 1970-01-01T00:00:07.000008+0000 */]) = 0", {"atime": [5, 6000]}),
    ('futimesat(7, "r", NULL) = 0', {"dirfd": 7, "atime": None}),
    ('utime("r", {actime=9 /* 1970-01-01T00:00:09+0000 */, modtime=10 /* 1970-01-01T00:00:10+0000'
     " */}) = 0", {"atime": [9, 0], "mtime": [10, 0]}),
    ('setxattr("a.txt", "user.foo", "bar", 4, XATTR_CREATE) = 0',
     {"op": "setxattr", "name": "user.foo", "value": "62617200", "flags": 1, "follow": True}),
    ('lsetxattr("r", "user.x", "\\0\\1bin", 5, XATTR_REPLACE) = -1 ENODATA (No data available)',
     {"value": "000162696e", "flags": 2, "follow": False, "err": "ENODATA"}),
    ('fsetxattr(3, "user.y", "v", 1, 0) = 0', {"op": "setxattr", "fd": 3, "value": "76"}),
    ('getxattr("a.txt", "user.foo", "bar", 128) = 4', {"op": "getxattr", "ret": 4}),
    ('lgetxattr("r", "user.y", 0x7fae752dd130, 256) = -1 ENODATA (No data available)',
     {"op": "getxattr", "follow": False}),
    ('flistxattr(3, "user.y\\0", 256)    = 7', {"op": "listxattr", "fd": 3, "ret": 7}),
    ('removexattr("a.txt", "user.foo")  = 0', {"op": "removexattr", "name": "user.foo"}),
    ('stat("r", {st_mode=S_IFREG|0755, st_size=7, ...}) = 0', {"op": "stat", "follow": True}),
    ('lstat("sl", {st_mode=S_IFLNK|0777, st_size=11, ...}) = 0', {"op": "stat", "follow": False}),
    ("fstat(3, {st_mode=S_IFREG|0600, st_size=0, ...}) = 0", {"op": "stat", "fd": 3}),
    ('newfstatat(AT_FDCWD, "link", {st_mode=S_IFLNK|0777, st_size=5, ...}, AT_SYMLINK_NOFOLLOW)'
     " = 0", {"op": "stat", "flags": 0x100, "follow": False}),
    ('newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=84720, ...}, AT_EMPTY_PATH) = 0',
     {"path": "", "dirfd": 3, "flags": 0x1000}),
    ('statx(AT_FDCWD, "r", AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, '
     "{stx_mask=STATX_BASIC_STATS|STATX_MNT_ID, stx_attributes=0, ...}) = 0", {"follow": False}),
    ('access("a.txt", R_OK|W_OK)        = 0', {"op": "access", "mode": 6}),
    ('faccessat2(AT_FDCWD, "r", R_OK, AT_EACCESS) = 0', {"op": "access", "flags": 0x200}),
    ('readlink("link", "a.txt", 4096)   = 5', {"op": "readlink", "path": "link", "ret": 5}),
    ('readlinkat(3, "sl", "renamed.txt", 256) = 11', {"op": "readlink", "dirfd": 3}),
    ("getdents64(3, 0x5602ac79ef50 /* 6 entries */, 32768) = 152",
     {"op": "getdents", "entries": 6}),
    ('getdents64(3, [{d_ino=2, d_off=6, d_reclen=24, d_type=DT_DIR, d_name="."}, {d_ino=3, '
     'd_off=7, d_reclen=24, d_type=DT_REG, d_name="a, b"}], 32768) = 48', {"entries": 2}),
    ("getdents64(3, [], 32768)          = 0", {"entries": 0}),
    ("clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, "
     "child_tidptr=0x7f5f1a004e50) = 6385",
     {"op": "fork", "child": 6385, "share_files": False, "thread": False}),
    ("clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, "
     "child_tid=0x7f16, exit_signal=0, stack=0x7f16, stack_size=0x7fff80, tls=0x7f16} => "
     "{parent_tid=[6341]}, 88) = 6341",
     {"op": "fork", "child": 6341, "share_files": True, "share_fs": True, "thread": True}),
    ("vfork()                 = 11122", {"op": "fork", "child": 11122, "share_fs": False}),
    ('execve("/bin/true", ["/bin/true", "arg 1", "x\\"y"], 0x7fff676b4b88 /* 38 vars */) = 0',
     {"op": "exec", "path": "/bin/true", "argv": ["/bin/true", "arg 1", 'x"y']}),
    ('execve("/x", ["x", "-c", "echo a > /tmp/st/w/f; cat /tmp/s"...], 0x7f /* 35 vars */) = -1 '
     "ENOENT (No such file or directory)", {"argv": ["x", "-c", "echo a > /tmp/st/w/f; cat /tmp/s"],
                                            "err": "ENOENT"}),
    ('execveat(3, "", ["a"], NULL, AT_EMPTY_PATH) = 0', {"op": "exec", "path": "", "argv": ["a"]}),
    ("umask(027)                        = 022", {"op": "umask", "mask": 0o27, "ret": 0o22}),
    ('openat(AT_FDCWD, "bad\\377name", O_WRONLY|O_CREAT|O_CLOEXEC, 0644) = 8',
     {"path": "bad\udcffname"}),
    ('openat(AT_FDCWD, "\\303\\274n\\303\\257", O_WRONLY|O_CREAT, 0644) = 9', {"path": "ünï"}),
    ('openat(AT_FDCWD, "q\\"uote\\\\slash\\nnl", O_WRONLY|O_CREAT|O_EXCL|O_APPEND|O_SYNC|O_NOFOLLOW'
     "|O_CLOEXEC, 0644) = 11", {"path": 'q"uote\\slash\nnl',
                                "flags": W | CREAT | os.O_EXCL | os.O_APPEND | os.O_SYNC
                                | os.O_NOFOLLOW | CLOEXEC}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "want"), CALLS, ids=[c[0].split("(")[0] for c in CALLS])
def test_each_call_gives_its_op(line: str, want: dict[str, Any]) -> None:
    op = one(line)
    sub(op, **want)
    assert op["call"] == line.split("(")[0]
    assert op["pid"] == 0 and op["line"] == 1 and "ts" not in op


# --- prefixes and suffixes -----------------------------------------------------------------------
@pytest.mark.parametrize(("line", "pid", "ts"), [
    ('[pid  9007] 04:58:15.411673 close(3) = 0 <0.000026>', 9007, 4 * 3600 + 58 * 60 + 15.411673),
    ("6298  close(3)                          = 0", 6298, None),
    ("9042  1796360302.673895 close(3) = 0", 9042, 1796360302.673895),
    ("05:14:57 close(3) = 0", 0, 5 * 3600 + 14 * 60 + 57),
    ("9211       0.000115 close(3) = 0", 9211, None),  # -r: a delta, not a clock
    ("     0.000000 close(3) = 0", 0, None),
    ("10653 [  20] [00007fd2c031be60] close(3) = 0", 10653, None),  # -n -i
    ("[pid 77<bash>] close(3) = 0", 77, None),  # -Y
])  # fmt: skip
def test_prefixes(line: str, pid: int, ts: float | None) -> None:
    op = one(line)
    assert (op["op"], op["fd"], op["pid"], op.get("ts")) == ("close", 3, pid, ts)


def test_y_and_yy_fd_annotations_are_decoded_and_dropped() -> None:
    weird = '3</tmp/st/w/we\\74ir\\76d, \\"q\\" ) = x>'
    ops, p = parse([
        'openat(AT_FDCWD</tmp/st>, "w/we<ir>d, \\"q\\" ) = x", O_WRONLY|O_CREAT|O_CLOEXEC, 0644)'
        f" = {weird}",
        f'write({weird}, "z", 1) = 1',
        "dup2(3</dev/null<char 1:3>>, 1<\\x2f\\x74\\x6d\\x70>) = 1<\\x2f\\x64<char 1:3>>",
        "close(4<UNIX-STREAM:[16483]>) = 0",
        "close(5<TCP:[127.0.0.1:80->127.0.0.1:5000]>) = 0",
        "lseek(4<pipe:[45]>, 0, SEEK_CUR) = -1 ESPIPE (Illegal seek)",
    ])  # fmt: skip
    assert not p.skipped
    sub(ops[0], op="open", path='w/we<ir>d, "q" ) = x', ret=3, dirfd="<absent>")
    sub(ops[1], op="write", fd=3, data="7a")
    sub(ops[2], op="dup", fd=3, newfd=1, ret=1)
    assert [o.get("fd") for o in ops[3:]] == [4, 5, 4]


def test_unfinished_and_resumed_halves_join_per_pid() -> None:
    ops, p = parse("""\
6298  read(3,  <unfinished ...>
6340  close(3 <unfinished ...>
6298  <... read resumed>"abc", 50000)      = 3
6340  <... close resumed>)              = 0
6341  newfstatat(AT_FDCWD, "/",  <unfinished ...>
6301  clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
6341  <... newfstatat resumed>{st_mode=S_IFDIR|0755, st_size=4096, ...}, 0) = 0
6301  <... clone resumed>, child_tidptr=0x7f9b80d0ea10) = 6302
6340  execve("/bin/true", ["/bin/true"], 0x7fff676b4b88 /* 38 vars */ <unfinished ...>
6340  <... execve resumed>)             = 0
6298  <... openat resumed>) = 3
""")
    assert [(o["op"], o["pid"], o["line"]) for o in ops] == [
        ("read", 6298, 1), ("close", 6340, 2), ("stat", 6341, 5), ("fork", 6301, 6),
        ("exec", 6340, 9)]  # fmt: skip
    sub(ops[0], size=50000, ret=3)
    sub(ops[3], child=6302)
    assert p.skipped == {"resumed without its start": 1}


def test_signals_exits_and_interrupted_calls() -> None:
    ops, p = parse("""\
6339  openat(AT_FDCWD, "a.txt", O_RDONLY|O_CLOEXEC) = 3
6339  exit_group(3)                     = ?
6339  +++ exited with 3 +++
6384  --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=6339, si_status=3} ---
9212  <... read resumed>0x7f865c893dd0, 10) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)
9212  read(3, 0x7f865c893dd0, 10) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)
9212  restart_syscall(<... resuming interrupted read ...>) = 0
9212  +++ killed by SIGTERM +++
6341  exit(0)                           = ?
6341  +++ exited with 0 +++
6342  +++ exited with 0 +++
6343  +++ superseded by execve in pid 6344 +++
6384  exit_group(0 <unfinished ...>
6384  <... exit_group resumed>) = ?
""")
    got = [(o["op"], o["pid"], o.get("status"), o["call"]) for o in ops]
    assert got == [("open", 6339, None, "openat"), ("exit", 6339, 3, "exit_group"),
                   ("exit", 9212, None, "killed"), ("exit", 6341, 0, "exit"),
                   ("exit", 6342, 0, "exited"), ("exit", 6384, 0, "exit_group")]  # fmt: skip
    assert p.skipped["restarted/interrupted"] == 2
    assert p.skipped["signal"] == 1 and p.skipped["superseded by execve"] == 1
    assert p.skipped["exit (already recorded at exit_group)"] == 2
    assert p.skipped["resumed without its start"] == 1


def test_unknown_results_keep_the_op_without_ret() -> None:
    op = one('[pid 5] write(3, "x", 1) = ? <unavailable>')
    assert "ret" not in op and "err" not in op and op["size"] == 1
    assert "ret" not in one('openat(AT_FDCWD, "a", O_RDONLY) = 0x3')  # pointer-like: no int


def test_a_call_left_unfinished_is_emitted_without_a_result_when_complete() -> None:
    ops, p = parse("""\
5  write(3, "abc", 3 <unfinished ...>
6  read(4,  <unfinished ...>
5  +++ killed by SIGKILL +++
7  openat(AT_FDCWD, "x", O_RDONLY <unfinished ...>
""")
    assert [(o["op"], o["pid"], o.get("ret", "-")) for o in ops] == [
        ("write", 5, "-"), ("exit", 5, "-"), ("open", 7, "-")]  # fmt: skip
    sub(ops[0], data="616263", size=3, line=1)
    assert p.skipped == {"unfinished (never resumed)": 1}


def test_strings_c_escapes_hex_and_truncation() -> None:
    cases = {
        '"\\x68\\x69\\x0a"': b"hi\n",  # -xx
        '"a\\xffb\\x00"': b"a\xffb\0",  # -x
        '"\\0001\\t\\r\\v\\f\\\\\\"\\7\\10"': b"\0001\t\r\v\f\\\"\x07\x08",
        '"\\1\\2\\3"': b"\1\2\3",
        '"\\e\\q"': b"\x1bq",  # never printed by strace: still no exception
    }  # fmt: skip
    for text, want in cases.items():
        sub(one(f"write(1, {text}, {len(want)}) = {len(want)}"), data=want.hex(), complete=True)
    sub(one('write(1, "abcdefgh"..., 20) = 20'), data=b"abcdefgh".hex(), size=20, complete=False)
    sub(one('write(1, "abcdefgh"..., 20) = 5'), data=b"abcde".hex(), size=5, complete=True)


def test_skip_reasons_are_counted_and_never_raise() -> None:
    ops, p = parse([
        "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f6bd3489000",
        "syscall_0x1c4(0xffffffffffffff9c, 0x7fae753215b0, 0x1ed, 0x100) = 0",
        'mount("none", "/mnt", "tmpfs", 0, NULL) = 0',
        "fcntl(3, F_GETFL)                 = 0x8001 (flags O_WRONLY|O_LARGEFILE)",
        'openat(AT_FDCWD, "x", O_RDONLY|O_BOGUS) = 3',
        'openat(AT_FDCWD, 0x7ffe, O_RDONLY) = -1 EFAULT (Bad address)',
        'openat(AT_FDCWD, "x", ) = 3',
        "strace: Process 9031 attached",
        " | 00000  68 69 0a                                          hi.              |",
        "",
        "hello world",
    ])  # fmt: skip
    assert ops == []
    assert p.skipped == {
        "not a file call mmap": 1, "unknown syscall syscall_0x1c4": 1,
        "unsupported file call mount": 1, "fcntl F_GETFL": 1, "unknown flag O_BOGUS": 1,
        "path not shown": 1, "unparsable arguments openat": 1, "strace message": 1,
        "i/o dump": 1, "blank line": 1, "unparsable line": 1}  # fmt: skip
    assert p.lines == 11


def test_stderr_log_without_prefix_keeps_one_pid_for_the_first_process() -> None:
    ops, _ = parse("""\
04:58:22.530000 openat(AT_FDCWD, "a", O_RDONLY) = 3
04:58:22.530574 clone(child_stack=NULL, flags=SIGCHLDstrace: Process 9031 attached
[pid  9031] 04:58:22.530600 close(3) = 0
[pid  9030] 04:58:22.530880 <... clone resumed>, child_tidptr=0x7f4dafa13a10) = 9031 <0.000295>
[pid  9030] 04:58:22.531000 close(3) = 0
[pid  9031] 04:58:22.537402 +++ exited with 0 +++
04:58:22.651410 +++ exited with 0 +++
""", default_pid=1)
    assert [(o["op"], o["pid"]) for o in ops] == [
        ("open", 1), ("close", 9031), ("fork", 1), ("close", 1), ("exit", 9031), ("exit", 1)]
    assert ops[2]["child"] == 9031 and ops[2]["line"] == 2


def test_stderr_message_cutting_a_line_in_two() -> None:
    ops, p = parse("""\
clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLDstrace: Process 15681 attached
, child_tidptr=0x7f9d95fcde50) = 15681
[pid 15681] close(3) = 0
[pid 15680] close(4) = 0
clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLDstrace: Process 15682 attached
 <unfinished ...>
[pid 15682] close(5) = 0
[pid 15680] <... clone resumed>, child_tidptr=0x7f4dafa13a10) = 15682
""")
    assert [(o["op"], o["pid"], o.get("child", o.get("fd")), o["line"]) for o in ops] == [
        ("fork", 0, 15681, 1), ("close", 15681, 3, 3), ("close", 0, 4, 4), ("close", 15682, 5, 7),
        ("fork", 0, 15682, 5)]  # fmt: skip
    assert p.skipped == {"strace message": 3}


def test_midnight_wraps_the_clock_forward() -> None:
    ops, _ = parse(["23:59:59.900000 close(3) = 0", "00:00:00.100000 close(4) = 0"])
    assert ops[1]["ts"] - ops[0]["ts"] == pytest.approx(0.2)


def test_parse_is_lazy_and_parse_strace_reports_counts() -> None:
    def endless() -> Iterator[str]:
        n = 0
        while True:
            n += 1
            yield f"{n % 7}  close({n}) = 0"
            yield "1  mmap(NULL, 8192) = 0x7f"

    trace = parse_strace(endless(), "x")
    it = iter(trace)
    got = [next(it)["fd"] for _ in range(1000)]
    assert got == list(range(1, 1001))
    assert trace.lines == 1999 and trace.skipped == {"not a file call mmap": 999}
    assert not trace.parser._pending and not trace.parser._extra


# --- hostile input -------------------------------------------------------------------------------
_REAL = [c[0] for c in CALLS] + ["6298  read(3,  <unfinished ...>", "+++ exited with 0 +++",
                                 "<... read resumed>\"\", 5) = 0", "--- SIGCHLD {} ---"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.tuples(st.sampled_from(_REAL), st.integers(0, 300), st.integers(0, 300), st.text(max_size=8))
    .map(lambda t: t[0][: t[1]] + t[3] + t[0][t[2]:]),
), max_size=30))  # fmt: skip
def test_random_lines_never_raise_and_ops_are_valid(lines: list[str]) -> None:
    ops, p = parse(lines)  # parse() validates every op
    assert p.lines == len(lines) and all(o["line"] <= len(lines) for o in ops)
    assert len(p.skipped) <= S._MAX_REASONS + 1


@pytest.mark.parametrize("line", [
    "a" * (10 << 20), 'write(3, "' + "\\377" * (10 << 18) + '"..., 5) = 5',
    "openat(" + "(" * (4 << 20) + ") = 3", "\0" * (10 << 20), "1" * (10 << 20),
    "writev(3, " + "[{" * (4 << 20) + ") = 3", "openat(" + ") = 1 (" * (1 << 20),
])  # fmt: skip
def test_ten_megabyte_lines_are_handled(line: str) -> None:
    ops, p = parse([line, "close(3) = 0"])
    assert ops[-1]["op"] == "close" and p.lines == 2


def test_reasons_quoting_the_log_are_capped() -> None:
    ops, p = parse([f'openat(AT_FDCWD, "x", O_X{n}) = 3' for n in range(3000)])
    assert ops == [] and len(p.skipped) == S._MAX_REASONS + 1
    assert sum(p.skipped.values()) == 3000


# --- files: compression, binary, -ff -------------------------------------------------------------
def test_open_trace_text_reads_compressed_and_binary_logs(tmp_path: Path) -> None:
    raw = b'close(3) = 0\r\nwrite(1, "\\377", 1) = 1\n\xff\xfe\x00garbage\nclose(4) = 0'
    for name, data in [("p.log", raw), ("g.log.gz", gzip.compress(raw)), ("x", lzma.compress(raw)),
                       ("z.zst", zstandard.ZstdCompressor().compress(raw))]:  # fmt: skip
        (tmp_path / name).write_bytes(data)
        lines = list(open_trace_text(str(tmp_path / name)))
        assert [x.encode("latin-1") for x in lines] == raw.split(b"\n")
        ops, p = parse(lines)
        assert [o.get("fd") for o in ops] == [3, 1, 4] and p.skipped == {"unparsable line": 1}
    (tmp_path / "bad.gz").write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(TraceError, match="compressed"):
        list(open_trace_text(str(tmp_path / "bad.gz")))


def test_overlong_lines_are_dropped_while_reading(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(S, "_MAX_LINE", 100)
    monkeypatch.setattr(S, "_CHUNK", 7)
    f = tmp_path / "t.log"
    f.write_bytes(b"close(3) = 0\n" + b"x" * 5000 + b"\nclose(4) = 0\n" + b"y" * 500)
    lines = list(open_trace_text(str(f)))
    assert lines == ["close(3) = 0", S._OVERLONG, "close(4) = 0", S._OVERLONG]
    ops, p = parse(lines)
    assert len(ops) == 2 and p.skipped == {"line too long": 2}


def _ff(tmp_path: Path, files: dict[int, str]) -> list[str]:
    paths = []
    for pid, text in files.items():
        (tmp_path / f"p.{pid}").write_text(text)
        paths.append(str(tmp_path / f"p.{pid}"))
    return paths


def test_ff_files_merge_by_timestamp_with_pids_from_names(tmp_path: Path) -> None:
    paths = _ff(tmp_path, {
        10: "23:59:59.000000 clone(child_stack=NULL, flags=SIGCHLD) = 11\n"
            "23:59:59.500000 close(3) = 0\n00:00:01.000000 close(5) = 0\n"
            "00:00:02.000000 +++ exited with 0 +++\n",
        11: "23:59:59.200000 close(4) = 0\n00:00:00.500000 close(6) = 0\n",
        12: "",
    })  # fmt: skip
    parser, it = parse_strace_files(paths)
    ops = [validate(o) for o in it]
    assert [(o["pid"], o.get("fd", o.get("child"))) for o in ops] == [
        (10, 11), (11, 4), (10, 3), (11, 6), (10, 5), (10, None)]
    assert [o["line"] for o in ops] == [1, 1, 2, 2, 3, 4] and parser.lines == 6


def test_ff_files_need_timestamps(tmp_path: Path) -> None:
    paths = _ff(tmp_path, {10: "close(3) = 0\n", 11: "01:00:00 close(3) = 0\n"})
    with pytest.raises(TraceError, match="need -t/-tt/-ttt timestamps to be merged"):
        parse_strace_files(paths)
    paths = _ff(tmp_path, {10: "     0.000123 close(3) = 0\n"})  # -r: deltas, not a clock
    with pytest.raises(TraceError, match="timestamps"):
        parse_strace_files(paths)
    with pytest.raises(TraceError, match=r"PREFIX\.<pid>"):
        parse_strace_files([str(tmp_path / "p.10"), str(tmp_path / "nopid")])


def test_ff_opens_a_file_only_when_its_lines_are_due(tmp_path: Path) -> None:
    files = {100 + i: f"01:00:{i // 10:02d}.{i % 10}00000 close({i}) = 0\n" for i in range(400)}
    paths = _ff(tmp_path, files)
    prog = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))\n"
            "from overlaysim.replay.strace import parse_strace_files\n"
            "p, it = parse_strace_files(sys.argv[1:])\nprint(sum(1 for _ in it))\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", prog, *paths], capture_output=True, text=True,
                         cwd=Path(S.__file__).parents[2], check=True)  # fmt: skip
    assert out.stdout.split() == ["400"]
