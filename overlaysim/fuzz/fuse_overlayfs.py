"""``--against fuse-overlayfs``: the real ``fuse-overlayfs`` binary, judged against the kernel.

:class:`FuseOverlay` builds a stack on disk exactly as the kernel oracle does and mounts it
with ``fuse-overlayfs -f -o lowerdir=..,upperdir=..,workdir=.. MNT``, so both see the same
layers. The daemon runs in the foreground as our child, in its own session: it is unmounted
and reaped in ``close()`` whatever happened, and killed if it does not exit by itself.

What is compared, and why (each exclusion was observed on fuse-overlayfs 1.10 here):

* the merged view and every operation's result -- the behaviour users see;
* not the upper and work dirs: fuse-overlayfs keeps its own layout (``.wh..wh..opq``
  opaque markers, ``user.fuseoverlayfs.origin`` xattrs, no ``trusted.overlay.origin``, a
  ``work/work`` dir of its own), which the kernel does not read;
* no layer round trips (they mount the other side's layers with the simulator);
* stacks without xattr whiteouts (:func:`sanitize`), a format it predates.

Everything it diverges on beyond that is a finding (README, tests/fuzz/fuse_findings.py).
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from overlaysim.errors import TargetError
from overlaysim.testing import layers as L
from overlaysim.testing.differential import CaseReport
from overlaysim.testing.kernel import MNT_DETACH, can_mount, mount_info, umount
from overlaysim.testing.layers import LayerStack, StackPaths, build_stack

if TYPE_CHECKING:
    from overlaysim.fuzz.targets import Target

BINARY = "fuse-overlayfs"
MOUNT_TIMEOUT = 10.0
# Profiles fuse-overlayfs can run: it ignores options it does not know (redirect_dir,
# metacopy, userxattr, index), so mounting with them would judge it on semantics it never
# claimed; "volatile" it implements (no fsync).
PROFILES = ("default", "ro multi-lower", "volatile")
# FUSE mounts default to nodev,nosuid; the kernel's overlay (mount(2) with no flags) has
# neither, so without these a lower /dev/null would read EACCES instead of working.
MOUNT_FLAGS = "dev,suid"
COMPARE = ("merged",)
# No observation kind of the merged view is excluded: st_nlink, st_ino relations and xattrs
# are all part of what users see (and where it diverges, README findings).
IGNORE: tuple[str, ...] = ()


def _plain_whiteouts(node: L.Dir) -> L.Dir:
    entries: dict[str, L.Node] = {}
    for name, child in node.entries.items():
        if isinstance(child, L.Whiteout) and child.form == "xattr":
            child = L.Whiteout("chr")
        elif isinstance(child, L.Dir):
            child = _plain_whiteouts(child)
        entries[name] = child
    return replace(node, entries=entries, opaque=None if node.opaque == "x" else node.opaque)


def sanitize(stack: LayerStack) -> LayerStack:
    """xattr whiteouts (kernel 6.7+: an empty file with ``overlay.whiteout``, listed only
    under an ``opaque="x"`` parent) become char 0/0 whiteouts and ``opaque="x"`` goes:
    fuse-overlayfs predates that layer format (a README finding), so it is not fuzzed."""
    upper = None if stack.upper is None else _plain_whiteouts(stack.upper)
    return LayerStack(tuple(_plain_whiteouts(d) for d in stack.lowers), upper)


def probe() -> tuple[bool, str]:
    """fuse-overlayfs needs the binary, /dev/fuse and (for the kernel it is judged against)
    mount(2)."""
    if shutil.which(BINARY) is None:
        return False, f"{BINARY} is not installed (Debian package fuse-overlayfs; make sysdeps)"
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse is missing: FUSE is not available here"
    ok, why = can_mount()
    if not ok:
        return False, f"the kernel to judge fuse-overlayfs against is unavailable: {why}"
    return True, f"{BINARY} and mount(2) available"


class FuseOverlay:
    """A ``fuse-overlayfs`` mount of a freshly built stack; the mount interface of
    :mod:`overlaysim.testing.differential`."""

    os: Any = os

    def __init__(self, stack: LayerStack, options: str = "") -> None:
        self.stack, self.extra = stack, options
        self.base = tempfile.mkdtemp(prefix="ovl-fuse-")
        self.mount_path = os.path.join(self.base, "m")
        self.proc: subprocess.Popen[bytes] | None = None
        self.mounted = False
        try:
            self.paths: StackPaths = build_stack(stack, os, self.base, options=options)
            os.mkdir(self.mount_path)
        except BaseException:
            self.close()
            raise
        self.options = ",".join(filter(None, [self.paths.options(options), MOUNT_FLAGS]))
        self.upper_os: Any = os
        self.work_os: Any = os
        self.upper_root, self.work_root = self.paths.upper, self.paths.work

    def mount(self) -> None:
        """Start the daemon and wait until the mount point is a different filesystem."""
        log = open(os.path.join(self.base, "fuse.log"), "wb")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen([BINARY, "-f", "-o", self.options, self.mount_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)  # fmt: skip
        except OSError as e:
            log.close()
            raise TargetError(f"cannot start {BINARY}: {e.strerror}") from None
        log.close()
        parent = os.stat(self.base).st_dev
        deadline = time.monotonic() + MOUNT_TIMEOUT
        delay = 0.0005
        while True:
            if self.proc.poll() is not None:  # refused: it exits with a message
                self.proc = None
                raise OSError(errno.EINVAL, f"{BINARY} refused the mount: {self._log_tail()}",
                              self.mount_path)  # fmt: skip
            try:
                if os.stat(self.mount_path).st_dev != parent:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._stop()
                raise TargetError(f"{BINARY} did not mount within {MOUNT_TIMEOUT:g}s: {self._log_tail()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        self.mounted = True

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.base, "fuse.log"), "rb") as f:
                lines = [ln for ln in f.read().decode(errors="replace").splitlines()
                         if "unknown argument ignored" not in ln]  # fmt: skip
        except OSError:
            return ""
        return lines[-1].strip() if lines else "(no message)"

    def umount(self) -> None:
        if self.mounted:
            umount(self.mount_path)
            self.mounted = False
        self._stop()

    def _stop(self) -> None:
        """Reap the daemon (it exits once unmounted); SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def remount(self) -> None:
        self.umount()
        self.mount()

    def close(self) -> None:
        """Unmount (lazily if busy), reap the daemon, delete everything built."""
        try:
            if self.mounted:
                try:
                    umount(self.mount_path)
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    umount(self.mount_path, MNT_DETACH)
                self.mounted = False
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
            self._stop()
            if mount_info(self.mount_path) is not None:  # a daemon that died mounted
                umount(self.mount_path, MNT_DETACH)
            shutil.rmtree(self.base, ignore_errors=True)


def fuse_factory(stack: LayerStack, options: str) -> FuseOverlay:
    """A mounted :class:`FuseOverlay` (the judged side of ``--against fuse-overlayfs``)."""
    m = FuseOverlay(stack, options)
    try:
        m.mount()
    except BaseException:
        m.close()
        raise
    return m


def fuse_overlayfs_target() -> Target:
    """fuse-overlayfs judged against the kernel on the merged view and every result."""
    from overlaysim.fuzz.targets import Target, kernel_mount

    return Target("fuse-overlayfs", fuse_factory, COMPARE, IGNORE, round_trip=False,
                  hardlinks=True, profiles=PROFILES, probe=probe, versus=kernel_mount,
                  sanitize=sanitize, script=report_script,
                  note="merged view and results only: fuse-overlayfs keeps its own upper layout")  # fmt: skip


# --- reproducers ------------------------------------------------------------------------------
_RUN = """cat > "$B"/run.py <<'PY'
import errno, os, sys
os.chdir(sys.argv[1])
ns = {"os": os, "r": None, "d": None}
try:
    exec(sys.argv[3], ns)
    out = "ok" + (" " + repr(ns["r"]) if ns["r"] is not None else "")
    out += f" data={ns['d']!r}" if ns["d"] is not None else ""
except OSError as e:
    out = errno.errorcode.get(e.errno, str(e.errno))
print(f"{sys.argv[4]:>15} op {sys.argv[2]}: {out}")
PY
run() { python3 "$B"/run.py "$B"/k/m "$1" "$2" kernel; python3 "$B"/run.py "$B"/f/m "$1" "$2" fuse-overlayfs; }
tree() { (cd "$1" && find . -mindepth 1 | sort | while read -r p; do
  stat -c '%n %F mode=%a uid=%u nlink=%h ino=%i size=%s' "$p" 2>&1; done); }"""


def report_script(report: CaseReport) -> str:
    """:func:`fuse_script` for a diverging case, up to the op where it diverged."""
    ops = list(report.ops)
    where = report.divergences[0].where if report.divergences else ""
    m = re.match(r"(?:after )?op (\d+)", where)
    if m:
        ops = ops[: int(m[1]) + 1]
    return fuse_script(report.stack, ops, report.options)


def fuse_script(stack: LayerStack, ops: Any, options: str = "") -> str:
    """A standalone bash script (root, overlayfs, fuse-overlayfs, python3): the same layers
    built twice, mounted by the kernel and by fuse-overlayfs, each op run on both, then both
    merged trees listed, both unmounted and mounted again."""
    from overlaysim.testing.script import _XSET, layer_commands

    prefix = L.xattr_prefix_for(options)
    lines = ["#!/usr/bin/env bash",
             "# overlaysim: fuse-overlayfs judged against the kernel's overlay (run as root)",
             "set -u", "B=$(mktemp -d)", _XSET,
             "cleanup() { umount \"$B\"/k/m 2>/dev/null; fusermount3 -u \"$B\"/f/m 2>/dev/null"
             " || umount -l \"$B\"/f/m 2>/dev/null; rm -rf \"$B\"; }", "trap cleanup EXIT"]  # fmt: skip
    for side in ("k", "f"):
        root = f'"$B"/{side}'
        for i, layer in enumerate(stack.lowers):
            lines += layer_commands(layer, f"{root}/l{i}", prefix)
        if stack.upper is not None:
            lines += layer_commands(stack.upper, f"{root}/u", prefix)
            lines.append(f"mkdir {root}/w")
        lines.append(f"mkdir {root}/m")
    opts = {}
    for side in ("k", "f"):
        o = "lowerdir=" + ":".join(f"$B/{side}/l{i}" for i in range(len(stack.lowers)))
        if stack.upper is not None:
            o += f",upperdir=$B/{side}/u,workdir=$B/{side}/w"
        opts[side] = o + ("," + options if options else "")
    kmount = f'mount -t overlay overlay -o "{opts["k"]}" "$B"/k/m'
    fmount = f'{BINARY} -o "{opts["f"]},{MOUNT_FLAGS}" "$B"/f/m 2>/dev/null'
    lines += [f'{kmount} || echo "kernel: mount failed"',
              f'{fmount} || echo "fuse-overlayfs: mount failed"', _RUN]  # fmt: skip
    for n, op in enumerate(ops):
        lines.append(f"run {n} {shlex.quote(op.snippet())}  # {op!r}")
    lines += ['echo "--- kernel merged"; tree "$B"/k/m',
              'echo "--- fuse-overlayfs merged"; tree "$B"/f/m',
              'umount "$B"/k/m; fusermount3 -u "$B"/f/m',
              f'{kmount} && echo "kernel: mounted again" || echo "kernel: mount again failed"',
              f'{fmount} && echo "fuse-overlayfs: mounted again" '
              '|| echo "fuse-overlayfs: mount again failed"']  # fmt: skip
    return "\n".join(lines) + "\n"
