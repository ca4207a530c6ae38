"""Real programs on two mounts of the same lowers: a kernel overlay (``mount -t overlay``) and
the simulation mounted through FUSE (``overlaysim mount``), then the upper dirs they leave
compared with the same normalised snapshot (overlaysim.testing.observe).

What FUSE cannot express, and how the comparison accounts for it:

* st_dev: every file of a FUSE mount has the FUSE device; st_ino is the simulation's
  numbering (the kernel's is the real fs's). Programs that store stat data in files (git's
  index: dev, ino, ctime, mtime of every tracked file) write different bytes; such files
  are compared by type, mode, owner and size only (``STAT_CACHES``).
* Times: the simulation's clock is the wall clock but not the kernel's instants; the
  snapshot leaves times out (as the kernel-oracle scenarios do).
* Overlay file handles (``origin``, ``uuid``) hold real inode numbers and uuids: compared by
  presence only (the snapshot's rule).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import mount_table
from overlaysim.testing.kernel import umount as kumount
from overlaysim.testing.observe import Snapshot, snapshot, snapshot_work

BIN = Path(sys.executable).parent
OVERLAYSIM = str(BIN / "overlaysim")
HELPER = str(BIN / "mount.fuse.overlaysim")
PREFIX = "trusted.overlay."
#: Files that record stat data (device and inode numbers, ctimes) of other files.
STAT_CACHES = (".git/index",)


#: What a request to a mount whose daemon is gone fails with: ENOTCONN once the daemon's
#: /dev/fuse is closed; ECONNABORTED when the connection was aborted through fusectl
#: (/sys/fs/fuse/connections/N/abort), as test drivers on a shared machine do. Either is the
#: clear error, never a hang.
DAEMON_GONE = (os.strerror(errno.ENOTCONN), os.strerror(errno.ECONNABORTED))


def daemon_gone(message: str) -> bool:
    return any(text in message for text in DAEMON_GONE)


def skip_reason() -> str | None:
    """Why FUSE-vs-kernel tests cannot run here (None: they can)."""
    if os.geteuid() != 0:
        return "needs root: mount(2) of overlay and FUSE"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    from overlaysim.fuse import binding

    why = binding.available()
    if why is not None:
        return f"libfuse3 cannot be loaded: {why}"
    if not os.path.exists(HELPER):
        return "mount.fuse.overlaysim is not installed (pip install -e .)"
    with tempfile.TemporaryDirectory() as d:
        try:
            kmount("tmpfs", d, "tmpfs", "")
        except OSError as e:
            return f"mount(2) is not permitted here: {e.strerror}"
        kumount(d)
    return None


def env(runtime: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["OVERLAYSIM_RUNTIME_DIR"] = str(runtime)
    e["PATH"] = f"{BIN}:{e.get('PATH', '/usr/bin:/bin')}"
    return e


def run(cmd: list[str], runtime: Path, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env(runtime), capture_output=True, text=True,
                          timeout=timeout, check=False, **kw)  # fmt: skip


class Layers:
    """A base dir with lower dirs built by ``build(base)``, and fresh upper/work per side."""

    def __init__(self, base: Path, build: Callable[[Path], list[str]]) -> None:
        self.base = base
        self.lowers = [str(base / name) for name in build(base)]

    def sides(self, name: str) -> tuple[Path, Path, Path]:
        """(upper, work, mount point): fresh upper and work dirs; one mount point for both
        sides, since programs write it into files (compiled Python records its path)."""
        upper, work, mnt = self.base / name / "u", self.base / name / "w", self.base / "mnt"
        for d in (upper, work, mnt):
            d.mkdir(parents=True, exist_ok=True)
        return upper, work, mnt


def on_kernel(layers: Layers, workload: Callable[[Path], None], opts: str = "") -> tuple[Path, Path]:
    upper, work, mnt = layers.sides("kernel")
    data = f"lowerdir={':'.join(layers.lowers)},upperdir={upper},workdir={work}"
    kmount("overlay", str(mnt), "overlay", data + (f",{opts}" if opts else ""))
    try:
        workload(mnt)
    finally:
        kumount(str(mnt))
    return upper, work


def on_fuse(layers: Layers, workload: Callable[[Path], None], runtime: Path,
            opts: str = "") -> tuple[Path, Path]:  # fmt: skip
    upper, work, mnt = layers.sides("fuse")
    cmd = [OVERLAYSIM, "mount", "--lowerdir", ":".join(layers.lowers), "--upperdir",
           str(upper), "--workdir", str(work), *(["-o", opts] if opts else []), str(mnt)]  # fmt: skip
    res = run(cmd, runtime)
    assert res.returncode == 0, res.stderr
    try:
        workload(mnt)
    finally:
        res = run([OVERLAYSIM, "umount", str(mnt)], runtime)
    assert res.returncode == 0, res.stderr
    return upper, work


def upper_view(path: Path) -> Snapshot:
    """The upper dir as a layer, with stat caches reduced to what FUSE can reproduce."""
    snap = snapshot(os, str(path), upper_prefix=PREFIX)
    for rel, e in snap.entries.items():
        if any(rel == c or rel.endswith("/" + c) for c in STAT_CACHES):
            snap.entries[rel] = replace(e, digest=None)
    return snap


def work_view(work: Path, upper: Path) -> Snapshot:
    return snapshot_work(os, str(work), PREFIX, upper=str(upper))


def diff(a: Snapshot, b: Snapshot) -> list[str]:
    """Readable differences between two snapshots (empty when equal)."""
    out = []
    for rel in sorted(set(a.entries) | set(b.entries)):
        ea, eb = a.entries.get(rel), b.entries.get(rel)
        if ea != eb:
            out.append(f"{rel or '.'}:\n  kernel {ea}\n  fuse   {eb}")
    return out


def copy_tree(src: str, dst: str) -> None:
    shutil.copytree(src, dst, symlinks=True)


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it is truthy; fail (never hang) after ``timeout`` seconds."""
    import time

    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def kill_daemon(mnt: Path, runtime: Path, probe: Path) -> int:
    """SIGKILL the daemon serving ``mnt``, wait for its death, and check that a stat of
    ``probe`` then fails at once with the clear error (no hang); returns the dead pid."""
    import signal

    pid = int(record(mnt, runtime).pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not record(mnt, runtime).alive(), what="the daemon's death")
    res = subprocess.run(["stat", str(probe)], capture_output=True, text=True, timeout=10,
                         check=False)  # fmt: skip
    assert res.returncode != 0 and daemon_gone(res.stderr), res.stderr
    return pid


@contextlib.contextmanager
def tmpfs_top(tmp_path: Path) -> Iterator[Path]:
    """A fresh tmpfs at ``tmp_path/t`` for every layer of both sides (the kernel's and the
    simulation's writes land on one real filesystem); whatever is still mounted under it at
    the end (an overlay, a FUSE mount) is detached first, deepest first."""
    top = tmp_path / "t"
    top.mkdir()
    kmount("tmpfs", str(top), "tmpfs", "mode=755")
    try:
        yield top
    finally:
        inside = [m.mount_point for m in mount_table() if m.mount_point.startswith(f"{top}/")]
        for mnt in sorted(inside, key=len, reverse=True):
            kumount(mnt, 2)
        kumount(str(top), 2)


def fstype(mnt: Path) -> str | None:
    from overlaysim.fuse.umount import fstype_at

    return fstype_at(os.path.realpath(mnt))


def record(mnt: Path, runtime: Path) -> Any:
    """The daemon's run record for ``mnt`` (None once it finished cleanly)."""
    from overlaysim.fuse import runstate

    old = os.environ.get("OVERLAYSIM_RUNTIME_DIR")
    os.environ["OVERLAYSIM_RUNTIME_DIR"] = str(runtime)
    try:
        return runstate.load(os.path.realpath(mnt))
    finally:
        if old is None:
            del os.environ["OVERLAYSIM_RUNTIME_DIR"]
        else:
            os.environ["OVERLAYSIM_RUNTIME_DIR"] = old


def leftovers(directory: Path) -> list[str]:
    """Temp trees of write-backs beside ``directory`` (there must be none when idle)."""
    return sorted(n for n in os.listdir(directory.parent) if ".overlaysim-" in n)


def run_as(uid: int, gid: int, fn: Callable[[], Any], cwd: Path | None = None) -> Any:
    """``fn()`` in a forked child with other credentials, in ``cwd`` (entered first, so the
    test's private parent dirs need not be searchable): its value, or the errno name."""
    import json

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if cwd is not None:
                os.chdir(cwd)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            out: Any = {"ok": fn()}
        except OSError as e:
            out = {"errno": errno_name(e)}
        except BaseException as e:
            out = {"errno": repr(e)}
        os.write(w, json.dumps(out, default=str).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(data)
    return res.get("ok", res.get("errno"))


def errno_name(e: OSError) -> str:
    import errno as errno_mod

    return errno_mod.errorcode.get(e.errno or 0, str(e.errno))
