"""Attribute tools: chmod, chown/chgrp and stat (default block and ``-c FORMAT``).

Attribute changes are where an overlay copies up metadata only, so these tools issue exactly
one chmod/chown per name, as coreutils does; ``stat`` prints what ``lstat`` returns.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
from typing import Any

from overlaysim.shell.builtins import unescape
from overlaysim.shell.context import Ctx, UsageFailure, quote, strerror
from overlaysim.shell.fmt import file_type, full_iso, ns_of
from overlaysim.shell.options import getopt

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}


def parse_mode(text: str, mode: int, umask: int, is_dir: bool) -> int | None:
    """Apply an octal or symbolic (``u+x,go-w``, ``a=rX``) mode to ``mode``; None if invalid."""
    if text and all(c in "01234567" for c in text):
        value = int(text, 8)
        if value > 0o7777:
            return None
        if len(text) < 5 and is_dir:
            value |= mode & 0o6000  # directories keep setuid/setgid unless 5 digits are given
        return value
    cur = mode & 0o7777
    for clause in text.split(","):
        i = 0
        who = 0
        while i < len(clause) and clause[i] in "ugoa":
            who |= _WHO[clause[i]]
            i += 1
        if i >= len(clause) or clause[i] not in "+-=":
            return None
        while i < len(clause) and clause[i] in "+-=":
            op = clause[i]
            i += 1
            bits = 0
            while i < len(clause) and clause[i] not in "+-=":
                c = clause[i]
                if c == "r":
                    bits |= 0o444
                elif c == "w":
                    bits |= 0o222
                elif c == "x":
                    bits |= 0o111
                elif c == "X":
                    bits |= 0o111 if is_dir or cur & 0o111 else 0
                elif c == "s":
                    bits |= 0o6000
                elif c == "t":
                    bits |= 0o1000
                elif c in "ugo":
                    shift = {"u": 6, "g": 3, "o": 0}[c]
                    perm = (cur >> shift) & 7
                    bits |= perm * 0o111
                else:
                    return None
                i += 1
            mask = who if who else 0o7777 & ~umask
            if op == "=":
                keep = 0o7777 & ~(who if who else 0o7777)
                if is_dir and not who:
                    keep |= cur & 0o6000
                cur = (cur & keep) | (bits & (who if who else 0o7777 & ~umask))
            elif op == "+":
                cur |= bits & mask
            else:
                cur &= ~(bits & mask)
    return cur


def chmod(ctx: Ctx, args: list[str]) -> int:
    # a leading "-w" or "-x" is a mode, not an option (as in coreutils)
    opts, ops = getopt([a for a in args if not _looks_like_mode(a)], "Rf",
                       {"recursive": ("R", False)})  # fmt: skip
    modes = [a for a in args if _looks_like_mode(a)]
    if modes:
        ops = [modes[0], *ops]
    if not ops:
        raise UsageFailure("missing operand")
    if len(ops) < 2:
        raise UsageFailure(f"missing operand after {quote(ops[0])}")
    text, files = ops[0], ops[1:]
    if parse_mode(text, 0, 0, False) is None:
        ctx.error(f"invalid mode: {quote(text)}")
        ctx.err.write(b"Try 'chmod --help' for more information.\n")
        return 1
    status = 0
    for name in files:
        path = ctx.abspath(name)
        for p, shown in _walk(ctx, path, name, opts.has("R")):
            try:
                st = ctx.o.stat(p)
            except OSError as e:
                if not opts.has("f"):
                    ctx.error(f"cannot access {quote(shown)}: {strerror(e)}")
                status = 1
                continue
            if statmod.S_ISLNK(ctx.o.lstat(p).st_mode) and p != path:
                continue  # symlinks met while recursing are not followed
            new = parse_mode(text, st.st_mode, 0o022, statmod.S_ISDIR(st.st_mode))
            assert new is not None
            try:
                ctx.o.chmod(p, new)
            except OSError as e:
                if not opts.has("f"):
                    ctx.error(f"changing permissions of {quote(shown)}: {strerror(e)}")
                status = 1
    return status


def _looks_like_mode(a: str) -> bool:
    return len(a) > 1 and a[0] == "-" and all(c in "rwxXst" for c in a[1:])


def _walk(ctx: Ctx, path: str, shown: str, recursive: bool) -> list[tuple[str, str]]:
    out = [(path, shown)]
    if not recursive:
        return out
    try:
        st = ctx.o.lstat(path)
    except OSError:
        return out
    if statmod.S_ISDIR(st.st_mode):
        try:
            names = sorted(ctx.o.listdir(path))
        except OSError:
            return out
        for n in names:
            out.extend(_walk(ctx, path.rstrip("/") + "/" + n, shown.rstrip("/") + "/" + n, True))
    return out


def chown(ctx: Ctx, args: list[str]) -> int:
    return _chown(ctx, args, group_only=False)


def chgrp(ctx: Ctx, args: list[str]) -> int:
    return _chown(ctx, args, group_only=True)


def _chown(ctx: Ctx, args: list[str], group_only: bool) -> int:
    opts, ops = getopt(args, "Rhf", {"recursive": ("R", False),
                                          "no-dereference": ("h", False)})  # fmt: skip
    if not ops:
        raise UsageFailure("missing operand")
    if len(ops) < 2:
        raise UsageFailure(f"missing operand after {quote(ops[0])}")
    spec, files = ops[0], ops[1:]
    users = ctx.users
    uid = gid = -1
    if group_only:
        g = users.gid_of(spec)
        if g is None:
            ctx.error(f"invalid group: {quote(spec)}")
            return 1
        gid = g
    else:
        user, sep, group = spec.partition(":")
        if user:
            u = users.uid_of(user)
            if u is None:
                ctx.error(f"invalid user: {quote(spec)}")
                return 1
            uid = u
        if group:
            g = users.gid_of(group)
            if g is None:
                ctx.error(f"invalid group: {quote(spec)}")
                return 1
            gid = g
        elif sep and user:
            login = ctx.users.gid_of(user)
            gid = login if login is not None else -1
    status = 0
    what = "group" if group_only else "ownership"
    for name in files:
        path = ctx.abspath(name)
        for p, shown in _walk(ctx, path, name, opts.has("R")):
            follow = p == path and not opts.has("h")
            try:
                ctx.o.lstat(p)
                ctx.o.chown(p, uid, gid, follow_symlinks=follow)
            except OSError as e:
                if not opts.has("f"):
                    where = "cannot access" if e.errno == errno.ENOENT else f"changing {what} of"
                    ctx.error(f"{where} {quote(shown)}: {strerror(e)}")
                status = 1
    return status


# -- stat -------------------------------------------------------------------------------------
_DEFAULT = ("  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\n"
            "Device: %Hd,%Ld\tInode: %-11i Links: {dev}\n"
            "Access: (%04a/%10.10A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\n"
            "Access: %x\nModify: %y\nChange: %z\n Birth: %w\n")  # fmt: skip


def stat(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "Lc:", {"dereference": ("L", False), "format": ("c", True),
                                       "printf": ("printf", True)})  # fmt: skip
    if not files:
        raise UsageFailure("missing operand")
    fmt = opts.get("c")
    pf = opts.get("printf")
    status = 0
    for name in files:
        path = ctx.abspath(name)
        try:
            st = ctx.o.stat(path) if opts.has("L") else ctx.o.lstat(path)
        except OSError as e:
            ctx.error(f"cannot statx {quote(name)}: {strerror(e)}")
            status = 1
            continue
        if pf is not None:
            text = _format(ctx, _backslashes(pf), name, path, st)
        elif fmt is not None:
            text = _format(ctx, fmt, name, path, st) + "\n"
        else:
            dev = statmod.S_ISCHR(st.st_mode) or statmod.S_ISBLK(st.st_mode)
            text = _format(ctx, _DEFAULT.format(dev="%-5h Device type: %Hr,%Lr" if dev else "%h"),
                           name, path, st, default=True)  # fmt: skip
        ctx.write(text)
    return status


def _backslashes(text: str) -> str:
    return unescape(text, False, stop=False)


def _format(ctx: Ctx, fmt: str, name: str, path: str, st: Any, default: bool = False) -> str:
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+ #0123456789.":
            j += 1
        flags = fmt[i + 1 : j]
        if j < len(fmt) and fmt[j] in "HL" and j + 1 < len(fmt) and fmt[j + 1] in "dr":
            conv = fmt[j : j + 2]
            j += 2
        elif j < len(fmt):
            conv = fmt[j]
            j += 1
        else:
            out.append(fmt[i:])
            break
        i = j
        if conv == "%":
            out.append("%")
            continue
        value = _directive(ctx, conv, name, path, st, default)
        if value is None:
            out.append("?")
            continue
        if isinstance(value, int):
            out.append(("%" + flags + ("o" if conv == "a" else "d")) % value)
        else:
            out.append(("%" + flags + "s") % value)
    return "".join(out)


def _directive(ctx: Ctx, conv: str, name: str, path: str, st: Any, default: bool) -> Any:
    mode = st.st_mode
    if conv == "n":
        return name
    if conv == "N":  # the default block prints names raw, -c quotes them
        shown = name if default else quote(name)
        if statmod.S_ISLNK(mode):
            try:
                target = ctx.o.readlink(path)
            except OSError:
                return shown
            return f"{shown} -> {target if default else quote(target)}"
        return shown
    simple: dict[str, Any] = {
        "a": mode & 0o7777, "A": statmod.filemode(mode), "b": int(getattr(st, "st_blocks", 0)),
        "B": 512, "d": st.st_dev, "D": f"{st.st_dev:x}", "f": f"{mode:x}",
        "F": file_type(mode, st.st_size), "g": st.st_gid, "h": st.st_nlink, "i": st.st_ino,
        "o": int(getattr(st, "st_blksize", 4096)), "s": st.st_size, "u": st.st_uid,
        "Hd": os.major(st.st_dev), "Ld": os.minor(st.st_dev), "Hr": os.major(st.st_rdev),
        "Lr": os.minor(st.st_rdev), "t": f"{os.major(st.st_rdev):x}",
        "T": f"{os.minor(st.st_rdev):x}",
    }  # fmt: skip
    if conv in simple:
        return simple[conv]
    if conv == "U":
        return ctx.users.user(st.st_uid) or "UNKNOWN"
    if conv == "G":
        return ctx.users.grp(st.st_gid) or "UNKNOWN"
    times = {"x": "atime", "y": "mtime", "z": "ctime", "X": "atime", "Y": "mtime", "Z": "ctime"}
    if conv in times:
        ns = ns_of(st, times[conv])
        return full_iso(ns) if conv.islower() else ns // 1_000_000_000
    if conv == "w":
        birth = getattr(st, "st_birthtime_ns", None)
        return full_iso(int(birth)) if birth is not None else "-"
    if conv == "W":
        birth = getattr(st, "st_birthtime_ns", None)
        return int(birth) // 1_000_000_000 if birth is not None else 0
    return None
