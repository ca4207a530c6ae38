"""What to mount: ``overlaysim mount`` flags and mount(8)'s ``-o`` list, read into one MountSpec.

One parser serves both front doors (the command and the ``mount.fuse.overlaysim`` helper), so
``-o lowerdir=...`` means the same everywhere. Options fall in four bins: the layer paths
(ours: they are real directories imported into the simulation), VFS mount flags (given to the
FUSE mount itself, so the kernel enforces ``ro``/``nosuid``/``noexec`` as for any mount),
mount(8)'s own bookkeeping words (dropped), and everything else, which the simulated
overlay's option parser judges exactly as ``fs/overlayfs/params.c`` would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from overlaysim.fuse.errors import MountError

#: mount(2) flags libfuse accepts in its ``-o`` list; the kernel applies them to the FUSE mount.
VFS_FLAGS = frozenset({
    "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "async", "sync",
    "dirsync", "noatime", "nodiratime",
})  # fmt: skip
#: mount(8)/fstab words with no meaning for the filesystem (atime policy is relatime anyway).
IGNORED = frozenset({
    "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail",
    "_netdev", "relatime", "norelatime", "strictatime", "nostrictatime", "atime", "diratime",
    "lazytime", "nolazytime", "silent", "loud", "allow_other",
})  # fmt: skip
IGNORED_PREFIXES = ("x-", "comment=")
_PATH_KEYS = ("lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+")


@dataclass
class MountSpec:
    """A validated request: real layer dirs (absolute), the options for each consumer."""

    mountpoint: str
    lowers: list[str]  # uppermost first
    datadirs: list[str] = field(default_factory=list)  # data-only lower layers ("::")
    upperdir: str | None = None
    workdir: str | None = None
    overlay_options: list[str] = field(default_factory=list)  # for the simulated overlay
    vfs_flags: list[str] = field(default_factory=list)  # for the FUSE mount
    explain: str | None = None  # "-" for stderr, a file name, or None
    source: str = "overlay"
    live: bool = False  # upper/work are the real dirs, written as the engine goes
    scratch: bool = False  # no real upper: an empty one in memory, dropped at unmount

    @property
    def userxattr(self) -> bool:
        return "userxattr" in self.overlay_options

    @property
    def read_only(self) -> bool:
        ro = False
        for flag in self.vfs_flags:
            if flag in ("ro", "rw"):
                ro = flag == "ro"
        return ro


def split_lowerdir(text: str) -> tuple[list[str], list[str]]:
    """``l1:l2::d1::d2`` -> ([l1, l2], [d1, d2]): ``\\`` escapes a colon (or itself), ``::``
    puts the next layer among the data-only ones, which must come last (as the kernel's
    ``ovl_parse_param_split_lowerdirs`` reads it)."""
    layers: list[tuple[str, bool]] = []
    cur: list[str] = []
    data_next = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if ch == ":":
            if not cur:
                raise MountError(f"lowerdir: empty layer path in {text!r}")
            layers.append(("".join(cur), data_next))
            cur = []
            data_next = text.startswith("::", i)
            i += 2 if data_next else 1
            continue
        cur.append(ch)
        i += 1
    if not cur:
        raise MountError(f"lowerdir: empty layer path in {text!r}")
    layers.append(("".join(cur), data_next))
    lowers = [p for p, data in layers if not data]
    datas = [p for p, data in layers if data]
    if [d for _, d in layers] != sorted(d for _, d in layers):
        raise MountError("lowerdir: regular lower layers cannot follow data layers")
    return lowers, datas


def parse(mountpoint: str, *, lowerdir: str | None = None, upperdir: str | None = None,
          workdir: str | None = None, options: str = "", explain: str | None = None,
          source: str = "overlay", live: bool = False,
          scratch: bool = False) -> MountSpec:  # fmt: skip
    """Read the flags and the ``-o`` list (``lowerdir=`` may come from either, not both);
    ``--live`` and ``-o live`` are one switch."""
    lowers: list[str] = []
    datas: list[str] = []
    overlay: list[str] = []
    vfs: list[str] = []
    if lowerdir is not None:
        lowers, datas = split_lowerdir(lowerdir)
    for opt in _split_options(options):
        key, eq, val = opt.partition("=")
        if key in _PATH_KEYS and not eq:
            raise MountError(f"{key} needs a value ({key}=PATH)")
        if key == "lowerdir":
            if lowerdir is not None or lowers:
                raise MountError("lowerdir given twice (--lowerdir and -o lowerdir=)")
            lowers, datas = split_lowerdir(val)
        elif key == "lowerdir+":
            if datas:
                raise MountError("lowerdir+: regular lower layers cannot follow data layers")
            lowers.append(val)
        elif key == "datadir+":
            datas.append(val)
        elif key == "upperdir":
            if upperdir is not None:
                raise MountError("upperdir given twice (--upperdir and -o upperdir=)")
            upperdir = val
        elif key == "workdir":
            if workdir is not None:
                raise MountError("workdir given twice (--workdir and -o workdir=)")
            workdir = val
        elif key == "explain" and eq:
            explain = val
        elif opt == "live":
            live = True
        elif opt == "scratch":
            scratch = True
        elif opt in VFS_FLAGS:
            vfs.append(opt)
        elif opt in IGNORED or opt.startswith(IGNORED_PREFIXES):
            continue
        else:
            overlay.append(opt)
    if not lowers:
        raise MountError("no lower layer: give --lowerdir L1[:L2...] (or -o lowerdir=)")
    spec = MountSpec(
        mountpoint=os.path.realpath(mountpoint), lowers=[_abs(p) for p in lowers],
        datadirs=[_abs(p) for p in datas], upperdir=_abs(upperdir) if upperdir else None,
        workdir=_abs(workdir) if workdir else None, overlay_options=overlay, vfs_flags=vfs,
        explain=explain, source=source or "overlay", live=live, scratch=scratch,
    )  # fmt: skip
    validate(spec)
    return spec


def _split_options(text: str) -> list[str]:
    """Comma-separated, ``\\,`` escaping a comma inside a path (as the kernel allows)."""
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] == ",":
            cur.append(",")
            i += 2
            continue
        if ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [o for o in out if o]


def _abs(path: str) -> str:
    # The kernel resolves relative layer paths from the caller's cwd; the daemon moves to /.
    return os.path.abspath(path)


def validate(spec: MountSpec) -> None:
    """The checks the kernel makes on the real dirs (same wording), before anything starts."""
    _need_dir(spec.mountpoint, "mount point")
    for p in spec.lowers + spec.datadirs:
        _need_dir(p, "lowerdir")
    if spec.upperdir is None:
        if spec.live:
            raise MountError("--live writes the real upper dir as it goes: give --upperdir "
                             "and --workdir")  # fmt: skip
        spec.workdir = None  # useless without an upper dir: the kernel ignores it too
        # A lowers-only overlay is read-only, as the kernel's. (A world mount has no lowers
        # here: the container's overlay brings its own upper.)
        if spec.lowers and not spec.scratch and not spec.read_only:
            spec.vfs_flags.append("ro")
        return
    if spec.scratch:
        raise MountError("--scratch-upper (-o scratch) replaces --upperdir: give one of them")
    if spec.workdir is None:
        raise MountError("missing 'workdir' (upperdir needs a workdir, as for the kernel)")
    _need_dir(spec.upperdir, "upperdir")
    _need_dir(spec.workdir, "workdir")
    up, work = os.path.realpath(spec.upperdir), os.path.realpath(spec.workdir)
    if os.stat(up).st_dev != os.stat(work).st_dev:
        raise MountError("workdir and upperdir must reside under the same mount")
    if _nested(up, work):
        raise MountError("workdir and upperdir must be separate subtrees")
    for name, path in (("upperdir", up), ("workdir", work)):
        if os.path.ismount(path) and not spec.live:  # only a write-back renames it
            raise MountError(f"{name} {path} is a mount point: the upper is written back by "
                             "renaming a new tree into place; use a directory inside it")  # fmt: skip
        for low in spec.lowers + spec.datadirs:
            if _nested(path, os.path.realpath(low)):
                raise MountError(f"overlapping {name} path: {path} and lowerdir {low}")
        if _nested(path, os.path.realpath(spec.mountpoint)):
            raise MountError(f"the mount point is inside {name} ({path}) or contains it: "
                             + ("the daemon would serve its own requests" if spec.live
                                else "the write-back at unmount would replace it"))  # fmt: skip
    if os.geteuid() != 0 and not spec.userxattr:
        raise MountError("writing trusted.overlay.* xattrs to --upperdir needs root; "
                         "mount as root or add -o userxattr (user.overlay.* xattrs)")  # fmt: skip


def _need_dir(path: str, what: str) -> None:
    try:
        if not os.path.isdir(path):
            raise MountError(f"{what} {path}: " + ("not a directory" if os.path.lexists(path)
                                                  else "no such directory"))  # fmt: skip
    except OSError as e:
        raise MountError(f"{what} {path}: {e.strerror}") from None


def _nested(a: str, b: str) -> bool:
    """Whether one of two real paths is the other or lies beneath it."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)
