"""``cp`` and ``mv``: copying trees through the os-like module, and rename with mv's fallback.

``mv`` first tries rename(2); on EXDEV (an overlay refusing to rename a merged directory, or a
cross-mount move) it copies like ``cp -a`` and removes the source, as GNU mv does, so a
reader sees the same copy-ups and whiteouts a real ``mv`` would cause.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
from dataclasses import dataclass, field

from overlaysim.shell.context import Ctx, UsageFailure, is_dir, quote, strerror
from overlaysim.shell.files import remove_tree
from overlaysim.shell.options import getopt


@dataclass
class CopyConf:
    recursive: bool
    deref: bool  # follow symlinks in sources
    mode: bool
    owner: bool
    times: bool
    xattr: bool
    links: bool
    force: bool = False
    no_clobber: bool = False
    verbose: bool = False
    prog: str = "cp"
    seen: dict[tuple[int, int], str] = field(default_factory=dict)


def _targets(ctx: Ctx, ops: list[str], no_target_dir: bool, target_dir: str | None
             ) -> list[tuple[str, str]] | None:  # fmt: skip
    """(source, destination) pairs for cp/mv's three synopses; None after an error message."""
    if target_dir is not None:
        if not is_dir(ctx.o, ctx.abspath(target_dir)):
            ctx.error(f"target directory {quote(target_dir)}: Not a directory")
            return None
        return [(s, _join(target_dir, _base(s))) for s in ops]
    if not ops:
        raise UsageFailure("missing file operand")
    if len(ops) == 1:
        raise UsageFailure(f"missing destination file operand after {quote(ops[0])}")
    *sources, dest = ops
    if no_target_dir:
        if len(sources) > 1:
            raise UsageFailure(f"extra operand {quote(ops[2])}")
        return [(sources[0], dest)]
    if is_dir(ctx.o, ctx.abspath(dest)):
        return [(s, _join(dest, _base(s))) for s in sources]
    if len(sources) > 1:
        ctx.error(f"target {quote(dest)} is not a directory")
        return None
    return [(sources[0], dest)]


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or "/"


def _join(d: str, name: str) -> str:
    return d + name if d.endswith("/") else f"{d}/{name}"


def cp(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "aprRdLPHfnvTt:", {
        "archive": ("a", False), "recursive": ("r", False), "preserve": ("preserve", None),
        "no-dereference": ("P", False), "dereference": ("L", False), "force": ("f", False),
        "no-clobber": ("n", False), "verbose": ("v", False), "no-target-directory": ("T", False),
        "target-directory": ("t", True)})  # fmt: skip
    archive = opts.has("a")
    recursive = archive or opts.has("r") or opts.has("R")
    preserve = set()
    if archive:
        preserve = {"mode", "ownership", "timestamps", "links", "xattr"}
    if opts.has("p"):
        preserve |= {"mode", "ownership", "timestamps"}
    for p in opts.all("preserve"):
        preserve |= {"mode", "ownership", "timestamps", "links", "xattr"} if p == "all" else set(
            p.split(","))
    if opts.has("preserve") and not opts.all("preserve"):
        preserve |= {"mode", "ownership", "timestamps"}
    nodrf = archive or opts.has("d") or opts.has("P") or (recursive and not opts.has("L"))
    conf = CopyConf(recursive=recursive, deref=opts.has("L") or not nodrf,
                    mode="mode" in preserve, owner="ownership" in preserve,
                    times="timestamps" in preserve, xattr="xattr" in preserve,
                    links="links" in preserve, force=opts.has("f"), no_clobber=opts.has("n"),
                    verbose=opts.has("v"))  # fmt: skip
    pairs = _targets(ctx, ops, opts.has("T"), opts.get("t"))
    if pairs is None:
        return 1
    status = 0
    for src, dst in pairs:
        spath = ctx.abspath(src)
        try:
            st = ctx.o.stat(spath) if conf.deref or opts.has("H") else ctx.o.lstat(spath)
        except OSError as e:
            ctx.error(f"cannot stat {quote(src)}: {strerror(e)}")
            status = 1
            continue
        if statmod.S_ISDIR(st.st_mode) and not recursive:
            ctx.error(f"-r not specified; omitting directory {quote(src)}")
            status = 1
            continue
        dpath = ctx.abspath(dst)
        if _same_file(ctx, st, dpath):
            ctx.error(f"{quote(src)} and {quote(dst)} are the same file")
            status = 1
            continue
        if statmod.S_ISDIR(st.st_mode) and _inside(ctx, spath, dpath):
            ctx.error(f"cannot copy a directory, {quote(src)}, into itself, {quote(dst)}")
            status = 1
            continue
        if not copy_any(ctx, conf, spath, dpath, src, dst, st):
            status = 1
    return status


def _same_file(ctx: Ctx, st: os.stat_result, dpath: str) -> bool:
    try:
        dst = ctx.o.lstat(dpath)
    except OSError:
        return False
    return (dst.st_dev, dst.st_ino) == (st.st_dev, st.st_ino)


def _inside(ctx: Ctx, src: str, dst: str) -> bool:
    s = src.rstrip("/") + "/"
    parent = dst.rsplit("/", 1)[0] + "/"
    return parent.startswith(s) or dst.rstrip("/") + "/" == s


def copy_any(ctx: Ctx, c: CopyConf, src: str, dst: str, shown_src: str, shown_dst: str,
             st: os.stat_result) -> bool:  # fmt: skip
    """Copy one name (recursively for directories); False after an error message."""
    o = ctx.o
    mode = st.st_mode
    try:
        dst_st = o.lstat(dst)
    except OSError:
        dst_st = None
    if dst_st is not None and c.no_clobber:
        return True
    if c.links and st.st_nlink > 1 and not statmod.S_ISDIR(mode):
        first = c.seen.get((st.st_dev, st.st_ino))
        if first is not None:
            try:
                if dst_st is not None:
                    o.unlink(dst)
                o.link(first, dst, follow_symlinks=False)
                return True
            except OSError as e:
                ctx.error(f"cannot create hard link {quote(shown_dst)} to {quote(first)}: "
                          f"{strerror(e)}")  # fmt: skip
                return False
        c.seen[(st.st_dev, st.st_ino)] = dst
    try:
        if statmod.S_ISDIR(mode):
            return _copy_dir(ctx, c, src, dst, shown_src, shown_dst, st, dst_st)
        if dst_st is not None and statmod.S_ISDIR(dst_st.st_mode):
            ctx.error(f"cannot overwrite directory {quote(shown_dst)} with non-directory")
            return False
        if statmod.S_ISLNK(mode):
            target = o.readlink(src)
            if dst_st is not None:
                o.unlink(dst)
            o.symlink(target, dst)
        elif statmod.S_ISREG(mode):
            _copy_data(ctx, c, src, dst, shown_dst, mode, dst_st is not None)
        elif c.recursive or not c.deref:
            if dst_st is not None:
                o.unlink(dst)
            o.mknod(dst, mode & ~0o7777 | (mode & 0o777), st.st_rdev)
        else:
            _copy_data(ctx, c, src, dst, shown_dst, mode, dst_st is not None)
    except OSError as e:
        ctx.error(f"cannot create {_kind(mode)} {quote(shown_dst)}: {strerror(e)}")
        return False
    if c.verbose:
        ctx.write(f"{quote(shown_src)} -> {quote(shown_dst)}\n")
    return _preserve(ctx, c, src, dst, shown_dst, st)


def _kind(mode: int) -> str:
    if statmod.S_ISLNK(mode):
        return "symbolic link"
    if statmod.S_ISREG(mode):
        return "regular file"
    if statmod.S_ISFIFO(mode):
        return "fifo"
    return "special file"


def _copy_data(ctx: Ctx, c: CopyConf, src: str, dst: str, shown: str, mode: int,
               exists: bool) -> None:  # fmt: skip
    o = ctx.o
    fd_in = o.open(src, os.O_RDONLY)
    try:
        if exists and c.force:
            try:
                fd_out = o.open(dst, os.O_WRONLY | os.O_TRUNC)
            except OSError:
                o.unlink(dst)
                fd_out = o.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o777)
        else:
            fd_out = o.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o777)
        try:
            while True:
                data = o.read(fd_in, 1 << 16)
                if not data:
                    break
                view = memoryview(data)
                while view:
                    view = view[o.write(fd_out, view):]
        finally:
            o.close(fd_out)
    finally:
        o.close(fd_in)


def _copy_dir(ctx: Ctx, c: CopyConf, src: str, dst: str, shown_src: str, shown_dst: str,
              st: os.stat_result, dst_st: os.stat_result | None) -> bool:  # fmt: skip
    o = ctx.o
    if dst_st is None:
        try:
            o.mkdir(dst, st.st_mode & 0o777 | 0o700)
        except OSError as e:
            ctx.error(f"cannot create directory {quote(shown_dst)}: {strerror(e)}")
            return False
        if c.verbose:
            ctx.write(f"{quote(shown_src)} -> {quote(shown_dst)}\n")
    elif not statmod.S_ISDIR(dst_st.st_mode):
        ctx.error(f"cannot overwrite non-directory {quote(shown_dst)} with directory "
                  f"{quote(shown_src)}")  # fmt: skip
        return False
    ok = True
    try:
        names = sorted(o.listdir(src))
    except OSError as e:
        ctx.error(f"cannot access {quote(shown_src)}: {strerror(e)}")
        return False
    for n in names:
        s, d = _join(src, n), _join(dst, n)
        try:
            cst = o.stat(s) if c.deref else o.lstat(s)
        except OSError as e:
            ctx.error(f"cannot stat {quote(_join(shown_src, n))}: {strerror(e)}")
            ok = False
            continue
        ok = copy_any(ctx, c, s, d, _join(shown_src, n), _join(shown_dst, n), cst) and ok
    if dst_st is None and not c.mode:
        try:
            o.chmod(dst, st.st_mode & 0o777 & ~0o022)
        except OSError:
            pass
    return _preserve(ctx, c, src, dst, shown_dst, st) and ok


def _preserve(ctx: Ctx, c: CopyConf, src: str, dst: str, shown: str, st: os.stat_result) -> bool:
    o = ctx.o
    link = statmod.S_ISLNK(st.st_mode)
    ok = True
    if c.xattr:
        try:
            names = o.listxattr(src, follow_symlinks=False)
            for name in names:
                try:
                    o.setxattr(dst, name, o.getxattr(src, name, follow_symlinks=False),
                               follow_symlinks=False)  # fmt: skip
                except OSError:
                    pass  # as GNU cp -a: xattrs the target refuses are dropped silently
        except OSError:
            pass
    if c.owner:
        try:
            o.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.EPERM:
                ctx.error(f"failed to preserve ownership for {quote(shown)}: {strerror(e)}")
                ok = False
    if c.mode and not link:
        try:
            o.chmod(dst, st.st_mode & 0o7777)
        except OSError as e:
            ctx.error(f"preserving permissions for {quote(shown)}: {strerror(e)}")
            ok = False
    if c.times:
        try:
            o.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except OSError as e:
            ctx.error(f"preserving times for {quote(shown)}: {strerror(e)}")
            ok = False
    return ok


def mv(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "fnvTt:", {"force": ("f", False), "no-clobber": ("n", False),
                                         "verbose": ("v", False),
                                         "no-target-directory": ("T", False),
                                         "target-directory": ("t", True)})  # fmt: skip
    pairs = _targets(ctx, ops, opts.has("T"), opts.get("t"))
    if pairs is None:
        return 1
    status = 0
    o = ctx.o
    for src, dst in pairs:
        spath, dpath = ctx.abspath(src), ctx.abspath(dst)
        try:
            st = o.lstat(spath)
        except OSError as e:
            ctx.error(f"cannot stat {quote(src)}: {strerror(e)}")
            status = 1
            continue
        try:
            dst_st = o.lstat(dpath)
        except OSError:
            dst_st = None
        if dst_st is not None and opts.has("n"):
            continue
        if _same_file(ctx, st, dpath):
            ctx.error(f"{quote(src)} and {quote(dst)} are the same file")
            status = 1
            continue
        if dst_st is not None:
            problem = _overwrite_problem(st.st_mode, dst_st.st_mode, src, dst)
            if problem:
                ctx.error(problem)
                status = 1
                continue
        try:
            o.rename(spath, dpath)
        except OSError as e:
            if e.errno != errno.EXDEV:
                ctx.error(f"cannot move {quote(src)} to {quote(dst)}: {strerror(e)}")
                status = 1
                continue
            if not _move_by_copy(ctx, spath, dpath, src, dst, st):
                status = 1
                continue
        if opts.has("v"):
            ctx.write(f"renamed {quote(src)} -> {quote(dst)}\n")
    return status


def _overwrite_problem(src_mode: int, dst_mode: int, src: str, dst: str) -> str:
    """GNU mv's refusal to replace a directory by a file or the reverse ('' if fine)."""
    if statmod.S_ISDIR(src_mode) and not statmod.S_ISDIR(dst_mode):
        return f"cannot overwrite non-directory {quote(dst)} with directory {quote(src)}"
    if statmod.S_ISDIR(dst_mode) and not statmod.S_ISDIR(src_mode):
        return f"cannot overwrite directory {quote(dst)} with non-directory"
    return ""


def _move_by_copy(ctx: Ctx, spath: str, dpath: str, src: str, dst: str,
                  st: os.stat_result) -> bool:  # fmt: skip
    """EXDEV fallback: copy like ``cp -a`` (replacing what is there), then remove the source."""
    o = ctx.o
    try:
        dst_st = o.lstat(dpath)
    except OSError:
        dst_st = None
    if dst_st is not None:
        try:
            if statmod.S_ISDIR(dst_st.st_mode):
                o.rmdir(dpath)
            else:
                o.unlink(dpath)
        except OSError as e:
            ctx.error(f"cannot move {quote(src)} to {quote(dst)}: {strerror(e)}")
            return False
    conf = CopyConf(recursive=True, deref=False, mode=True, owner=True, times=True, xattr=True,
                    links=True, prog="mv")  # fmt: skip
    if not copy_any(ctx, conf, spath, dpath, src, dst, st):
        return False
    if statmod.S_ISDIR(st.st_mode):
        return remove_tree(ctx, spath, src)
    try:
        o.unlink(spath)
    except OSError as e:
        ctx.error(f"cannot remove {quote(src)}: {strerror(e)}")
        return False
    return True
