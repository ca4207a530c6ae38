"""``--against overlaysim-fuse``: the simulator seen through its FUSE mount, judged by the kernel.

:class:`SimFuseOverlay` builds the layers on disk as the kernel oracle does and mounts them
with what ``overlaysim mount -f -o lowerdir=..,upperdir=..,workdir=.. MNT`` runs (the same
option parser and daemon), in a forked child rather than a new interpreter: the parent has
already imported everything, so a mount costs ~55 ms, not the ~0.4 s of a fresh
``overlaysim`` process. Every op is then a real syscall on a real FUSE mount point, so this
judges the engine *and* the FUSE front end (overlaysim/fuse/) against ``mount -t overlay``.

Compared: every op's result (errno, bytes), st_ino kept across copy-up, the merged view at
checkpoints and after a remount, and the upper and work dirs the daemon writes back at
unmount. They are on disk only once written back, so ``upper_root``/``work_root`` are None
until the first unmount (checkpoints compare the merged view only). What FUSE cannot carry is
:data:`CANNOT_EXPRESS`; how each item is accounted for is said there, never a blanket ignore.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from overlaysim.fuzz.daemon_mount import DaemonOverlay
from overlaysim.fuzz.fuse_overlayfs import Peer, report_script
from overlaysim.testing import layers as L
from overlaysim.testing import strategies as S
from overlaysim.testing.differential import OverlayMount
from overlaysim.testing.layers import LayerStack

if TYPE_CHECKING:
    from overlaysim.fuzz.targets import Target

NAME = "overlaysim-fuse"


@dataclass(frozen=True)
class Limit:
    """One thing a FUSE mount cannot express, and how the comparison accounts for it."""

    what: str
    why: str
    handled: str


#: What FUSE itself cannot express, in one place (README table "what FUSE cannot express").
CANNOT_EXPRESS: tuple[Limit, ...] = (
    Limit("st_dev", "every inode of a FUSE mount has the FUSE connection's device; the kernel "
          "gives lower files of other filesystems pseudo devices (xino=off)",
          "kept in the comparison (snapshot.distinct_devs): every profile run here shows one "
          "st_dev on the kernel too (layers on one fs, or xino=on); multi-fs stacks without "
          "xino are not generated"),
    Limit("st_ino values", "FUSE passes the engine's st_ino (use_ino), but the kernel's are "
          "the real fs's numbers",
          "values are never compared (observe.py keeps relations): hard-link groups and "
          "'st_ino kept across copy-up' are compared, and hold through FUSE"),
    Limit("times", "the daemon's clock is not the kernel's; atime is the FUSE mount's policy",
          "no op result holds a time and snapshots leave times out (as for the kernel run)"),
    Limit("file handles in the upper dir", "origin/uuid hold the simulation's inode numbers "
          "and fs uuid, not the real fs's", "compared by presence (observe.PRESENCE_ONLY)"),
    Limit("reads past st_size", "FUSE serves reads up to the size it knows (the page "
          "cache stops at i_size); the kernel's overlay reads a metacopy file's data to the "
          "data file's end, even past a smaller st_size that a generated metacopy file records",
          "sanitize(): generated metacopy files are padded to the stack's largest file, so "
          "none records less than its data, as none the kernel writes does"),
    Limit("O_TMPFILE", "libfuse 3.14's high-level API has no tmpfile: EOPNOTSUPP where the "
          "kernel's overlay makes the file",
          "generated ops never use O_TMPFILE; tests/fuse/test_semantics.py records it"),
    Limit("d_ino and non-root callers", "not limits (d_ino is passed through with use_ino; "
          "requests carry the caller's credentials), but the generated ops list names only "
          "and run as root", "tests/fuse/test_semantics.py compares d_ino with st_ino and "
          "trusted.* xattrs and credentials of other callers with the kernel"),
    Limit("mount refusals' errno", "the daemon reports why in words, not an errno",
          "a refused mount reads EINVAL; every profile here mounts on both sides"),
)  # fmt: skip

#: Observation kinds left out of the comparison: none (see CANNOT_EXPRESS for why none is).
IGNORE: tuple[str, ...] = ()
#: Profiles of the CI matrix not run through FUSE, each for a divergence of the FUSE front end
#: (not of FUSE), observed on kernel 6.18 here; tests/fuse/test_differential.py replays each
#: reproducer and fails once it no longer diverges, so the profile can come back.
NOT_RUN: dict[str, str] = {
    "nfs_export=on": "after the next mount of a written-back upper, a lower dir the sequence "
                     "touched can be hidden: the origin/index file handles written back are "
                     "the simulation's, not stable across daemon sessions (not shrunk yet)",
    "xino=on multi-fs": "the daemon imports every lower into one HostFS, so the engine sees one "
                        "fs: an xattr whiteout at a lower's root stays visible, which the kernel "
                        "hides when that lower is a filesystem of its own",
}  # fmt: skip
PROFILES = tuple(p for p in sorted(S.PROFILES) if p not in NOT_RUN)
COMPARE = ("merged", "upper", "work")


def _metacopy_sized(node: L.Dir, size: int) -> L.Dir:
    entries: dict[str, L.Node] = {}
    for name, child in node.entries.items():
        if isinstance(child, L.File) and any(k.endswith("overlay.metacopy") for k in child.xattrs):
            child = replace(child, data=child.data.ljust(size, b"\0"))
        elif isinstance(child, L.Dir):
            child = _metacopy_sized(child, size)
        entries[name] = child
    return replace(node, entries=entries)


def sanitize(stack: LayerStack) -> LayerStack:
    """Metacopy files of the lower and upper layers padded to the size of the largest file
    of the stack, so none records less than the data it leads to (see CANNOT_EXPRESS,
    "reads past st_size"); data-only layers are left as drawn."""
    layers = [*stack.lowers, *stack.data, *([stack.upper] if stack.upper else [])]
    size = max((len(n.data) for d in layers for _, n in L.walk(d) if isinstance(n, L.File)),
               default=0)  # fmt: skip
    upper = None if stack.upper is None else _metacopy_sized(stack.upper, size)
    return replace(stack, lowers=tuple(_metacopy_sized(d, size) for d in stack.lowers), upper=upper)


class ForkedChild:
    """A forked process with the ``subprocess.Popen`` calls :class:`DaemonOverlay` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, 9)


def probe() -> tuple[bool, str]:
    """The FUSE front end needs libfuse3 and /dev/fuse; the kernel judging it, mount(2)."""
    from overlaysim.errors import OverlaySimError
    from overlaysim.fuse.daemon import check_fuse
    from overlaysim.testing.kernel import can_mount

    try:
        check_fuse()
    except OverlaySimError as e:
        return False, str(e)
    ok, why = can_mount()
    if not ok:
        return False, f"the kernel to judge the FUSE mount against is unavailable: {why}"
    return True, "libfuse3, /dev/fuse and mount(2) available"


class _WrittenBack:
    """A layer dir attribute that reads None until the daemon has written the dir back."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}"

    def __get__(self, obj: SimFuseOverlay | None, owner: type | None = None) -> str | None:
        return getattr(obj, self.key, None) if obj is not None and obj.written else None

    def __set__(self, obj: SimFuseOverlay, value: str | None) -> None:
        setattr(obj, self.key, value)


class SimFuseOverlay(DaemonOverlay):
    """The simulator served on a FUSE mount of a freshly built stack."""

    name = "overlaysim mount"

    def __init__(self, stack: LayerStack, options: str = "") -> None:
        self.written = False  # the daemon wrote the upper and work dirs back at an unmount
        super().__init__(stack, options)
        if stack.upper is None:
            self.options += ",ro"
        self.run_dir = os.path.join(self.base, "run")
        os.mkdir(self.run_dir, 0o700)

    # The layer dirs on disk hold the served state only once the daemon wrote them back, and
    # hold it again only after the next umount: a remount may change them (run_case then
    # compares once more after unmounting).
    upper_root = _WrittenBack()
    work_root = _WrittenBack()
    upper_at_umount = True

    def start(self, log: int) -> ForkedChild:
        """What ``overlaysim mount -f -o OPTIONS MNT`` does, in a forked child."""
        pid = os.fork()
        if pid:
            self.written = False  # what is on disk is the last umount's, not this mount's
            return ForkedChild(pid)
        code = 1
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.environ["OVERLAYSIM_RUNTIME_DIR"] = self.run_dir
            from overlaysim.fuse import daemon
            from overlaysim.fuse import options as parse_options

            daemon.mount(parse_options.parse(self.mount_path, options=self.options),
                         foreground=True)  # fmt: skip
            code = 0
        except BaseException as e:  # the parent reads the log: one line, never a traceback
            from overlaysim.fuse.daemon import one_line

            os.write(2, f"{one_line(e)}\n".encode())
        finally:
            os._exit(code)

    def unmounted(self, code: int | None) -> None:
        """A daemon that failed after serving (its write-back) broke the protocol, which no
        comparison may hide."""
        if code != 0:
            from overlaysim.errors import TargetError

            raise TargetError(f"{self.name} ended with status {code}: {self.log_tail()}")
        self.written = True


def sim_fuse_factory(stack: LayerStack, options: str) -> OverlayMount:
    """A mounted :class:`SimFuseOverlay` (the judged side of ``--against overlaysim-fuse``)."""
    m = SimFuseOverlay(stack, options)
    return m.__enter__()


#: How a reproducer script mounts this side: the command a user would type.
PEER = Peer(NAME, 'overlaysim mount -o "{opts}" "$B"/f/m', 'overlaysim umount "$B"/f/m')


def overlaysim_fuse_target() -> Target:
    """The simulator through its FUSE mount, judged against the kernel on everything."""
    from overlaysim.fuzz.targets import Target, kernel_mount

    return Target(NAME, sim_fuse_factory, COMPARE, IGNORE, round_trip=False, hardlinks=True,
                  profiles=PROFILES, probe=probe, versus=kernel_mount, sanitize=sanitize,
                  script=partial(report_script, peer=PEER),
                  note="results, merged view, and the upper and work dirs written back at "
                       "unmount; what FUSE cannot express: overlaysim_fuse.CANNOT_EXPRESS")  # fmt: skip
