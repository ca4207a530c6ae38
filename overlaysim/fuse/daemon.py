"""The mount's lifecycle: check, import, mount, serve (in the foreground or as a daemon),
and at unmount write the upper dir back.

Without ``-f`` the command forks after the layers are imported; the parent returns only when
the child's FUSE session has answered the kernel's INIT (the mount is usable) or with the
child's one-line reason for failing. libfuse's own messages are captured until then, so a
refusal is one line, not libfuse's chatter. The daemon then detaches (new session, stdio on
/dev/null, stderr to a log beside its run record). SIGINT/SIGTERM/SIGHUP, ``umount``,
``fusermount3 -u`` and ``overlaysim umount`` all end the session the same way: libfuse
unmounts, the loop returns, the upper and work dirs are written back.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from typing import TextIO

from overlaysim.fuse import binding, explain, runstate, simulation, umount, writeback
from overlaysim.fuse.errors import FuseUnavailable, MountError, WriteBackError
from overlaysim.fuse.ops import Operations
from overlaysim.fuse.options import MountSpec

#: How long the command waits for a forked daemon's mount to answer the kernel's INIT.
READY_TIMEOUT = 60.0
#: What ends a session after the unmount: write the upper dir (or the world) back, then
#: remove the run record (or mark it failed, with the one-line reason).
Finish = Callable[[simulation.SimMount, runstate.Record], None]


def check_fuse() -> None:
    """FUSE usable here? Each missing piece is a one-line reason."""
    why = binding.available()
    if why is not None:
        raise FuseUnavailable(f"libfuse3 cannot be loaded ({why}); install libfuse3-3 (fuse3)")
    if not os.path.exists("/dev/fuse"):
        raise FuseUnavailable("/dev/fuse is missing (no FUSE in this kernel or container)")
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        raise FuseUnavailable("fusermount3 is missing (install fuse3) and we are not root")


def fuse_options(spec: MountSpec) -> list[str]:
    """The FUSE mount's own options: source and type for /proc/mounts, the VFS flags, and for
    root ``allow_other`` (every user reaches the files; the simulation checks permissions)
    and ``suid,dev`` (libfuse's default is nosuid,nodev; a kernel overlay mounted by root
    honours setuid bits and device nodes unless asked not to; the user's flags come last)."""
    opts = [f"fsname={spec.source.replace(',', '_')}", "subtype=overlaysim"]
    if os.geteuid() == 0:
        opts += ["allow_other", "suid", "dev"]
    return opts + spec.vfs_flags


def mount(spec: MountSpec, *, foreground: bool) -> None:
    """Mount ``spec``; in the foreground, return after the unmount and write-back."""
    claim(spec)
    lock = writeback.UpperLock(spec.upperdir) if spec.upperdir else None
    try:
        if spec.upperdir and spec.workdir:
            writeback.recover(spec.upperdir, spec.workdir)
        sim = simulation.build(spec)
        out = explain.open_output(spec.explain)
        run(spec.mountpoint, lambda notify: serve(sim, out, notify), foreground=foreground)
    finally:
        if lock is not None:
            lock.release()


def claim(spec: MountSpec) -> None:
    """Refuse at once, in one line, where no mount can be served: no FUSE here, no place for
    the mount records, or the mount point already served by a live daemon of ours."""
    check_fuse()
    try:
        runstate.ensure_dir()
    except OSError as e:
        raise MountError(f"cannot keep mount records in {runstate.state_dir()}: "
                         f"{e.strerror}") from None  # fmt: skip
    rec = runstate.load(spec.mountpoint)
    if rec is not None and rec.alive() and rec.status != runstate.FAILED:
        raise MountError(f"{spec.mountpoint}: already served by overlaysim (pid {rec.pid})")


def run(mountpoint: str, body: Callable[[int | None], None], *, foreground: bool) -> None:
    """Run ``body`` (which serves the mount until it is unmounted) here, or in a daemon: the
    daemon gets a pipe to say "ok" once the mount answers (``serve`` does it) or why not; this
    process returns then, or raises the daemon's one-line reason as a MountError."""
    if foreground:
        body(None)
    else:
        _daemonize(mountpoint, body)


def _daemonize(mountpoint: str, body: Callable[[int], None]) -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        msg = _await_ready(r, pid, mountpoint)
        if msg == "ok":
            return
        raise MountError(msg or f"the mount daemon (pid {pid}) ended before the mount was ready")
    os.close(r)
    code = 1
    logged = False
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        log = os.open(runstate.log_path(mountpoint),
                      os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # fmt: skip
        os.dup2(log, 2)
        os.close(log)
        logged = True
        os.chdir("/")
        body(w)
        code = 0
    except BaseException as e:  # report to the parent (if it still listens) and the log
        line = one_line(e)
        with contextlib.suppress(OSError):
            os.write(w, f"{line}\n".encode())
        if logged:
            with contextlib.suppress(OSError):
                os.write(2, f"overlaysim mount: {line}\n".encode())
    finally:
        os._exit(code)


def one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror + (f": {e.filename}" if e.filename else "")
    return " ".join(str(e).split()) or type(e).__name__


def _await_ready(r: int, pid: int, mountpoint: str) -> str:
    """The child's first words ("ok" or why not); a child silent for READY_TIMEOUT seconds
    is killed and its mount detached, so the command never hangs."""
    data = b""
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    umount.detach(mountpoint, lazy=True)
                runstate.remove(mountpoint)
                return f"the mount daemon did not answer within {READY_TIMEOUT:g}s and was stopped"
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
    return data.decode("utf-8", "replace").strip()


def serve(sim: simulation.SimMount, out: TextIO | None, notify: int | None, *,
          finish: Finish | None = None, world: str = "") -> None:  # fmt: skip
    """Serve ``sim`` on its mount point until the unmount, then ``finish`` (by default the
    write-back to ``--upperdir``); ``world`` names the world file a container's mount saves."""
    spec = sim.spec
    rec = runstate.new(spec.mountpoint, spec.upperdir, spec.workdir, world)
    rec.save()
    captured = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the session)
    stderr = os.dup(2)
    os.dup2(captured.fileno(), 2)
    state = {"ready": False}

    def ready() -> None:
        os.dup2(stderr, 2)  # libfuse's start-up is over: errors go where they belong
        state["ready"] = True
        rec.status = runstate.SERVING
        rec.save()
        if notify is not None:
            os.write(notify, b"ok\n")
            os.close(notify)

    stream = explain.EventStream(sim, out)
    stream(0)  # the mount's own events, before any request
    ops = Operations(sim.proc, binding.context, after=stream, ready=ready)
    try:
        binding.serve(ops, spec.mountpoint, fuse_options(spec))
    except RuntimeError:
        pass  # libfuse said why on stderr (captured)
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
    if not state["ready"]:
        captured.seek(0)
        lines = [x.strip() for x in captured.read().decode("utf-8", "replace").splitlines()]
        why = next((x for x in reversed(lines) if x), "libfuse refused the mount")
        runstate.remove(spec.mountpoint)
        raise MountError(f"cannot mount {spec.mountpoint}: {why.removeprefix('fuse: ')}")
    captured.close()
    (finish or _write_back)(sim, rec)


def _write_back(sim: simulation.SimMount, rec: runstate.Record) -> None:
    spec = sim.spec
    rec.status = runstate.WRITING
    rec.save()
    try:
        if spec.upperdir is not None and spec.workdir is not None and not spec.live:
            writeback.write_back_pair(sim.fs, sim.upper, spec.upperdir, sim.work, spec.workdir)
    except (WriteBackError, KeyboardInterrupt) as e:
        msg = str(e) if isinstance(e, WriteBackError) else (
            f"write-back interrupted; {spec.upperdir} was left as it was")
        rec.status, rec.error = runstate.FAILED, msg
        rec.save()
        raise WriteBackError(msg) from None
    runstate.remove(spec.mountpoint)
