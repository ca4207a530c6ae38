"""``mount`` and ``umount`` as util-linux prints them, over the shell's machine callables.

Listing reads the caller's mount table (``SOURCE on TARGET type FSTYPE (OPTIONS)``, the
options as /proc/self/mounts shows them); mounting passes ``-o`` through as the mount(2)
data string, so the overlay engine validates it exactly as the kernel's option parser would.
Failures use util-linux wording and its exit status 32.
"""

from __future__ import annotations

import errno

from overlaysim.shell.context import Ctx
from overlaysim.shell.options import getopt

MOUNT_FAILURE = 32


def mount(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "t:o:lnvrw", {"types": ("t", True), "options": ("o", True),
                                           "read-only": ("r", False), "rw": ("w", False),
                                           "bind": ("bind", False)})  # fmt: skip
    fstype = opts.get("t")
    if opts.has("bind"):
        ctx.error("--bind is not supported by this simulator")
        return MOUNT_FAILURE
    if not ops:
        return _list(ctx, fstype)
    if len(ops) == 1:
        ctx.error(f"{ops[0]}: can't find in /etc/fstab.")
        return 1
    if len(ops) > 2:
        ctx.error("bad usage")
        ctx.err.write(b"Try 'mount --help' for more information.\n")
        return 1
    source, target = ops
    data = ",".join(opts.all("o"))
    if opts.has("r"):
        data = ",".join(filter(None, [data, "ro"]))
    if fstype is None:
        ctx.error(f"{target}: special device {source} does not exist.")
        return MOUNT_FAILURE
    do_mount = ctx.machine.do_mount
    if do_mount is None or ctx.machine.uid != 0:
        ctx.error(f"{target}: must be superuser to use mount.")
        return MOUNT_FAILURE
    # relative layer paths in the data string resolve from the mounting process's cwd
    o = ctx.o
    getcwd, chdir = getattr(o, "getcwd", None), getattr(o, "chdir", None)
    saved = getcwd() if getcwd is not None and chdir is not None else None
    path = ctx.abspath(target)
    try:
        if saved is not None and saved != ctx.cwd and chdir is not None:
            chdir(ctx.cwd)
        do_mount(source, path, fstype, data)
    except OSError as e:
        exists = _exists(ctx, path)
        shown = _normalize(path) if exists else target
        ctx.error(f"{shown}: {_mount_message(e, source, fstype, exists)}")
        ctx.err.write(b"       dmesg(1) may have more information after failed mount system call.\n")
        return MOUNT_FAILURE
    finally:
        if saved is not None and chdir is not None and getcwd is not None and getcwd() != saved:
            chdir(saved)
    return 0


def _exists(ctx: Ctx, path: str) -> bool:
    try:
        ctx.o.stat(path)
    except OSError:
        return False
    return True


def _normalize(path: str) -> str:
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
        else:
            parts.append(p)
    return "/" + "/".join(parts)


def _mount_message(e: OSError, source: str, fstype: str, target_exists: bool) -> str:
    """util-linux's explanation of a failed mount(2), by errno."""
    if e.errno == errno.ENOENT:
        return f"special device {source} does not exist." if target_exists else (
            "mount point does not exist.")  # fmt: skip
    if e.errno == errno.ENOTDIR:
        return "mount point is not a directory."
    if e.errno == errno.EPERM:
        return "permission denied."
    if e.errno == errno.EBUSY:
        return f"{source} already mounted or mount point busy."
    if e.errno == errno.ENODEV:
        return f"unknown filesystem type '{fstype}'."
    if e.errno == errno.EINVAL:
        return (f"wrong fs type, bad option, bad superblock on {source}, missing codepage or "
                "helper program, or other error.")  # fmt: skip
    if e.errno == errno.EROFS:
        return f"cannot mount {source} read-only."
    return f"{e.strerror or e}."


def _list(ctx: Ctx, fstype: str | None) -> int:
    mounts = ctx.machine.mounts
    if mounts is None:
        return 0
    for m in mounts():
        if fstype is not None and m.fstype not in fstype.split(","):
            continue
        ctx.write(f"{m.source} on {m.target} type {m.fstype} ({m.options})\n")
    return 0


def umount(ctx: Ctx, args: list[str]) -> int:
    _, ops = getopt(args, "lfnv", {"lazy": ("l", False), "force": ("f", False)})
    if not ops:
        ctx.error("bad usage")
        ctx.err.write(b"Try 'umount --help' for more information.\n")
        return 1
    do_umount = ctx.machine.do_umount
    status = 0
    for target in ops:
        if do_umount is None or ctx.machine.uid != 0:
            ctx.error(f"{target}: must be superuser to unmount.")
            status = MOUNT_FAILURE
            continue
        try:
            do_umount(ctx.abspath(target))
        except OSError as e:
            status = MOUNT_FAILURE
            if e.errno == errno.EINVAL:
                ctx.error(f"{target}: not mounted.")
            elif e.errno == errno.EBUSY:
                ctx.error(f"{target}: target is busy.")
            elif e.errno == errno.ENOENT:
                ctx.error(f"{target}: no mount point specified.")
            else:
                ctx.error(f"{target}: {e.strerror or e}.")
    return status
