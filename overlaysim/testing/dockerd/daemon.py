"""A private real dockerd: the judge of the simulated machine, as the kernel is of the engine.

It runs on its own temp data-root, exec-root, pidfile and socket, never the system daemon's,
with no network (``--bridge=none``, no iptables), so a test cannot disturb the host and the
host cannot disturb the test. ``start`` waits until the API answers; ``stop`` ends it, unmounts
whatever it left mounted (a killed daemon leaves container rootfs overlays) and removes the
directories. Where it cannot start (not root, no ``dockerd``, no overlay2) the reason is raised
as :class:`DockerdUnavailable`, which tests turn into a skip that says why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from types import TracebackType

from overlaysim.errors import OverlaySimError

#: The client that matches Debian's dockerd 20.10 (``/usr/local/bin/docker`` may be another).
CLIENTS = ("/usr/bin/docker", "docker")
START_TIMEOUT = 60.0


class DockerdUnavailable(OverlaySimError):
    """The real daemon cannot run here; the message says why (a skip reason)."""


def _client() -> str:
    for c in CLIENTS:
        found = shutil.which(c)
        if found:
            return found
    raise DockerdUnavailable("no docker client (install the docker.io package: make sysdeps)")


def _mounts_under(root: str) -> list[str]:
    """Mount points below ``root``, deepest first (from /proc/self/mountinfo)."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                out.append(point)
    return sorted(out, key=len, reverse=True)


class RealDockerd:
    """``with RealDockerd() as d: d.client`` -- a started daemon and the argv that talks to it."""

    def __init__(self, base: str | None = None) -> None:
        self._own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="overlaysim-dockerd-")
        self.data_root = os.path.join(self.base, "root")
        self.sock = os.path.join(self.base, "docker.sock")
        self.exec_root = os.path.join(self.base, "exec")
        self.pidfile = os.path.join(self.base, "dockerd.pid")
        self.log = os.path.join(self.base, "dockerd.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: list[str] = []
        self.version = ""

    def __enter__(self) -> RealDockerd:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if os.geteuid() != 0:
            raise DockerdUnavailable("a private dockerd needs root (mounts, namespaces)")
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise DockerdUnavailable("no dockerd (install the docker.io package: make sysdeps)")
        self.client = [_client(), "-H", f"unix://{self.sock}"]
        os.makedirs(self.data_root, exist_ok=True)
        # The data root on a tmpfs of its own, as the simulated machine's is tmpfs-like: the
        # same backing fs on both sides (docker info's "Backing Filesystem"), nothing of the
        # host's disk used, and one umount removes it all.
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0710,size=8g", "tmpfs",
                            self.data_root], capture_output=True, text=True, check=False)  # fmt: skip
        if r.returncode != 0:
            self.stop()
            raise DockerdUnavailable(f"cannot mount a tmpfs for the data root: {r.stderr.strip()}")
        # A mount namespace of its own: containers copy the daemon's mounts when they are
        # created, and must not copy (and pin) the overlays a kernel-oracle test mounts later.
        unshare = shutil.which("unshare")
        wrap = [unshare, "--mount", "--propagation", "private"] if unshare else []
        argv = [*wrap, dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--storage-driver=overlay2", "--data-root", self.data_root, "-H",
                f"unix://{self.sock}", "--exec-root", self.exec_root, "--pidfile", self.pidfile,
                "--containerd-namespace", "overlaysim", "--containerd-plugins-namespace",
                "overlaysim-plugins"]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reason = self._log_tail()
                self.stop()
                raise DockerdUnavailable(f"dockerd exited at start: {reason}")
            r = subprocess.run([*self.client, "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, text=True, check=False)
            if r.returncode == 0:
                self.version = r.stdout.strip()
                return
            time.sleep(0.2)
        self.stop()
        raise DockerdUnavailable(f"dockerd did not answer within {START_TIMEOUT:.0f}s")

    def _log_tail(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                lines = [ln.strip() for ln in f if ln.strip()]
        except OSError:
            return "no log"
        return lines[-1][-300:] if lines else "no log"

    def stop(self) -> None:
        """End the daemon (SIGTERM, then SIGKILL), unmount its leftovers, remove its files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        for point in _mounts_under(self.base):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)
