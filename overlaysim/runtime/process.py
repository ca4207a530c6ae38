"""Run a command line as a process whose root is a directory of the HostFS (a container).

The process is a new HostFS task, chrooted to the container's root (the overlay's merged
dir, or a runc bundle's rootfs), so absolute paths, ``..`` and ``mount``'s listing stay
inside it, as in a mount namespace whose root is the container filesystem. The program is
the overlaysim shell: ``sh -c 'CMD'`` runs CMD, ``sh`` alone reads commands from stdin, any
other argv runs as one command line.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from overlaysim.vfs.cred import Cred
from overlaysim.vfs.mount import MountEntry
from overlaysim.vfs.sys_dir import path_of

_SHELLS = frozenset({"sh", "bash", "dash", "ash"})


def command_line(argv: list[str]) -> tuple[str | None, bool]:
    """(script to run, whether stdin is the script): the shell's view of ``argv``."""
    prog = posixpath.basename(argv[0]) if argv else ""
    if prog in _SHELLS:
        if len(argv) >= 3 and argv[1] == "-c":
            return argv[2], False
        if len(argv) == 1:
            return None, True
    return shlex.join(argv), False


_SUFFIX = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _sleep_seconds(args: list[str]) -> float | None:
    """``sleep`` of coreutils: the sum of its arguments (``infinity`` is forever = -1)."""
    total = 0.0
    for a in args:
        if a in ("inf", "infinity"):
            return -1.0
        unit = a[-1:] if a[-1:] in ("s", "m", "h", "d") else ""
        try:
            total += float(a[: len(a) - len(unit)]) * _SUFFIX[unit]
        except ValueError:
            return None
    return total if args else None


def lifetime(argv: list[str], stdin_open: bool) -> tuple[bool, float | None]:
    """Whether ``argv`` keeps running as a container's main process, and for how long.

    (False, None): it runs to completion at once (``echo``, ``ls``, ``sh -c 'touch f'``).
    (True, None): it runs until killed (``sleep infinity``, ``tail -f``, a shell or ``cat``
    whose stdin stays open). (True, n): it exits by itself, status 0, after n seconds.
    """
    if not argv:
        return False, None
    prog = posixpath.basename(argv[0])
    if prog in _SHELLS:
        if len(argv) >= 3 and argv[1] == "-c":
            try:
                inner = shlex.split(argv[2])
            except ValueError:
                return False, None
            if inner and inner[0] == "exec":
                inner = inner[1:]
            if inner and not any(ch in argv[2] for ch in ";&|<>`$\n"):
                return lifetime(inner, stdin_open)
            return False, None
        return (stdin_open, None) if len(argv) == 1 or argv[1].startswith("-") else (False, None)
    if prog == "sleep":
        secs = _sleep_seconds(argv[1:])
        if secs is None:
            return False, None
        return True, (None if secs < 0 else secs)
    if prog == "tail" and any(a in ("-f", "-F", "--follow") for a in argv[1:]):
        return True, None
    if prog == "cat" and len(argv) == 1:
        return stdin_open, None
    return False, None


def _visible_mounts(proc: Any) -> list[MountEntry]:
    """/proc/self/mounts of a chrooted process: only mounts at or below its root."""
    rmnt, rnode = proc.task.root
    out = []
    for m in proc.fs.mount_table.order:
        up = m
        while up is not None and up is not rmnt:
            up = up.parent
        if up is None:
            continue
        if m is rmnt and m.root is not rnode:
            continue
        out.append(MountEntry(m.source, path_of(proc.task.root, m, m.root), m.fstype, m.options))
    return out


class NotFound(Exception):
    """``argv[0]`` names no program of the simulated userland (runc's "exec: … not found")."""

    def __init__(self, prog: str) -> None:
        why = (
            f"stat {prog}: no such file or directory"
            if "/" in prog
            else ("executable file not found in $PATH")
        )
        super().__init__(f'exec: "{prog}": {why}')
        self.prog = prog


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def runnable(argv: list[str]) -> bool:
    """Whether the overlaysim shell can run ``argv[0]`` (one of its tools, a shell, sleep)."""
    from overlaysim.shell.registry import TOOLS

    prog = posixpath.basename(argv[0]) if argv else ""
    return prog in TOOLS or prog in _SHELLS or prog == "sleep"


def check_executable(
    argv: list[str], fs: Any = None, root: str | None = None, path: str = DEFAULT_PATH
) -> None:
    """Raise :class:`NotFound` unless ``argv[0]`` can be started: a program the shell runs,
    or (given ``fs`` and ``root``) a file found in the container like ``execvp`` would find
    it. Such a file is accepted here and fails later with ``exec format error``: the
    simulated machine has no program loader, as a kernel has none for a foreign binary."""
    if runnable(argv):
        return
    prog = argv[0] if argv else ""
    if fs is not None and root is not None and prog and _find(fs, root, prog, path):
        return
    raise NotFound(prog)


def _find(fs: Any, root: str, prog: str, path: str) -> bool:
    proc = fs.as_user(0, 0)
    try:
        proc.os.chroot(root)
        dirs = [""] if "/" in prog else [d or "." for d in path.split(":")]
        for d in dirs:
            try:
                st = proc.os.stat(posixpath.join(d, prog) if d else prog)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                return True
        return False
    except OSError:
        return False
    finally:
        if proc.task in fs.processes:
            fs.processes.remove(proc.task)


def run_in_root(
    fs: Any,
    root: str,
    argv: list[str],
    *,
    stdout: Any,
    stderr: Any,
    stdin: bytes = b"",
    lines: Callable[[], str] | None = None,
    env: Mapping[str, str] | Iterable[str] | None = None,
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
    hostname: str = "",
    readonly: bool = False,
) -> int:
    """Run ``argv`` chrooted to ``root``; returns the exit status.

    ``readonly`` (a runc spec's ``root.readonly``) puts a read-only view over ``root`` for
    the time of the process: an overlay without upper dir (``EROFS`` on every write), the
    same answer runc's read-only root mount gives.

    A shell reading its stdin runs ``stdin``, or, when ``lines`` is given (a terminal), one
    line at a time after a ``# `` prompt on stderr until EOF or ``exit``. ``sleep N`` lets
    N seconds of simulated time pass. Raises :class:`NotFound` for an unknown program.
    """
    from overlaysim.shell.executor import Shell

    check_executable(argv, fs, root)
    if not runnable(argv):
        _write(stderr, f"exec {argv[0]}: exec format error\n")
        return 255
    if posixpath.basename(argv[0]) == "sleep":
        secs = _sleep_seconds(argv[1:])
        if secs is None:
            _write(stderr, "sleep: invalid time interval\n")
            return 1
        if secs > 0 and hasattr(fs.clock, "now"):
            fs.clock.now += int(secs * 10**9)
        return 0
    script, from_stdin = command_line(argv)
    if from_stdin and lines is None:
        script = stdin.decode("utf-8", "surrogateescape")
    if readonly:
        with _read_only(fs, root):
            return run_in_root(
                fs, root, argv, stdout=stdout, stderr=stderr, stdin=stdin, lines=lines,
                env=env, cwd=cwd, uid=uid, gid=gid, hostname=hostname,
            )  # fmt: skip
    proc = fs.as_user(uid=0, gid=0)
    proc_fs = None
    try:
        # as runc: enter the root as root, mount proc (runc's spec does), then become the user
        proc.os.chroot(root)
        proc_fs = _mount_proc(proc)
        proc.os.chdir(cwd or "/")
        passwd, group = _names(proc, "/etc/passwd"), _names(proc, "/etc/group")
        proc.task.cred = Cred(uid, gid, frozenset({gid}))
        variables = _env(env)
        if hostname:
            variables.setdefault("HOSTNAME", hostname)
        sh = Shell(
            proc.os,
            mounts=lambda: _visible_mounts(proc),
            mount=proc.mount,
            umount=proc.umount,
            stdout=stdout,
            stderr=stderr,
            stdin=b"" if from_stdin else stdin,
            env=variables,
            cwd=cwd or "/",
            passwd=passwd or None,
            group=group or None,
        )
        if from_stdin and lines is not None:
            status = 0
            while not sh.exited:
                _write(stderr, "# ")
                line = lines()
                if not line:
                    _write(stderr, "\n")
                    break
                status = sh.run(line)
            return int(status)
        return int(sh.run(script or ""))
    finally:
        for fd in list(proc.task.fds):
            try:
                proc.os.close(fd)
            except OSError:
                pass
        if proc.task in fs.processes:
            fs.processes.remove(proc.task)
        if proc_fs is not None:
            try:
                fs.mount_table.detach(proc_fs)
            except OSError:
                pass  # the command mounted something on top: leave both


def _mount_proc(proc: Any) -> Any:
    """proc on the container's /proc for the time of the process, as runc mounts it in the
    container's own mount namespace (so the host's mount table never lists it afterwards);
    None when the root has no /proc directory or one is mounted there already."""
    from overlaysim.vfs.procfs import PROC_FLAGS

    try:
        mnt, node = proc.os._resolve("/proc")
        if not stat.S_ISDIR(node.mode) or (node is mnt.root and mnt.fstype == "proc"):
            return None
        proc.mount("proc", "/proc", "proc", PROC_FLAGS)
    except OSError:
        return None
    return proc.fs.mount_table.order[-1]


@contextmanager
def _read_only(fs: Any, root: str) -> Iterator[None]:
    """A lower-only overlay of ``root`` on itself (the kernel wants two lowers: an empty one)."""
    empty = f"/run/.overlaysim-ro-{len(fs.mount_table.order)}"
    fs.os.mkdir(empty, 0o700)
    try:
        fs.mount("overlay", root, "overlay", f"lowerdir={root}:{empty}")
        try:
            yield
        finally:
            fs.umount(root)
    finally:
        fs.os.rmdir(empty)


def _names(proc: Any, path: str) -> dict[int, str]:
    """id -> name from a passwd or group file of the process's root ({} if unreadable)."""
    try:
        with proc.open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return {}
    out: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


def _write(stream: Any, text: str) -> None:
    if isinstance(stream, io.TextIOBase):
        stream.write(text)
    else:
        stream.write(text.encode())
    flush = getattr(stream, "flush", None)
    if flush is not None:
        flush()


def _env(env: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, Mapping):
        return dict(env)
    out = {}
    for item in env:
        k, sep, v = str(item).partition("=")
        if sep:
            out[k] = v
    return out
