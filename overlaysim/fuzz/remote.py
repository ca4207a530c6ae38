"""The client side of the JSON-lines protocol: an external command as a mount factory.

The command is started once per campaign process (lazily, and again after a fork) and
reused: each case is ``setup`` ... ``close``, which is far cheaper than a process per case
(a Python server starts in ~50 ms, a case takes a few). Every reply has a deadline, so a
server that hangs, dies or writes garbage stops the campaign with one line
(:class:`~overlaysim.errors.TargetError`), never a hang or a traceback.
"""

from __future__ import annotations

import atexit
import json
import os
import posixpath
import selectors
import shlex
import shutil
import subprocess
import tempfile
import time
from typing import IO, TYPE_CHECKING, Any, NoReturn

from overlaysim.errors import TargetError
from overlaysim.fuzz import protocol as P
from overlaysim.testing import strategies as S
from overlaysim.testing.layers import LayerStack, xattr_prefix_for

if TYPE_CHECKING:
    from overlaysim.fuzz.targets import Target

DEFAULT_TIMEOUT = 10.0


class RemoteProcess:
    """One running server; requests are strictly one line out, one line back."""

    def __init__(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.argv, self.timeout, self.label = argv, timeout, shlex.join(argv)
        # kept open for the server's whole life: its last line explains a failure
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, start_new_session=True)  # fmt: skip
        except OSError as e:
            raise TargetError(f"fuzz target {self.label!r} cannot start: {e.strerror}") from None
        self.pid = os.getpid()
        self._buf = b""
        self.hello = self._read("the greeting")
        if self.hello.get(P.GREETING_KEY) != P.VERSION:
            self.kill()
            raise TargetError(f"fuzz target {self.label!r} does not speak "
                              f"overlaysim-fuzz-protocol {P.VERSION} "
                              f"(greeting: {json.dumps(self.hello)[:120]})")  # fmt: skip
        atexit.register(self.stop)

    def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the reply (``ok``/``errno``); ``error`` -> TargetError."""
        assert self.proc.stdin is not None
        what = msg.get("call") or msg.get("control")
        try:
            self.proc.stdin.write(P.dumps(msg))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._fail(f"stopped reading requests (at {what!r})")
        reply = self._read(repr(what))
        if "error" in reply:
            self._fail(f"refused {what!r}: {str(reply['error'])[:200]}")
        if "ok" not in reply and "errno" not in reply:
            self._fail(f"replied to {what!r} without ok/errno: {json.dumps(reply)[:120]}")
        return reply

    def _read(self, what: str) -> dict[str, Any]:
        out = self.proc.stdout
        assert out is not None
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self._fail(f"no reply to {what} within {self.timeout:g}s")
                chunk = os.read(out.fileno(), 1 << 16)
                if not chunk:
                    self._fail(f"exited before replying to {what}")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except ValueError:
            self._fail(f"replied to {what} with a line that is not JSON: {line[:80]!r}")
        if not isinstance(msg, dict):
            self._fail(f"replied to {what} with {line[:80]!r}, not a JSON object")
        return msg

    def _fail(self, why: str) -> NoReturn:
        self.kill()
        tail = self._stderr_tail()
        raise TargetError(f"fuzz target {self.label!r} {why}" + (f" (stderr: {tail})" if tail else ""))

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return lines[-1][:200] if lines else ""

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """End of input, then a grace period, then SIGKILL: the server cleans up itself."""
        if self.pid != os.getpid() or self.proc.poll() is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


class RemoteOS:
    """An ``os`` look-alike whose filesystem calls run in the server."""

    path = posixpath
    fsdecode, fsencode = staticmethod(os.fsdecode), staticmethod(os.fsencode)
    major, minor, makedev = staticmethod(os.major), staticmethod(os.minor), staticmethod(os.makedev)

    def __init__(self, server: RemoteProcess) -> None:
        self._server = server

    def __getattr__(self, name: str) -> Any:
        if name in P.CALLS:
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        if name.isupper() and hasattr(os, name):  # O_*, XATTR_*, S_* constants are Linux's
            return getattr(os, name)
        raise AttributeError(name)

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        reply = self._server.request({"call": name, "args": P.encode_value(list(args)),
                                      "kwargs": {k: P.encode_value(v) for k, v in kwargs.items()}})  # fmt: skip
        if "errno" in reply:
            code = P.errno_number(reply["errno"])
            raise OSError(code, os.strerror(code), args[0] if args else None)
        return P.decode_value(reply["ok"])

    def renameat2(self, src: str, dst: str, flags: int = 0) -> None:
        self._call("renameat2", (src, dst, flags), {})


class RemoteMount:
    """One case on the server: the mount interface of :mod:`overlaysim.testing.differential`."""

    def __init__(self, server: RemoteProcess, stack: LayerStack, options: str) -> None:
        self._server, self._open = server, False
        reply = server.request({"control": "setup", "layers": P.stack_to_json(stack), "options": options,
                                "xattr_prefix": xattr_prefix_for(options)})  # fmt: skip
        self.os: Any = RemoteOS(server)
        self.upper_os = self.work_os = self.os
        if "errno" in reply:
            server.request({"control": "close"})
            code = P.errno_number(reply["errno"])
            raise OSError(code, os.strerror(code), "mount")
        where = reply["ok"]
        if not isinstance(where, dict) or not isinstance(where.get("mount"), str):
            server._fail(f"answered setup without a mount path: {json.dumps(reply)[:120]}")
        self._open = True
        self.mount_path: str = where["mount"]
        self.upper_root: str | None = where.get("upper")
        self.work_root: str | None = where.get("work")

    def _control(self, call: str) -> None:
        reply = self._server.request({"control": call})
        if "errno" in reply:
            code = P.errno_number(reply["errno"])
            raise OSError(code, os.strerror(code), self.mount_path)

    def umount(self) -> None:
        self._control("umount")

    def remount(self) -> None:
        self._control("remount")

    def close(self) -> None:
        if self._open:
            self._open = False
            if self._server.alive():
                self._control("close")


class CommandFactory:
    """A picklable mount factory for a command line; the server starts on first use in each
    process (a fork or a cluster worker gets its own)."""

    def __init__(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.argv, self.timeout = argv, timeout
        self._server: RemoteProcess | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (CommandFactory, (self.argv, self.timeout))

    def server(self) -> RemoteProcess:
        if self._server is None or not self._server.alive():
            self._server = RemoteProcess(self.argv, self.timeout)
        return self._server

    def __call__(self, stack: LayerStack, options: str) -> RemoteMount:
        return RemoteMount(self.server(), stack, options)

    def probe(self) -> tuple[bool, str]:
        try:
            hello = self.server().hello
        except TargetError as e:
            return False, str(e)
        return True, f"{hello.get('server', self.argv[0])} speaks protocol {P.VERSION}"


def parse_command(spec: str) -> list[str]:
    """``--against`` text -> argv; :class:`TargetError` when it cannot be a command."""
    try:
        argv = shlex.split(spec)
    except ValueError as e:
        raise TargetError(f"--against {spec!r}: {e}") from None
    if not argv:
        raise TargetError("--against needs a value: kernel, fuse-overlayfs, simulator or a command")
    exe = argv[0]
    if not (shutil.which(exe) or ("/" in exe and os.access(exe, os.X_OK))):
        raise TargetError(f"--against {spec!r}: not kernel, fuse-overlayfs or simulator, and "
                          f"{exe!r} is not an executable command")  # fmt: skip
    return argv


def command_target(spec: str, *, timeout: float | None = None) -> Target:
    """A :class:`~overlaysim.fuzz.targets.Target` for a protocol server, judged against the
    simulator on the merged view (a third party's upper/work layout is its own business)."""
    from overlaysim.fuzz.targets import Target
    from overlaysim.testing.simulator import simulator_factory

    argv = parse_command(spec)
    if timeout is None:
        timeout = float(os.environ.get("OVERLAYSIM_FUZZ_TIMEOUT", DEFAULT_TIMEOUT))
    factory = CommandFactory(argv, timeout)
    return Target(spec, factory, ("merged",), (), round_trip=False, hardlinks=True,
                  profiles=tuple(sorted(S.PROFILES)), versus=simulator_factory,
                  probe=factory.probe, note="an external command over overlaysim-fuzz-protocol 1")  # fmt: skip
