"""File tools that create, change or remove names: cat, touch, mkdir, rmdir, rm, ln, readlink,
mknod, truncate.

Each call goes through the os-like module one syscall at a time, in the order coreutils
issues them, so on an overlay the copy-ups and whiteouts happen exactly where they would.
Messages and exit codes follow GNU coreutils 9.
"""

from __future__ import annotations

import errno
import os
import stat as statmod

from overlaysim.shell.attrs import parse_mode
from overlaysim.shell.context import Ctx, UsageFailure, lines_of, quote, read_all, strerror
from overlaysim.shell.options import getopt


def cat(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "un", {"number": ("n", False)})
    status = 0
    number = 0
    for name in files or ["-"]:
        try:
            data = ctx.stdin if name == "-" else read_all(ctx.o, ctx.abspath(name))
        except OSError as e:
            ctx.error(f"{name}: {strerror(e)}")
            status = 1
            continue
        if opts.has("n"):  # GNU numbers lines across all files: "%6d\t"
            numbered = []
            for line in lines_of(data):
                number += 1
                numbered.append(f"{number:6d}\t".encode() + line)
            data = b"".join(numbered)
        ctx.out.write(data)
    return status


def touch(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "chd:", {"no-create": ("c", False), "no-dereference": ("h", False),
                                          "date": ("d", True)})  # fmt: skip
    if not files:
        raise UsageFailure("missing file operand")
    if opts.has("d"):
        raise UsageFailure("-d/--date is not supported by this shell", hint=False)
    status = 0
    for name in files:
        path = ctx.abspath(name)
        try:
            if opts.has("h"):
                ctx.o.lstat(path)
                ctx.o.utime(path, follow_symlinks=False)
                continue
            try:
                fd = ctx.o.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY,
                                0o666) if not opts.has("c") else None
            except OSError as e:
                if e.errno not in (errno.EISDIR, errno.EACCES, errno.EPERM, errno.ENXIO):
                    raise
                fd = None
            if fd is not None:
                ctx.o.close(fd)
            ctx.o.utime(path)
        except OSError as e:
            if opts.has("c") and e.errno == errno.ENOENT:
                continue
            ctx.error(f"cannot touch {quote(name)}: {strerror(e)}")
            status = 1
    return status


def mkdir(ctx: Ctx, args: list[str]) -> int:
    opts, dirs = getopt(args, "pm:v", {"parents": ("p", False), "mode": ("m", True),
                                       "verbose": ("v", False)})  # fmt: skip
    if not dirs:
        raise UsageFailure("missing operand")
    mode = 0o777
    explicit = opts.get("m")
    if explicit is not None:
        parsed = parse_mode(explicit, 0o777, 0, is_dir=True)
        if parsed is None:
            raise UsageFailure(f"invalid mode {quote(explicit)}", hint=False)
        mode = parsed
    status = 0
    for name in dirs:
        path = ctx.abspath(name)
        try:
            if opts.has("p"):
                failed = _mkdir_parents(ctx, name, opts.has("v"))
                if failed is not None:
                    ctx.error(f"cannot create directory {quote(failed[0])}: {strerror(failed[1])}")
                    status = 1
                    continue
                if explicit is not None:
                    ctx.o.chmod(path, mode)
                continue
            ctx.o.mkdir(path, mode)
            if explicit is not None:
                ctx.o.chmod(path, mode)
            if opts.has("v"):
                ctx.write(f"mkdir: created directory {quote(name)}\n")
        except OSError as e:
            ctx.error(f"cannot create directory {quote(name)}: {strerror(e)}")
            status = 1
    return status


def _mkdir_parents(ctx: Ctx, name: str, verbose: bool) -> tuple[str, OSError] | None:
    """``mkdir -p``: create each missing component of ``name``; (component, error) on failure."""
    parts = name.split("/")
    for k in range(1, len(parts) + 1):
        shown = "/".join(parts[:k])
        if not parts[k - 1] or parts[k - 1] == ".":
            continue
        try:
            ctx.o.mkdir(ctx.abspath(shown), 0o777)
            if verbose:
                ctx.write(f"mkdir: created directory {quote(shown)}\n")
        except OSError as e:
            if e.errno != errno.EEXIST:
                return shown, e
            try:
                st = ctx.o.stat(ctx.abspath(shown))
            except OSError as e2:
                return shown, e2
            if not statmod.S_ISDIR(st.st_mode):
                return shown, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), shown)
    return None


def rmdir(ctx: Ctx, args: list[str]) -> int:
    opts, dirs = getopt(args, "pv", {"parents": ("p", False), "verbose": ("v", False),
                                     "ignore-fail-on-non-empty": ("ign", False)})  # fmt: skip
    if not dirs:
        raise UsageFailure("missing operand")
    status = 0
    for name in dirs:
        todo = [name]
        if opts.has("p"):
            cur = name.rstrip("/")
            while "/" in cur.strip("/"):
                cur = cur.rsplit("/", 1)[0].rstrip("/")
                todo.append(cur)
        for d in todo:
            if opts.has("v"):
                ctx.write(f"rmdir: removing directory, {quote(d)}\n")
            try:
                ctx.o.rmdir(ctx.abspath(d))
            except OSError as e:
                if opts.has("ign") and e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    break
                what = "directory " if d is not name else ""
                ctx.error(f"failed to remove {what}{quote(d)}: {strerror(e)}")
                status = 1
                break
    return status


def rm(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "rRfdv", {"recursive": ("r", False), "force": ("f", False),
                                           "dir": ("d", False), "verbose": ("v", False)})  # fmt: skip
    force = opts.has("f")
    recursive = opts.has("r") or opts.has("R")
    if not files:
        if force:
            return 0
        raise UsageFailure("missing operand")
    status = 0
    for name in files:
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if base in (".", ".."):
            ctx.error(f"refusing to remove '.' or '..' directory: skipping {quote(name)}")
            status = 1
            continue
        path = ctx.abspath(name)
        if path.rstrip("/") == "" and recursive:
            ctx.error("it is dangerous to operate recursively on '/'")
            ctx.error("use --no-preserve-root to override this failsafe")
            status = 1
            continue
        try:
            st = ctx.o.lstat(path)
        except OSError as e:
            if force and e.errno == errno.ENOENT:
                continue
            ctx.error(f"cannot remove {quote(name)}: {strerror(e)}")
            status = 1
            continue
        if statmod.S_ISDIR(st.st_mode):
            if recursive:
                if not remove_tree(ctx, path, name, opts.has("v")):
                    status = 1
                continue
            if not opts.has("d"):
                ctx.error(f"cannot remove {quote(name)}: Is a directory")
                status = 1
                continue
            try:
                ctx.o.rmdir(path)
            except OSError as e:
                ctx.error(f"cannot remove {quote(name)}: {strerror(e)}")
                status = 1
            continue
        try:
            ctx.o.unlink(path)
            if opts.has("v"):
                ctx.write(f"removed {quote(name)}\n")
        except OSError as e:
            ctx.error(f"cannot remove {quote(name)}: {strerror(e)}")
            status = 1
    return status


def remove_tree(ctx: Ctx, path: str, shown: str, verbose: bool = False) -> bool:
    """``rm -r`` of a directory: children first, then the directory; False on any failure."""
    o = ctx.o
    ok = True
    try:
        names = sorted(o.listdir(path))
    except OSError as e:
        ctx.error(f"cannot remove {quote(shown)}: {strerror(e)}")
        return False
    for n in names:
        child, cshown = path.rstrip("/") + "/" + n, shown.rstrip("/") + "/" + n
        try:
            st = o.lstat(child)
            if statmod.S_ISDIR(st.st_mode):
                ok = remove_tree(ctx, child, cshown, verbose) and ok
                continue
            o.unlink(child)
            if verbose:
                ctx.write(f"removed {quote(cshown)}\n")
        except OSError as e:
            ctx.error(f"cannot remove {quote(cshown)}: {strerror(e)}")
            ok = False
    if not ok:
        return False
    try:
        o.rmdir(path)
        if verbose:
            ctx.write(f"removed directory {quote(shown)}\n")
    except OSError as e:
        ctx.error(f"cannot remove {quote(shown)}: {strerror(e)}")
        return False
    return True


def ln(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "sfnTv", {"symbolic": ("s", False), "force": ("f", False),
                                       "no-dereference": ("n", False),
                                       "no-target-directory": ("T", False)})  # fmt: skip
    if not ops:
        raise UsageFailure("missing file operand")
    kind = "symbolic link" if opts.has("s") else "hard link"
    if len(ops) == 1:
        ops = [ops[0], ops[0].rstrip("/").rsplit("/", 1)[-1]]
    *sources, dest = ops
    dest_path = ctx.abspath(dest)
    into_dir = False
    if not opts.has("T"):
        try:
            st = ctx.o.lstat(dest_path) if opts.has("n") else ctx.o.stat(dest_path)
            into_dir = statmod.S_ISDIR(st.st_mode)
        except OSError:
            into_dir = False
    if len(sources) > 1 and not into_dir:
        ctx.error(f"target {quote(dest)} is not a directory")
        return 1
    status = 0
    for src in sources:
        link = dest.rstrip("/") + "/" + src.rstrip("/").rsplit("/", 1)[-1] if into_dir else dest
        lpath = ctx.abspath(link)
        try:
            if opts.has("f"):
                try:
                    if not statmod.S_ISDIR(ctx.o.lstat(lpath).st_mode):
                        ctx.o.unlink(lpath)
                except FileNotFoundError:
                    pass
            if opts.has("s"):
                ctx.o.symlink(src, lpath)
            else:
                try:
                    src_st = ctx.o.lstat(ctx.abspath(src))
                except OSError as e:
                    ctx.error(f"failed to access {quote(src)}: {strerror(e)}")
                    status = 1
                    continue
                if statmod.S_ISDIR(src_st.st_mode):
                    ctx.error(f"{src}: hard link not allowed for directory")
                    status = 1
                    continue
                ctx.o.link(ctx.abspath(src), lpath, follow_symlinks=False)
        except OSError as e:
            ctx.error(f"failed to create {kind} {quote(link)}: {strerror(e)}")
            status = 1
            continue
        if opts.has("v"):
            ctx.write(f"{quote(link)} -> {quote(src)}\n")
    return status


def readlink(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "fenv", {"canonicalize": ("f", False), "verbose": ("v", False),
                                         "no-newline": ("n", False)})  # fmt: skip
    if not files:
        raise UsageFailure("missing operand")
    status = 0
    for name in files:
        try:
            if opts.has("f") or opts.has("e"):
                text = _canonical(ctx, ctx.abspath(name))
            else:
                text = ctx.o.readlink(ctx.abspath(name))
        except OSError as e:
            if opts.has("v"):
                ctx.error(f"{name}: {strerror(e)}")
            status = 1
            continue
        ctx.write(text + ("" if opts.has("n") else "\n"))
    return status


def _canonical(ctx: Ctx, path: str, depth: int = 0) -> str:
    """Resolve every symlink of ``path`` through the os-like module (``readlink -f``)."""
    if depth > 40:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    done = "/"
    parts = [p for p in path.split("/") if p]
    while parts:
        p = parts.pop(0)
        if p == ".":
            continue
        if p == "..":
            done = done.rsplit("/", 1)[0] or "/"
            continue
        cand = done.rstrip("/") + "/" + p
        st = ctx.o.lstat(cand)
        if statmod.S_ISLNK(st.st_mode):
            target = ctx.o.readlink(cand)
            base = target if target.startswith("/") else done.rstrip("/") + "/" + target
            resolved = _canonical(ctx, base, depth + 1)
            done = resolved
        else:
            done = cand
    return done


def mknod(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "m:", {"mode": ("m", True)})
    if not ops:
        raise UsageFailure("missing operand")
    if len(ops) < 2:
        raise UsageFailure(f"missing operand after {quote(ops[-1])}")
    name, kind = ops[0], ops[1]
    types = {"b": statmod.S_IFBLK, "c": statmod.S_IFCHR, "u": statmod.S_IFCHR,
             "p": statmod.S_IFIFO}  # fmt: skip
    if kind not in types:
        raise UsageFailure(f"invalid device type {quote(kind)}")
    if kind == "p" and len(ops) > 2:
        ctx.error(f"extra operand {quote(ops[2])}")
        ctx.error("Fifos do not have major and minor device numbers.")
        return 1
    if kind != "p":
        if len(ops) < 4:
            raise UsageFailure(f"missing operand after {quote(ops[-1])}")
        if len(ops) > 4:
            raise UsageFailure(f"extra operand {quote(ops[4])}")
        for v, what in ((ops[2], "major"), (ops[3], "minor")):
            if not v.isdigit() or int(v) >= 1 << 32:
                ctx.error(f"invalid {what} device number {quote(v)}")
                return 1
        device = os.makedev(int(ops[2]), int(ops[3]))
    else:
        device = 0
    mode = 0o666
    given = opts.get("m")
    if given is not None:
        parsed = parse_mode(given, 0o666, 0, is_dir=False)
        if parsed is None:
            raise UsageFailure("invalid mode", hint=False)
        mode = parsed
    path = ctx.abspath(name)
    try:
        ctx.o.mknod(path, mode | types[kind], device)
        if given is not None:
            ctx.o.chmod(path, mode)
    except OSError as e:
        ctx.error(f"{name}: {strerror(e)}")
        return 1
    return 0


_SUFFIX = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "KB": 1000, "MB": 1000**2,
           "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}  # fmt: skip


def truncate(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "cs:r:o", {"no-create": ("c", False), "size": ("s", True),
                                          "reference": ("r", True)})  # fmt: skip
    spec = opts.get("s")
    ref = opts.get("r")
    if spec is None and ref is None:
        raise UsageFailure("you must specify either '--size' or '--reference'")
    if not files:
        raise UsageFailure("missing file operand")
    rel = ""
    size = 0
    if spec is not None:
        text = spec
        if text and text[0] in "+-<>/%":
            rel, text = text[0], text[1:]
        num = text.rstrip("KMGTBi")
        unit = text[len(num):]
        if not num.isdigit() or (unit and unit not in _SUFFIX):
            ctx.error(f"Invalid number: {quote(spec)}")
            return 1
        size = int(num) * (_SUFFIX[unit] if unit else 1)
    else:
        assert ref is not None
        try:
            size = ctx.o.stat(ctx.abspath(ref)).st_size
        except OSError as e:
            ctx.error(f"cannot stat {quote(ref)}: {strerror(e)}")
            return 1
    status = 0
    for name in files:
        path = ctx.abspath(name)
        flags = os.O_WRONLY | os.O_NONBLOCK | (0 if opts.has("c") else os.O_CREAT)
        try:
            fd = ctx.o.open(path, flags, 0o666)
        except OSError as e:
            if opts.has("c") and e.errno == errno.ENOENT:
                continue
            ctx.error(f"cannot open {quote(name)} for writing: {strerror(e)}")
            status = 1
            continue
        try:
            cur = ctx.o.fstat(fd).st_size
            new = {"": size, "+": cur + size, "-": max(cur - size, 0), "<": min(cur, size),
                   ">": max(cur, size)}.get(rel)  # fmt: skip
            if new is None:
                new = (cur // size) * size if rel == "/" else -(-cur // size) * size
            ctx.o.ftruncate(fd, new)
        except OSError as e:
            ctx.error(f"failed to truncate {quote(name)} at {size} bytes: {strerror(e)}")
            status = 1
        finally:
            ctx.o.close(fd)
    return status
