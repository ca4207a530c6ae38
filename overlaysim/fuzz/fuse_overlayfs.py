"""``--against fuse-overlayfs``: the real ``fuse-overlayfs`` binary, judged against the kernel.

:class:`FuseOverlay` builds a stack on disk exactly as the kernel oracle does and mounts it
with ``fuse-overlayfs -f -o lowerdir=..,upperdir=..,workdir=.. MNT``, so both see the same
layers; the daemon's life cycle is :class:`~overlaysim.fuzz.daemon_mount.DaemonOverlay`'s.

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

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from overlaysim.fuzz.daemon_mount import DaemonOverlay
from overlaysim.testing import layers as L
from overlaysim.testing.differential import CaseReport
from overlaysim.testing.kernel import can_mount
from overlaysim.testing.layers import LayerStack

if TYPE_CHECKING:
    from overlaysim.fuzz.targets import Target

BINARY = "fuse-overlayfs"
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


class FuseOverlay(DaemonOverlay):
    """A ``fuse-overlayfs`` mount of a freshly built stack; the mount interface of
    :mod:`overlaysim.testing.differential`."""

    name = BINARY

    def __init__(self, stack: LayerStack, options: str = "") -> None:
        super().__init__(stack, options)
        self.options = ",".join(filter(None, [self.options, MOUNT_FLAGS]))

    def start(self, log: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([BINARY, "-f", "-o", self.options, self.mount_path],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)  # fmt: skip

    def log_lines(self) -> list[str]:
        return [ln for ln in super().log_lines() if "unknown argument ignored" not in ln]


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
run() { python3 "$B"/run.py "$B"/k/m "$1" "$2" kernel; python3 "$B"/run.py "$B"/f/m "$1" "$2" @LABEL@; }
tree() { (cd "$1" && find . -mindepth 1 | sort | while read -r p; do
  stat -c '%n %F mode=%a uid=%u nlink=%h ino=%i size=%s' "$p" 2>&1; done); }"""


@dataclass(frozen=True)
class Peer:
    """How a reproducer mounts and unmounts the FUSE side (``{opts}``: the layer options)."""

    label: str
    mount: str
    unmount: str


FUSE_OVERLAYFS = Peer(BINARY, f'{BINARY} -o "{{opts}},{MOUNT_FLAGS}" "$B"/f/m 2>/dev/null',
                      'fusermount3 -u "$B"/f/m')  # fmt: skip


def report_script(report: CaseReport, peer: Peer = FUSE_OVERLAYFS) -> str:
    """:func:`fuse_script` for a diverging case, up to the op where it diverged."""
    ops = list(report.ops)
    where = report.divergences[0].where if report.divergences else ""
    m = re.match(r"(?:after )?op (\d+)", where)
    if m:
        ops = ops[: int(m[1]) + 1]
    return fuse_script(report.stack, ops, report.options, peer)


def fuse_script(stack: LayerStack, ops: Any, options: str = "", peer: Peer = FUSE_OVERLAYFS) -> str:
    """A standalone bash script (root, overlayfs, the ``peer``'s FUSE daemon, python3): the
    same layers built twice, mounted by the kernel and by the peer, each op run on both, then
    both merged trees listed, both unmounted and mounted again."""
    from overlaysim.testing.script import _XSET, layer_commands

    prefix = L.xattr_prefix_for(options)
    lines = ["#!/usr/bin/env bash",
             f"# overlaysim: {peer.label} judged against the kernel's overlay (run as root)",
             "set -u", "B=$(mktemp -d)", _XSET,
             f"cleanup() {{ umount \"$B\"/k/m 2>/dev/null; {peer.unmount} 2>/dev/null"
             " || umount -l \"$B\"/f/m 2>/dev/null; rm -rf \"$B\"; }", "trap cleanup EXIT"]  # fmt: skip
    for side in ("k", "f"):
        root = f'"$B"/{side}'
        for i, layer in enumerate(stack.lowers):
            lines += layer_commands(layer, f"{root}/l{i}", prefix)
        for i, layer in enumerate(stack.data):
            lines += layer_commands(layer, f"{root}/d{i}", prefix)
        if stack.upper is not None:
            lines += layer_commands(stack.upper, f"{root}/u", prefix)
            lines.append(f"mkdir {root}/w")
        lines.append(f"mkdir {root}/m")
    opts = {}
    for side in ("k", "f"):
        o = "lowerdir=" + ":".join(f"$B/{side}/l{i}" for i in range(len(stack.lowers)))
        o += "".join(f"::$B/{side}/d{i}" for i in range(len(stack.data)))
        if stack.upper is not None:
            o += f",upperdir=$B/{side}/u,workdir=$B/{side}/w"
        opts[side] = o + ("," + options if options else "")
    kmount = f'mount -t overlay overlay -o "{opts["k"]}" "$B"/k/m'
    fmount = peer.mount.format(opts=opts["f"])
    lines += [f'{kmount} || echo "kernel: mount failed"',
              f'{fmount} || echo "{peer.label}: mount failed"',
              _RUN.replace("@LABEL@", peer.label)]  # fmt: skip
    for n, op in enumerate(ops):
        lines.append(f"run {n} {shlex.quote(op.snippet())}  # {op!r}")
    lines += ['echo "--- kernel merged"; tree "$B"/k/m',
              f'echo "--- {peer.label} merged"; tree "$B"/f/m',
              f'umount "$B"/k/m; {peer.unmount}',
              f'{kmount} && echo "kernel: mounted again" || echo "kernel: mount again failed"',
              f'{fmount} && echo "{peer.label}: mounted again" '
              f'|| echo "{peer.label}: mount again failed"']  # fmt: skip
    return "\n".join(lines) + "\n"
