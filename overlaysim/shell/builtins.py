"""Shell builtins and tiny tools: cd, pwd, exit, true/false, echo, printf, test, basename.

These act on the shell state (cwd, status) or only on their arguments, never on files, so
they live apart from the file tools; ``echo`` follows dash (escapes always on, only ``-n``).
"""

from __future__ import annotations

import stat as statmod
from typing import Any

from overlaysim.shell.context import Ctx, ShellExit, UsageFailure

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "e": "\x1b"}  # fmt: skip


class _Stop(Exception):
    """``\\c`` in echo/printf %b: stop all output here."""


def true(ctx: Ctx, args: list[str]) -> int:
    return 0


def false(ctx: Ctx, args: list[str]) -> int:
    return 1


def exit_(ctx: Ctx, args: list[str]) -> int:
    if not args:
        raise ShellExit(ctx.state.status)
    if not args[0].isdigit():
        ctx.builtin_error(f"Illegal number: {args[0]}")
        raise ShellExit(2)  # an error in a special builtin ends a non-interactive dash
    raise ShellExit(int(args[0]) & 0xFF)


def normpath(path: str) -> str:
    """Logical path normalisation, as ``cd`` does without ``-P``."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def cd(ctx: Ctx, args: list[str]) -> int:
    st = ctx.state
    if args and args[0] == "--":
        args = args[1:]
    target = args[0] if args else st.vars.get("HOME", "/")
    show = False
    if target == "-":
        target, show = st.oldpwd or st.cwd, True
    new = normpath(ctx.abspath(target))
    try:
        ok = statmod.S_ISDIR(ctx.o.stat(new).st_mode)
    except OSError:
        ok = False
    if not ok:
        ctx.builtin_error(f"can't cd to {target}")
        return 2
    st.oldpwd, st.cwd = st.cwd, new
    st.vars["OLDPWD"], st.vars["PWD"] = st.oldpwd, new
    if show:
        ctx.write(new + "\n")
    return 0


def pwd(ctx: Ctx, args: list[str]) -> int:
    ctx.write(ctx.cwd + "\n")
    return 0


def unescape(text: str, octal_zero: bool, stop: bool = True) -> str:
    """Backslash escapes of echo (``\\0nnn``) and printf (``\\nnn``); raises _Stop at ``\\c``
    (unless ``stop`` is False: in a printf format ``\\c`` is plain text, as in dash)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        n = text[i + 1]
        if n == "c" and stop:
            raise _Stop("".join(out))
        if n in _ESCAPES:
            out.append(_ESCAPES[n])
            i += 2
        elif n in "01234567" and (not octal_zero or n == "0"):
            j = i + 2 if octal_zero else i + 1
            digits = ""
            while j < len(text) and len(digits) < 3 and text[j] in "01234567":
                digits += text[j]
                j += 1
            out.append(chr(int(digits or "0", 8) & 0xFF))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def echo(ctx: Ctx, args: list[str]) -> int:
    newline = True
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    try:
        text = unescape(" ".join(args), True) + ("\n" if newline else "")
    except _Stop as s:
        text = str(s)
    ctx.out.write(text.encode("latin-1", "replace") if _is_bytes(text) else text.encode())
    return 0


def _is_bytes(text: str) -> bool:
    return any(0x80 <= ord(c) <= 0xFF for c in text) and all(ord(c) <= 0xFF for c in text)


def printf(ctx: Ctx, args: list[str]) -> int:
    if not args:
        ctx.builtin_error("usage: printf format [arg ...]")
        return 2
    fmt, rest = args[0], args[1:]
    status = 0
    out: list[str] = []
    try:
        while True:
            used, status = _printf_once(ctx, fmt, rest, out, status)
            rest = rest[used:]
            if not rest or used == 0:
                break
    except _Stop:
        pass  # \c: the output so far is already in ``out``
    ctx.write("".join(out))
    return status


def _printf_once(ctx: Ctx, fmt: str, args: list[str], out: list[str], status: int) -> tuple[int, int]:
    used = 0
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "\\":
            j = i + 1
            while j < len(fmt) and j < i + 4 and fmt[j] in "01234567":
                j += 1
            chunk = fmt[i : max(j, i + 2)]
            out.append(unescape(chunk, False, stop=False))
            i += len(chunk)
            continue
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+ #0123456789.":
            j += 1
        if j >= len(fmt):
            out.append(fmt[i:])
            break
        conv, flags = fmt[j], fmt[i + 1 : j]
        i = j + 1
        if conv == "%":
            out.append("%")
            continue
        arg = args[used] if used < len(args) else None
        used += 1 if arg is not None else 0
        if conv == "s":
            out.append(("%" + flags + "s") % (arg or ""))
        elif conv == "b":
            try:
                out.append(("%" + flags + "s") % unescape(arg or "", True))
            except _Stop as s:
                out.append(str(s))
                raise _Stop("") from None
        elif conv == "c":
            out.append((arg or "")[:1])
        elif conv in "diouxX":
            value, ok = _number(arg or "0")
            if not ok:
                partial = bool(arg) and (arg or "")[:1].lstrip("+-").isdigit()
                why = "not completely converted" if partial else "expected numeric value"
                ctx.builtin_error(f"{arg}: {why}")
                status = 1
            out.append(("%" + flags + ("d" if conv == "i" else conv)) % value)
        else:
            raise UsageFailure(f"%{conv}: invalid directive", hint=False)
    return used, status


def _number(text: str) -> tuple[int, bool]:
    t = text.strip()
    if len(t) >= 2 and t[0] in "'\"":
        return ord(t[1]), True
    try:
        return int(t, 0) if not t.lstrip("+-").startswith("0") or t in ("0", "-0") else int(t, 8), True
    except ValueError:
        digits = ""
        for ch in t:
            if ch.isdigit() or (not digits and ch in "+-"):
                digits += ch
            else:
                break
        try:
            return int(digits), False
        except ValueError:
            return 0, False


def basename(ctx: Ctx, args: list[str]) -> int:
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise UsageFailure("missing operand")
    name = args[0].rstrip("/") or ("/" if args[0] else "")
    base = name.rsplit("/", 1)[-1] if name != "/" else "/"
    if len(args) > 1 and base.endswith(args[1]) and base != args[1]:
        base = base[: -len(args[1])]
    ctx.write(base + "\n")
    return 0


def dirname(ctx: Ctx, args: list[str]) -> int:
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise UsageFailure("missing operand")
    for a in args:
        p = a.rstrip("/")
        if "/" not in p:
            d = "/" if a.startswith("/") else "."
        else:
            d = p.rsplit("/", 1)[0].rstrip("/") or "/"
        ctx.write(d + "\n")
    return 0


# -- test / [ ---------------------------------------------------------------------------------
def test(ctx: Ctx, args: list[str]) -> int:
    return _test(ctx, args)


def bracket(ctx: Ctx, args: list[str]) -> int:
    if not args or args[-1] != "]":
        ctx.builtin_error("missing ]")
        return 2
    return _test(ctx, args[:-1])


class _TestError(Exception):
    pass


_UNARY = frozenset({"-e", "-f", "-d", "-L", "-h", "-s", "-r", "-w", "-x", "-b", "-c", "-p", "-S",
                    "-z", "-n"})  # fmt: skip
_BINARY = frozenset({"=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge"})


def _test(ctx: Ctx, args: list[str]) -> int:
    try:
        return 0 if _expr(ctx, args) else 1
    except _TestError as e:
        ctx.builtin_error(str(e))
        return 2


def _expr(ctx: Ctx, a: list[str]) -> bool:
    """POSIX's rules by argument count, with ``-a``/``-o`` for longer expressions."""
    if "-o" in a[1:-1]:
        k = a.index("-o", 1)
        return _expr(ctx, a[:k]) or _expr(ctx, a[k + 1 :])
    if "-a" in a[1:-1]:
        k = a.index("-a", 1)
        return _expr(ctx, a[:k]) and _expr(ctx, a[k + 1 :])
    n = len(a)
    if n == 0:
        return False
    if n == 1:
        return a[0] != ""
    if a[0] == "!":
        return not _expr(ctx, a[1:])
    if n == 2:
        return _unary(ctx, a[0], a[1])
    if n == 3:
        if a[1] not in _BINARY and a[0] in _UNARY:
            raise _TestError(f"{a[1]}: unexpected operator")
        return _binary(a[0], a[1], a[2])
    raise _TestError(f"{a[2] if a[1] in _BINARY else a[0]}: unexpected operator")


def _unary(ctx: Ctx, op: str, arg: str) -> bool:
    if op == "-z":
        return arg == ""
    if op == "-n":
        return arg != ""
    if op not in _UNARY:
        raise _TestError(f"{op}: unexpected operator")
    path = ctx.abspath(arg)
    try:
        st: Any = ctx.o.lstat(path) if op in ("-L", "-h") else ctx.o.stat(path)
    except OSError:
        return False
    mode = st.st_mode
    checks = {"-e": True, "-f": statmod.S_ISREG(mode), "-d": statmod.S_ISDIR(mode),
              "-L": statmod.S_ISLNK(mode), "-h": statmod.S_ISLNK(mode), "-s": st.st_size > 0,
              "-b": statmod.S_ISBLK(mode), "-c": statmod.S_ISCHR(mode),
              "-p": statmod.S_ISFIFO(mode), "-S": statmod.S_ISSOCK(mode)}  # fmt: skip
    if op in checks:
        return bool(checks[op])
    bit = {"-r": 4, "-w": 2, "-x": 1}[op]
    uid = ctx.machine.uid
    if uid == 0:
        return bit != 1 or bool(mode & 0o111) or statmod.S_ISDIR(mode)
    if st.st_uid == uid:
        return bool(mode & (bit << 6))
    if st.st_gid in ctx.machine.groups or st.st_gid == ctx.machine.gid:
        return bool(mode & (bit << 3))
    return bool(mode & bit)


def _binary(left: str, op: str, right: str) -> bool:
    if op in ("=", "=="):
        return left == right
    if op == "!=":
        return left != right
    ints = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__,
            "-gt": int.__gt__, "-ge": int.__ge__}  # fmt: skip
    if op in ints:
        try:
            return bool(ints[op](int(left), int(right)))
        except ValueError:
            bad = left if not left.strip().lstrip("-").isdigit() else right
            raise _TestError(f"Illegal number: {bad}") from None
    raise _TestError(f"{left}: unexpected operator")  # dash names the first operand
