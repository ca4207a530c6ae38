"""Run one conformance scenario on the real kernel or on HostFS.

Kernel side: every scenario gets its own freshly mounted tmpfs and runs in a forked child
(so chdir/umask/chroot/setresuid never leak into pytest); observations come back as JSON
through a pipe.  HostFS side: a fresh ``HostFS()`` per scenario, with the non-root part run
through ``fs.as_user(...)``.  Both sides use the same umask, base dir mode and extra mounts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .recorder import Recorder

ScenarioFn = Callable[[Any, str, Recorder], None]

USER_UID = 1000
USER_GID = 1000
USER_GROUPS = (1000, 2000)
OTHER_UID = 1001
OTHER_GID = 3000
UMASK = 0o022
HOSTFS_BASE = "/srv/conformance/base"


@dataclass(frozen=True)
class Scenario:
    """One scenario: ``fn`` runs as root, or as USER_UID if ``user`` (after a root ``setup``)."""

    name: str
    fn: ScenarioFn
    setup: ScenarioFn | None = None
    user: bool = False
    mounts: tuple[str, ...] = field(default=())


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    *, setup: ScenarioFn | None = None, user: bool = False, mounts: tuple[str, ...] = ()
) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register ``sc_<name>`` as a scenario."""

    def deco(fn: ScenarioFn) -> ScenarioFn:
        name = fn.__name__.removeprefix("sc_")
        if name in SCENARIOS:
            raise ValueError(f"duplicate scenario {name}")
        SCENARIOS[name] = Scenario(name, fn, setup, user, mounts)
        return fn

    return deco


def diff(kernel: dict[str, Any], sim: dict[str, Any]) -> str:
    """A readable key-by-key diff (kernel first), empty when equal."""
    lines = []
    for key in list(kernel) + [k for k in sim if k not in kernel]:
        k = kernel.get(key, "<missing>")
        s = sim.get(key, "<missing>")
        if k != s:
            lines.append(f"  {key}:\n    kernel: {json.dumps(k)}\n    hostfs: {json.dumps(s)}")
    return "\n".join(lines)


# -- kernel side ----------------------------------------------------------------------------
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
MNT_DETACH = 2


def mount_tmpfs(target: str) -> None:
    """mount(2) a small tmpfs on ``target``; OSError with the kernel's errno on failure."""
    rc = _libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0, b"size=64m")
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), target)


def umount(target: str) -> None:
    """umount(2), falling back to a lazy detach so a busy mount never survives a test."""
    if _libc.umount2(target.encode(), 0) != 0 and _libc.umount2(target.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), target)


def kernel_unavailable() -> str | None:
    """Why the kernel oracle cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "kernel oracle needs root (mount -t tmpfs, setresuid to a test uid)"
    tmp = tempfile.mkdtemp(prefix="osim-probe-")
    try:
        mount_tmpfs(tmp)
    except OSError as exc:
        return f"mount -t tmpfs not permitted here: {exc}"
    else:
        umount(tmp)
    finally:
        os.rmdir(tmp)
    return None


def drop_privileges() -> None:
    """Become USER_UID for real (the kernel side of ``fs.as_user``)."""
    os.setgroups(list(USER_GROUPS))
    os.setresgid(USER_GID, USER_GID, USER_GID)
    os.setresuid(USER_UID, USER_UID, USER_UID)


def _child(sc: Scenario, base: str, wfd: int) -> None:
    try:
        signal.alarm(30)
        os.umask(UMASK)
        os.chdir("/")
        rec = Recorder(base)
        if sc.setup is not None:
            sc.setup(os, base, rec)
        if sc.user:
            drop_privileges()
        sc.fn(os, base, rec)
        payload: dict[str, Any] = {"obs": rec.obs}
    except BaseException:
        payload = {"error": traceback.format_exc()}
    data = json.dumps(payload).encode()
    while data:
        data = data[os.write(wfd, data) :]


def run_kernel(sc: Scenario) -> dict[str, Any]:
    """Run ``sc`` on a fresh tmpfs in a forked child; return its observations."""
    top = tempfile.mkdtemp(prefix="osim-conf-")
    mounted: list[str] = []
    try:
        os.chmod(top, 0o755)
        mount_tmpfs(top)
        mounted.append(top)
        base = os.path.join(top, "base")
        os.mkdir(base)
        os.chmod(base, 0o755)
        for rel in sc.mounts:
            p = os.path.join(base, rel)
            os.makedirs(p)
            mount_tmpfs(p)
            mounted.append(p)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(r)
            try:
                _child(sc, base, w)
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            raw = f.read()
        _, status = os.waitpid(pid, 0)
        if not raw:
            raise RuntimeError(f"kernel child for {sc.name} died: status {status}")
        payload = json.loads(raw)
        if "error" in payload:
            raise RuntimeError(f"kernel side of {sc.name} crashed:\n{payload['error']}")
        obs: dict[str, Any] = payload["obs"]
        return obs
    finally:
        for p in reversed(mounted):
            umount(p)
        shutil.rmtree(top, ignore_errors=True)


# -- HostFS side ----------------------------------------------------------------------------
def hostfs_unavailable() -> str | None:
    """Why HostFS cannot be imported yet, or None."""
    try:
        from overlaysim import HostFS  # noqa: F401
    except ImportError as exc:
        return f"overlaysim.HostFS not importable yet: {exc}"
    return None


def run_hostfs(sc: Scenario) -> dict[str, Any]:
    """Run ``sc`` on a fresh HostFS; return its observations (JSON round-tripped)."""
    from overlaysim import HostFS

    fs = HostFS()
    base = HOSTFS_BASE
    fs.os.umask(UMASK)
    fs.os.makedirs(base)
    fs.os.chmod(base, 0o755)
    for rel in sc.mounts:
        p = base + "/" + rel
        fs.os.makedirs(p)
        fs.mount("tmpfs", p, "tmpfs")
    rec = Recorder(base)
    if sc.setup is not None:
        sc.setup(fs.os, base, rec)
    o = fs.os
    if sc.user:
        view = fs.as_user(uid=USER_UID, gid=USER_GID, groups=USER_GROUPS)
        o = view.os
        o.umask(UMASK)
    sc.fn(o, base, rec)
    obs: dict[str, Any] = json.loads(json.dumps(rec.obs))
    return obs
