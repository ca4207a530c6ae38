"""A real mount point served by a userspace daemon, over layers built as the kernel oracle
builds them: the shared half of the FUSE targets (``fuse-overlayfs``, ``overlaysim-fuse``).

:class:`DaemonOverlay` is a :class:`~overlaysim.testing.kernel.KernelOverlay` (same layer
dirs, ``l0..``/``u``/``w`` under a temp base, lowers on tmpfs of their own for
``separate_fs``) whose ``mount()`` starts a daemon instead of calling ``mount(2)``. Every op
of a differential run is then a real syscall on a real mount point, whoever serves it. The
daemon runs in its own session as our child; it is unmounted and reaped whatever happened,
and killed if it does not exit by itself. Subclasses only say how to start it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from typing import Protocol

from overlaysim.errors import TargetError
from overlaysim.testing.kernel import MNT_DETACH, KernelOverlay, mount_info, umount
from overlaysim.testing.layers import LayerStack

MOUNT_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class Child(Protocol):
    """What is needed of a daemon process (``subprocess.Popen`` has it)."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class DaemonOverlay(KernelOverlay):
    """A stack mounted by a daemon; ``name`` is what messages call it."""

    name = "daemon"

    def __init__(self, stack: LayerStack, options: str = "") -> None:
        self.proc: Child | None = None
        super().__init__(stack, options)
        self.log_path = os.path.join(self.base, "daemon.log")

    def start(self, log: int) -> Child:
        """Start the daemon serving ``self.mount_path`` (stdout and stderr to ``log``)."""
        raise TargetError(f"{type(self).__name__} does not say how to start its daemon")

    def log_lines(self) -> list[str]:
        """The daemon's messages, noise a subclass knows about left out."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self) -> str:
        lines = [ln.strip() for ln in self.log_lines() if ln.strip()]
        return lines[-1] if lines else "(no message)"

    def mount(self) -> None:
        """Start the daemon and wait until the mount point is a different filesystem; a
        daemon that exits first refused the mount (EINVAL with its message)."""
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.proc = self.start(log)
        except OSError as e:
            raise TargetError(f"cannot start {self.name}: {e.strerror}") from None
        finally:
            os.close(log)
        parent = os.stat(self.base).st_dev
        deadline = time.monotonic() + MOUNT_TIMEOUT
        delay = 0.0005
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                raise OSError(errno.EINVAL, f"{self.name} refused the mount: {self.log_tail()}",
                              self.mount_path)  # fmt: skip
            try:
                if os.stat(self.mount_path).st_dev != parent:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TargetError(f"{self.name} did not mount within {MOUNT_TIMEOUT:g}s: "
                                  f"{self.log_tail()}")  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        self.mounted = True

    def umount(self) -> None:
        if self.mounted:
            umount(self.mount_path)
            self.mounted = False
            self.unmounted(self.stop())
        else:
            self.stop()

    def unmounted(self, code: int | None) -> None:
        """Called after an unmount with the daemon's exit code (None: none was running)."""

    def stop(self) -> int | None:
        """Reap the daemon (it exits once unmounted; SIGKILL if it lingers); its exit code,
        None when there was none to reap."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def close(self) -> None:
        """Unmount (lazily if busy), reap the daemon, then what KernelOverlay frees."""
        try:
            self.detach()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
            self.stop()
            if mount_info(self.mount_path) is not None:  # a daemon that died mounted
                umount(self.mount_path, MNT_DETACH)
            super().close()
