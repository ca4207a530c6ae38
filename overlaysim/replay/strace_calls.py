"""strace calls -> op keys: one converter per syscall (format.py's ``_SPEC``), and the names
of the calls that are not converted, so that every skip says why.

A converter gets the call's top-level argument texts, its return value and errno name, and
returns the op (without the common keys the parser adds) or raises ``Skip``/``ValueError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from overlaysim.replay.format import Op
from overlaysim.replay.strace_args import (
    AT_REMOVEDIR,
    AT_SYMLINK_NOFOLLOW,
    MAX_FD,
    Skip,
    cstring,
    dirfd,
    entries,
    fd,
    fields,
    flags,
    iovecs,
    makedev,
    number,
    path,
    pointed,
    string_list,
    times,
)

Conv = Callable[[list[str], "int | None", "str | None"], Op]
CONVERTERS: dict[str, Conv] = {}
_DECODERS: dict[str, Callable[[str], Any]] = {
    "fd": fd, "newfd": fd, "fd_in": fd, "fd_out": fd,
    "dirfd": dirfd, "olddirfd": dirfd, "newdirfd": dirfd,
    "path": path, "oldpath": path, "newpath": path, "target": path,
    "flags": flags, "mode": flags, "whence": flags,
    "offset": number, "length": number, "size": number, "uid": number, "gid": number,
    "mask": number, "minfd": number, "off_in": pointed, "off_out": pointed, "dev": makedev,
}  # fmt: skip


def _table(kind: str, spec: str, **const: Any) -> Conv:
    """A converter from a spec: argument keys in order, ``_`` = ignored, ``?`` = optional;
    a dirfd of ``AT_FDCWD`` is left out."""
    plan = [(k.rstrip("?"), None if k == "_" else _DECODERS[k.rstrip("?")], k.endswith("?"))
            for k in spec.split()]  # fmt: skip

    def conv(a: list[str], ret: int | None, err: str | None) -> Op:
        op: Op = {"op": kind, **const}
        n = len(a)
        for i, (key, dec, optional) in enumerate(plan):
            if i >= n or (optional and not a[i]):
                if optional:
                    break
                raise IndexError(key)
            if dec is not None:
                v = dec(a[i])
                if v is not None or not key.endswith("dirfd"):
                    op[key] = v
        return op

    return conv


_RWX = os.O_CREAT | os.O_WRONLY | os.O_TRUNC
for _names, _args in (
    ("open", ("open", "path flags mode?")), ("openat", ("open", "dirfd path flags mode?")),
    ("creat", ("open", "path mode", {"flags": _RWX})), ("close", ("close", "fd")),
    ("dup", ("dup", "fd", {"newfd": None, "cloexec": False})),
    ("dup2", ("dup", "fd newfd", {"cloexec": False})),
    ("chdir", ("chdir", "path")), ("fchdir", ("chdir", "fd")),
    ("read pread64 pread", ("read", "fd _ size offset?")),
    ("lseek", ("lseek", "fd offset whence")),
    ("truncate truncate64", ("truncate", "path length")),
    ("ftruncate ftruncate64", ("truncate", "fd length")),
    ("fallocate", ("fallocate", "fd mode offset length")),
    ("copy_file_range splice", ("copy", "fd_in off_in fd_out off_out size")),
    ("sendfile sendfile64", ("copy", "fd_out fd_in off_in size", {"off_out": None})),
    ("mkdir", ("mkdir", "path mode")), ("mkdirat", ("mkdir", "dirfd path mode")),
    ("mknod", ("mknod", "path mode dev?", {"dev": 0})),
    ("mknodat", ("mknod", "dirfd path mode dev?", {"dev": 0})),
    ("symlink", ("symlink", "target path")), ("symlinkat", ("symlink", "target dirfd path")),
    ("link", ("link", "oldpath newpath", {"flags": 0})),
    ("linkat", ("link", "olddirfd oldpath newdirfd newpath flags")),
    ("rename", ("rename", "oldpath newpath", {"flags": 0})),
    ("renameat renameat2", ("rename", "olddirfd oldpath newdirfd newpath flags?", {"flags": 0})),
    ("unlink", ("unlink", "path", {"flags": 0})),
    ("rmdir", ("unlink", "path", {"flags": AT_REMOVEDIR})),
    ("unlinkat", ("unlink", "dirfd path flags")),
    ("chmod", ("chmod", "path mode")), ("fchmod", ("chmod", "fd mode")),
    ("fchmodat fchmodat2", ("chmod", "dirfd path mode flags?", {"flags": 0})),
    ("chown chown32", ("chown", "path uid gid", {"flags": 0})),
    ("lchown lchown32", ("chown", "path uid gid", {"flags": AT_SYMLINK_NOFOLLOW})),
    ("fchown fchown32", ("chown", "fd uid gid")),
    ("fchownat", ("chown", "dirfd path uid gid flags")),
    ("stat stat64 oldstat", ("stat", "path", {"follow": True})),
    ("lstat lstat64 oldlstat", ("stat", "path", {"follow": False})),
    ("fstat fstat64 oldfstat", ("stat", "fd")),
    ("access", ("access", "path mode")),
    ("faccessat faccessat2", ("access", "dirfd path mode flags?", {"flags": 0})),
    ("readlink", ("readlink", "path")), ("readlinkat", ("readlink", "dirfd path")),
    ("umask", ("umask", "mask")),
):  # fmt: skip
    _conv = _table(_args[0], _args[1], **(_args[2] if len(_args) > 2 else {}))
    for _n in _names.split():
        CONVERTERS[_n] = _conv


def _reg(*names: str) -> Callable[[Conv], Conv]:
    def deco(fn: Conv) -> Conv:
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return deco


@_reg("openat2")
def _openat2(a: list[str], ret: int | None, err: str | None) -> Op:
    f = fields(a[2])
    op: Op = {"op": "open", "path": path(a[1]), "flags": flags(f["flags"]),
              "mode": flags(f.get("mode", "0")), "resolve": flags(f.get("resolve", "0"))}
    d = dirfd(a[0])
    if d is not None:
        op["dirfd"] = d
    return op


@_reg("close_range")
def _close_range(a: list[str], ret: int | None, err: str | None) -> Op:
    hi = MAX_FD if a[1].strip().startswith("~0") else number(a[1])
    return {"op": "close_range", "fd": number(a[0]), "max_fd": hi,
            "flags": flags(a[2]) if len(a) > 2 else 0}  # fmt: skip


@_reg("dup3")
def _dup3(a: list[str], ret: int | None, err: str | None) -> Op:
    return {"op": "dup", "fd": fd(a[0]), "newfd": fd(a[1]),
            "cloexec": bool(flags(a[2]) & os.O_CLOEXEC)}  # fmt: skip


@_reg("fcntl", "fcntl64")
def _fcntl(a: list[str], ret: int | None, err: str | None) -> Op:
    cmd = a[1].strip()
    if cmd in ("F_DUPFD", "F_DUPFD_CLOEXEC"):
        return {"op": "dup", "fd": fd(a[0]), "newfd": None, "minfd": number(a[2]),
                "cloexec": cmd == "F_DUPFD_CLOEXEC"}  # fmt: skip
    if cmd == "F_SETFD":
        return {"op": "setfd", "fd": fd(a[0]), "cloexec": bool(flags(a[2]) & 1)}
    raise Skip(f"fcntl {cmd[:24]}")


def _vec_offset(op: Op, a: list[str]) -> Op:
    if len(a) > 3:
        off = number(a[3])
        if off != -1:  # preadv2/pwritev2: -1 = the file position
            op["offset"] = off
    return op


@_reg("readv", "preadv", "preadv2")
def _readv(a: list[str], ret: int | None, err: str | None) -> Op:
    vecs, cut = iovecs(a[1])
    size = sum(n for _, n in vecs)
    if cut and ret is not None and ret > size:
        size = ret
    return _vec_offset({"op": "read", "fd": fd(a[0]), "size": size}, a)


def _buffer(arg: str) -> tuple[bytes, bool]:
    """(bytes shown, whole buffer shown) of a data argument; a bare pointer shows nothing."""
    if arg[:1] != '"':
        return b"", False
    data, cut = cstring(arg)
    return data, not cut


def _write_op(fd_arg: str, data: bytes, known: int, count: int, ret: int | None,
              err: str | None) -> Op:  # fmt: skip
    """``known``: how many leading bytes of ``data`` are the real ones."""
    size = ret if err is None and ret is not None and ret >= 0 else count
    return {"op": "write", "fd": fd(fd_arg), "size": size, "data": data[:size].hex(),
            "complete": known >= size}  # fmt: skip


@_reg("write", "pwrite64", "pwrite")
def _write(a: list[str], ret: int | None, err: str | None) -> Op:
    shown, _whole = _buffer(a[1])
    op = _write_op(a[0], shown, len(shown), number(a[2]), ret, err)
    if len(a) > 3:
        op["offset"] = number(a[3])
    return op


@_reg("writev", "pwritev", "pwritev2")
def _writev(a: list[str], ret: int | None, err: str | None) -> Op:
    vecs, cut = iovecs(a[1])
    parts: list[bytes] = []
    known = -1
    total = 0
    for base, n in vecs:
        data, whole = _buffer(base)
        if (not whole or len(data) < n) and known < 0:
            known = total + min(len(data), n)
        parts.append(data[:n].ljust(n, b"\0"))  # keeps the next buffers at their offsets
        total += n
    count = total
    if cut:
        known = total if known < 0 else known
        if ret is not None and ret > count:
            count = ret
    op = _write_op(a[0], b"".join(parts), total if known < 0 else known, count, ret, err)
    return _vec_offset(op, a)


@_reg("_llseek", "llseek")
def _llseek(a: list[str], ret: int | None, err: str | None) -> Op:
    op: Op = {"op": "lseek", "fd": fd(a[0]), "offset": number(a[1]), "whence": flags(a[3])}
    if ret == 0 and a[2].startswith("["):
        op["ret"] = pointed(a[2])  # the new position; the call itself returns 0
    return op


@_reg("utime", "utimes", "futimesat", "utimensat", "utimensat_time64")
def _utimes(a: list[str], ret: int | None, err: str | None) -> Op:
    if len(a) < 3:  # utime(path, times), utimes(path, times)
        a = ["AT_FDCWD", *a, "0"]
    at, mt = times(a[2])
    op: Op = {"op": "utimes", "atime": at, "mtime": mt,
              "flags": flags(a[3]) if len(a) > 3 else 0}  # fmt: skip
    d = dirfd(a[0])
    if a[1].startswith("NULL"):  # utimensat(fd, NULL, ...): the file open at fd
        if d is None:
            raise Skip("utimensat(AT_FDCWD, NULL)")
        op["fd"] = d
        return op
    op["path"] = path(a[1])
    if d is not None:
        op["dirfd"] = d
    return op


def _xattr(kind: str, variant: str) -> Conv:
    by_fd, follow = variant == "f", variant != "l"

    def conv(a: list[str], ret: int | None, err: str | None) -> Op:
        op: Op = {"op": kind}
        if by_fd:
            op["fd"] = fd(a[0])
        else:
            op["path"] = path(a[0])
            op["follow"] = follow
        if kind != "listxattr":
            op["name"] = path(a[1])
        if kind == "setxattr":
            if a[2][:1] != '"':
                raise Skip("xattr value not shown")
            size = number(a[3])
            op["value"] = cstring(a[2])[0][:size].ljust(size, b"\0").hex()  # final NUL: not shown
            op["flags"] = flags(a[4])
        return op

    return conv


for _kind in ("setxattr", "removexattr", "getxattr", "listxattr"):
    for _v in ("", "l", "f"):
        CONVERTERS[_v + _kind] = _xattr(_kind, _v)


@_reg("newfstatat", "fstatat64", "statx")
def _fstatat(a: list[str], ret: int | None, err: str | None) -> Op:
    fl = flags(a[2] if len(a) > 4 else a[3])  # statx: (dirfd, path, flags, mask, buf)
    op: Op = {"op": "stat", "path": path(a[1]), "flags": fl,
              "follow": not fl & AT_SYMLINK_NOFOLLOW}  # fmt: skip
    d = dirfd(a[0])
    if d is not None:
        op["dirfd"] = d
    return op


@_reg("getdents", "getdents64")
def _getdents(a: list[str], ret: int | None, err: str | None) -> Op:
    return {"op": "getdents", "fd": fd(a[0]), "entries": None if err else entries(a[1])}


def _fork_op(flag_text: str, ret: int | None) -> Op:
    if ret is None:
        raise Skip("fork result unknown")
    names = set(flag_text.split("|"))
    return {"op": "fork", "child": ret, "share_files": "CLONE_FILES" in names,
            "share_fs": "CLONE_FS" in names, "thread": "CLONE_THREAD" in names}  # fmt: skip


@_reg("clone", "clone2", "clone3", "fork", "vfork")
def _clone(a: list[str], ret: int | None, err: str | None) -> Op:
    if a[0].startswith("{"):  # clone3({flags=..., ...} => {parent_tid=[7]}, 88)
        return _fork_op(fields(a[0].split(" => ", 1)[0]).get("flags", ""), ret)
    for item in a:
        if item.startswith("flags="):
            return _fork_op(item[6:], ret)
    return _fork_op("", ret)


@_reg("execve", "execveat")
def _execve(a: list[str], ret: int | None, err: str | None) -> Op:
    if len(a) > 4:  # execveat(dirfd, path, argv, envp, flags)
        a = a[1:]
    return {"op": "exec", "path": path(a[0]), "argv": string_list(a[1])}


# --- syscall names that are not turned into ops ----------------------------------------------
#: File-system calls the op format has no record for: they may change what the replay sees.
UNSUPPORTED = frozenset("""
chroot pivot_root mount umount umount2 open_by_handle_at name_to_handle_at fsopen fsmount fspick
fsconfig move_mount open_tree open_tree_attr mount_setattr setxattrat getxattrat listxattrat
removexattrat file_getattr file_setattr io_uring_enter io_submit acct swapon quotactl
quotactl_fd memfd_create tee vmsplice
""".split())  # noqa: SIM905
#: Calls known to leave the file system alone (memory, signals, sockets, time, ids...).
NOT_FILE = frozenset("""
poll mmap mmap2 mprotect munmap brk rt_sigaction rt_sigprocmask rt_sigreturn sigreturn ioctl
pipe pipe2 select _newselect sched_yield mremap msync mincore madvise shmget shmat shmctl shmdt
pause nanosleep getitimer alarm setitimer getpid socket connect accept accept4 sendto recvfrom
sendmsg recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt
wait4 waitpid waitid kill uname semget semop semctl semtimedop msgget msgsnd msgrcv msgctl flock
fsync fdatasync getcwd gettimeofday getrlimit getrusage sysinfo times ptrace getuid syslog
getgid setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid setregid getgroups
setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid getsid capget capset
rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack uselib personality ustat
statfs fstatfs statfs64 fstatfs64 sysfs getpriority setpriority sched_setparam sched_getparam
sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min
sched_rr_get_interval mlock munlock mlockall munlockall vhangup modify_ldt _sysctl prctl
arch_prctl adjtimex setrlimit sync settimeofday reboot sethostname setdomainname iopl ioperm
create_module init_module delete_module get_kernel_syms query_module nfsservctl getpmsg putpmsg
afs_syscall tuxcall security gettid readahead tkill time futex sched_setaffinity
sched_getaffinity set_thread_area io_setup io_destroy io_getevents io_cancel get_thread_area
lookup_dcookie epoll_create epoll_ctl_old epoll_wait_old remap_file_pages set_tid_address
fadvise64 fadvise64_64 timer_create timer_settime timer_gettime timer_getoverrun timer_delete
clock_settime clock_gettime clock_getres clock_nanosleep epoll_wait epoll_ctl tgkill vserver
mbind set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify
mq_getsetattr kexec_load add_key request_key keyctl ioprio_set ioprio_get inotify_init
inotify_init1 inotify_add_watch inotify_rm_watch migrate_pages pselect6 ppoll unshare
set_robust_list get_robust_list sync_file_range sync_file_range2 move_pages epoll_pwait
epoll_pwait2 signalfd signalfd4 timerfd_create eventfd eventfd2 timerfd_settime timerfd_gettime
epoll_create1 rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64
clock_adjtime syncfs sendmmsg setns getcpu process_vm_readv process_vm_writev kcmp finit_module
sched_setattr sched_getattr seccomp getrandom kexec_file_load bpf userfaultfd membarrier mlock2
pkey_mprotect pkey_alloc pkey_free io_pgetevents rseq pidfd_send_signal io_uring_setup
io_uring_register pidfd_open pidfd_getfd process_madvise landlock_create_ruleset
landlock_add_rule landlock_restrict_self memfd_secret process_mrelease futex_waitv
set_mempolicy_home_node cachestat map_shadow_stack futex_wake futex_wait futex_requeue statmount
listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal uretprobe swapoff sigaction
sigprocmask sigsuspend sigpending signal socketcall ipc getuid32 getgid32 geteuid32 getegid32
setuid32 setgid32 setreuid32 setregid32 getgroups32 setgroups32 setresuid32 getresuid32
setresgid32 getresgid32 setfsuid32 setfsgid32 ugetrlimit clock_gettime64 clock_settime64
clock_adjtime64 clock_getres_time64 clock_nanosleep_time64 timer_gettime64 timer_settime64
timerfd_gettime64 timerfd_settime64 pselect6_time64 ppoll_time64 io_pgetevents_time64
recvmmsg_time64 mq_timedsend_time64 mq_timedreceive_time64 semtimedop_time64
rt_sigtimedwait_time64 futex_time64 sched_rr_get_interval_time64 getdents_compat nice olduname
oldolduname
""".split())  # noqa: SIM905
