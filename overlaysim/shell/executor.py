"""The ``Shell``: runs parsed command lines against an os-like module, dash style.

Pipes are in memory (each stage runs to completion, its output is the next stage's input)
because every tool is a Python function; redirections open files through the os-like module,
so ``echo x > /merged/f`` goes through the simulated overlay exactly like the kernel path.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from overlaysim.shell.chroot import chroot
from overlaysim.shell.context import (
    BufferSink,
    Ctx,
    FdSink,
    Machine,
    NullSink,
    ShellExit,
    ShellState,
    Sink,
    StreamSink,
    UsageFailure,
    Users,
    read_all,
    strerror,
)
from overlaysim.shell.expand import Expander
from overlaysim.shell.lexer import ShellSyntaxError
from overlaysim.shell.parser import AndOr, Command, Parser, Pipeline
from overlaysim.shell.registry import TOOLS, USAGE, USAGE_STATUS


class Shell:
    """A small POSIX shell over an os-like module (real ``os`` or ``HostFS.os``).

    ``Shell(o).run("ls -la /merged")`` returns the exit status; output goes to ``stdout`` and
    ``stderr`` (binary or text streams). ``mounts`` returns entries with ``source``, ``target``,
    ``fstype`` and ``options`` for ``mount``; ``mount``/``umount`` callables let the shell
    mount and unmount (``fs.mount``/``fs.umount``). Names: ``passwd``/``group`` map ids to
    names (default: only 0 is ``root``). ``clock`` is "now" for ``ls``'s recent-file rule.
    ``root`` (a directory of a HostFS, with ``o`` its ``fs.os``) runs every command chrooted
    there, as ``docker exec`` does in a container's merged directory.
    """

    def __init__(
        self,
        o: Any,
        *,
        mounts: Callable[[], Iterable[Any]] | None = None,
        stdout: IO[bytes] | IO[str] | None = None,
        stderr: IO[bytes] | IO[str] | None = None,
        stdin: bytes = b"",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        passwd: Mapping[int, str] | None = None,
        group: Mapping[int, str] | None = None,
        clock: Callable[[], float] | None = None,
        uid: int | None = None,
        gid: int | None = None,
        groups: tuple[int, ...] | None = None,
        mount: Callable[[str, str, str, str], None] | None = None,
        umount: Callable[[str], None] | None = None,
        name: str = "sh",
        root: str | None = None,
    ) -> None:
        if root is not None and root != "/":
            view = chroot(o, root, mounts, mount, umount)
            o, mounts, mount, umount = view.o, view.mounts, view.mount, view.umount
        self.o = o
        self.name = name
        self.stdin = stdin
        self.out: Sink = StreamSink(stdout if stdout is not None else sys.stdout)
        self.err: Sink = StreamSink(stderr if stderr is not None else sys.stderr)
        if cwd is None:
            getcwd = getattr(o, "getcwd", None)
            cwd = getcwd() if getcwd is not None else "/"
        variables = {"HOME": "/root", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
                     ":/sbin:/bin", "IFS": " \t\n", "PWD": cwd}
        variables.update(env or {})
        self.state = ShellState(cwd=cwd, vars=variables)
        self.exited = False  # set by ``exit`` at top level: an interactive loop stops here
        #: called after each top-level command list with it and its status (``sh --explain``)
        self.after_command: Callable[[AndOr, int], None] | None = None
        cred = getattr(getattr(o, "_t", None), "cred", None)  # a HostFS process's credentials
        if uid is None:
            uid = getattr(o, "getuid", lambda: getattr(cred, "uid", 0))()
        if gid is None:
            gid = getattr(o, "getgid", lambda: getattr(cred, "gid", 0))()
        self.machine = Machine(
            mounts=mounts,
            do_mount=mount,
            do_umount=umount,
            users=Users(passwd, group),
            clock=clock or time.time,
            uid=uid,
            gid=gid,
            groups=groups if groups is not None else (gid,),
        )

    @property
    def cwd(self) -> str:
        return self.state.cwd

    def run(self, cmdline: str) -> int:
        """Run a command line (several lines allowed); returns the last exit status."""
        return self._script(cmdline, self.state, self.stdin, self.out, self.err)

    def run_capture(self, cmdline: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
        """Run and return (status, stdout bytes, stderr bytes): for tests and the CLI."""
        out, err = BufferSink(), BufferSink()
        status = self._script(cmdline, self.state, stdin, out, err)
        return status, out.getvalue(), err.getvalue()

    # -- structure ---------------------------------------------------------------------------
    def _script(self, text: str, state: ShellState, stdin: bytes, out: Sink, err: Sink) -> int:
        status = state.status
        try:
            for node in Parser(text).commands():
                status = self._and_or(node, state, stdin, out, err)
                if self.after_command is not None and state is self.state:
                    self.after_command(node, status)
        except ShellSyntaxError as e:
            err.write(f"{self.name}: {e.line}: Syntax error: {e.message}\n".encode())
            status = 2
        except ShellExit as e:
            status = e.status
            if state is self.state:
                self.exited = True
        state.status = status
        return status

    def _and_or(self, node: AndOr, state: ShellState, stdin: bytes, out: Sink, err: Sink) -> int:
        status = self._pipeline(node.first, state, stdin, out, err)
        state.status = status
        for op, pl in node.rest:
            if (op == "&&") != (status == 0):
                continue
            status = self._pipeline(pl, state, stdin, out, err)
            state.status = status
        return status

    def _pipeline(self, pl: Pipeline, state: ShellState, stdin: bytes, out: Sink, err: Sink) -> int:
        if len(pl.commands) == 1:
            status = self._simple(pl.commands[0], state, stdin, out, err)
        else:
            data = stdin
            status = 0
            for i, cmd in enumerate(pl.commands):
                last = i == len(pl.commands) - 1
                sink: Sink = out if last else BufferSink()
                # each stage is a subshell: cd or assignments in a pipeline do not leak
                status = self._simple(cmd, state.copy(), data, sink, err)
                if isinstance(sink, BufferSink):
                    data = sink.getvalue()
        if pl.negate:
            status = 0 if status else 1
        return status

    def _capture(self, text: str, state: ShellState, err: Sink) -> bytes:
        sink = BufferSink()
        sub = state.copy()
        self._script(text, sub, b"", sink, err)
        state.status = sub.status
        return sink.getvalue()

    # -- simple commands ---------------------------------------------------------------------
    def _simple(self, cmd: Command, state: ShellState, stdin: bytes, out: Sink, err: Sink) -> int:
        exp = Expander(self.o, state, lambda t: self._capture(t, state, err), self.name)
        argv = exp.fields(cmd.words)
        assigns = [(n, exp.single(w)) for n, w in cmd.assigns]
        fds: dict[int, Any] = {0: stdin, 1: out, 2: err}
        opened: list[FdSink] = []
        try:
            for r in cmd.redirs:
                target = exp.single(r.target)
                problem = self._redirect(r.fd, r.op, target, state, fds, opened)
                if problem is not None:
                    # to stderr as redirected so far: dash applies redirections left to right,
                    # so `cmd 2>/dev/null >/dir` fails silently (found by the dockerd oracle)
                    where = fds[2] if hasattr(fds[2], "write") else err
                    where.write(f"{self.name}: {cmd.line}: {problem}\n".encode("utf-8",
                                                                              "surrogateescape"))
                    return 2
            if not argv:
                state.vars.update(assigns)
                return 0
            stdin_b = fds[0] if isinstance(fds[0], bytes) else b""
            run_state = state
            if assigns:
                run_state = state.copy()
                run_state.vars.update(assigns)
            status = self._invoke(argv, run_state, stdin_b, fds[1], fds[2], cmd.line)
            if run_state is not state:
                state.cwd, state.oldpwd = run_state.cwd, run_state.oldpwd
            return status
        finally:
            for f in opened:
                try:
                    f.close()
                except OSError:
                    pass

    def _redirect(
        self,
        fd: int,
        op: str,
        target: str,
        state: ShellState,
        fds: dict[int, Any],
        opened: list[FdSink],
    ) -> str | None:
        if op in (">&", "<&"):
            if target == "-":
                fds[fd] = NullSink() if fd else b""
                return None
            if not target.isdigit() or int(target) not in fds:
                return f"{target}: Bad file descriptor"
            fds[fd] = fds[int(target)]
            return None
        path = target if target.startswith("/") else state.cwd.rstrip("/") + "/" + target
        if op == "<":
            if target == "/dev/null":
                fds[fd] = b""
                return None
            try:
                data = read_all(self.o, path)
            except OSError as e:
                return f"cannot open {target}: {_dash_errmsg(e, creating=False)}"
            fds[fd] = data if fd == 0 else NullSink()
            return None
        if op == "<>":
            return "<> redirections are not supported by this shell"
        if target == "/dev/null":
            fds[fd] = NullSink()
            return None
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if op == ">>" else os.O_TRUNC)
        try:
            handle = self.o.open(path, flags, 0o666)
        except OSError as e:
            return f"cannot create {target}: {_dash_errmsg(e, creating=True)}"
        sink = FdSink(self.o, handle)
        opened.append(sink)
        fds[fd] = sink if fd != 0 else b""
        return None

    def _invoke(
        self, argv: list[str], state: ShellState, stdin: bytes, out: Sink, err: Sink, line: int
    ) -> int:
        name = argv[0]
        key = name.rsplit("/", 1)[-1] if "/" in name else name
        tool = TOOLS.get(key)
        if tool is None or ("/" in name and not _plausible_path(name)):
            err.write(f"{self.name}: {line}: {name}: not found\n".encode("utf-8", "surrogateescape"))
            return 127
        ctx = Ctx(self.o, state, self.machine, stdin, out, err, prog=key,
                  run_sub=lambda t: self._capture(t, state, err), line=line,
                  shell_name=self.name)  # fmt: skip
        args = argv[1:]
        if "--help" in args[: args.index("--") if "--" in args else len(args)] and key in USAGE:
            ctx.write(USAGE[key] + "\n")
            return 0
        try:
            return tool(ctx, args)
        except UsageFailure as u:
            ctx.error(u.message)
            if u.hint:
                err.write(f"Try '{key} --help' for more information.\n".encode())
            return USAGE_STATUS.get(key, 1)
        except ShellExit:
            raise
        except OSError as e:
            ctx.error(strerror(e))
            return 1
        except (ValueError, OverflowError) as e:  # a value no check above foresaw: one line
            ctx.error(str(e))
            return 1


def _plausible_path(name: str) -> bool:
    """``/bin/ls`` and ``/usr/bin/ls`` run the builtin tool; other paths are not programs here."""
    head = name.rsplit("/", 1)[0]
    return head in ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin")


def _dash_errmsg(exc: OSError, creating: bool) -> str:
    """dash's wording: ENOENT/ENOTDIR read 'Directory nonexistent' or 'No such file'."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "Directory nonexistent" if creating else "No such file"
    return strerror(exc)
