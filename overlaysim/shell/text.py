"""Text filters for pipelines: grep (basic/extended/fixed), head, tail, wc, sort.

They read named files through the os-like module or the pipeline's stdin bytes; lines are
bytes split on ``\\n`` as in the C locale, so binary-ish content passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from overlaysim.shell.context import Ctx, UsageFailure, lines_of, quote, read_all, strerror
from overlaysim.shell.options import Opts, getopt


def _inputs(ctx: Ctx, files: list[str]) -> list[tuple[str, bytes | None]]:
    """(name, data) per operand; data None after an error was reported."""
    out: list[tuple[str, bytes | None]] = []
    for name in files or ["-"]:
        if name == "-":
            out.append(("(standard input)" if ctx.prog == "grep" else "-", ctx.stdin))
            continue
        try:
            out.append((name, read_all(ctx.o, ctx.abspath(name))))
        except OSError as e:
            ctx.error(f"{name}: {strerror(e)}")
            out.append((name, None))
    return out


def _bre_to_python(pattern: str) -> str:
    """POSIX basic regex to Python: ``\\(\\)\\{\\}\\|\\+\\?`` are operators, bare ones literal."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            out.append(n if n in "(){}|+?" else "\\" + n)
            i += 2
            continue
        if c in "(){}|+?":
            out.append("\\" + c)
        elif c == "*" and (not out or out[-1] in ("(", "|", "^")):
            out.append("\\*")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def grep(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "EFivcnlLqhHwxe:o", {
        "extended-regexp": ("E", False), "fixed-strings": ("F", False),
        "ignore-case": ("i", False), "invert-match": ("v", False), "count": ("c", False),
        "line-number": ("n", False), "files-with-matches": ("l", False),
        "quiet": ("q", False), "no-filename": ("h", False),
        "with-filename": ("H", False), "word-regexp": ("w", False),
        "line-regexp": ("x", False), "regexp": ("e", True),
        "only-matching": ("o", False)})  # fmt: skip
    patterns = opts.all("e")
    if not patterns:
        if not ops:
            ctx.err.write(b"Usage: grep [OPTION]... PATTERNS [FILE]...\n"
                          b"Try 'grep --help' for more information.\n")  # fmt: skip
            return 2
        patterns, ops = ops[0].split("\n"), ops[1:]
    regexes = []
    for p in patterns:
        if opts.has("F"):
            rx = re.escape(p)
        elif opts.has("E"):
            rx = p
        else:
            rx = _bre_to_python(p)
        if opts.has("w"):
            rx = rf"(?<!\w)(?:{rx})(?!\w)"
        if opts.has("x"):
            rx = rf"^(?:{rx})$"
        try:
            regexes.append(re.compile(rx.encode("utf-8", "surrogateescape"),
                                      re.IGNORECASE if opts.has("i") else 0))  # fmt: skip
        except re.error as e:
            ctx.error(f"{e}")
            return 2
    many = len(ops) > 1
    names = (many or opts.has("H")) and not opts.has("h")
    found = False
    trouble = False
    for name, data in _inputs(ctx, ops):
        if data is None:
            trouble = True
            continue
        count = 0
        for lineno, line in enumerate(lines_of(data), 1):
            body = line[:-1] if line.endswith(b"\n") else line
            hits = [m for rx in regexes for m in rx.finditer(body)]
            matched = bool(hits) != opts.has("v")
            if not matched:
                continue
            count += 1
            found = True
            if opts.has("q"):
                return 0
            if opts.has("c") or opts.has("l") or opts.has("L"):
                continue
            prefix = (name + ":" if names else "") + (f"{lineno}:" if opts.has("n") else "")
            if opts.has("o") and not opts.has("v"):
                for m in sorted(hits, key=lambda m: m.start()):
                    if m.group(0):
                        ctx.out.write(prefix.encode() + m.group(0) + b"\n")
            else:
                ctx.out.write(prefix.encode("utf-8", "surrogateescape") + body + b"\n")
        if opts.has("c"):
            ctx.write((name + ":" if names else "") + f"{count}\n")
        if opts.has("l") and count:
            ctx.write(name + "\n")
        if opts.has("L") and not count:
            ctx.write(name + "\n")
    if trouble and not (found and opts.has("q")):
        return 2
    return 0 if found else 1


def _count_arg(text: str | None, default: int) -> tuple[int, bool]:
    """``-n 5`` / ``-n -5`` (all but the last five) / ``-n +5`` (tail: from line five)."""
    if text is None:
        return default, False
    neg = text.startswith("-") or text.startswith("+")
    digits = text.lstrip("+-")
    if not digits.isdigit():
        raise UsageFailure(f"invalid number of lines: {quote(text)}", hint=False)
    return int(digits), neg


def _numeric_shorthand(args: list[str]) -> list[str]:
    """``head -5`` means ``head -n 5`` (only as the first argument, as in coreutils)."""
    if args and len(args[0]) > 1 and args[0][0] == "-" and args[0][1:].isdigit():
        return [f"-n{args[0][1:]}", *args[1:]]
    return args


_HEAD_TAIL_OPTS = {"lines": ("n", True), "bytes": ("c", True)}


def _head_tail(ctx: Ctx, args: list[str], pick: Callable[[Opts, bytes], bytes]) -> int:
    """The part head and tail share: options, ``==> name <==`` headers, failed operands."""
    opts, files = getopt(_numeric_shorthand(args), "n:c:qv", _HEAD_TAIL_OPTS)
    pick(opts, b"")  # a bad count is a usage error before any file is read
    status = 0
    inputs = _inputs(ctx, files)
    for k, (name, data) in enumerate(inputs):
        if data is None:
            status = 1
            continue
        if (len(inputs) > 1 or opts.has("v")) and not opts.has("q"):
            ctx.write(("\n" if k else "") + f"==> {name} <==\n")
        ctx.out.write(pick(opts, data))
    return status


def _head_pick(opts: Opts, data: bytes) -> bytes:
    byte_text = opts.get("c")
    if byte_text is not None:
        b, neg = _count_arg(byte_text, 0)
        return data[: len(data) - b] if neg else data[:b]
    n, all_but = _count_arg(opts.get("n"), 10)
    lines = lines_of(data)
    return b"".join(lines[: len(lines) - n] if all_but else lines[:n])


def _tail_pick(opts: Opts, data: bytes) -> bytes:
    byte_text = opts.get("c")
    if byte_text is not None:
        b, _ = _count_arg(byte_text, 0)
        if byte_text.startswith("+"):
            return data[max(b - 1, 0) :]
        return data[-b:] if b else b""
    text = opts.get("n")
    n, _ = _count_arg(text, 10)
    lines = lines_of(data)
    from_start = text is not None and text.startswith("+")
    return b"".join(lines[max(n - 1, 0) :] if from_start else (lines[-n:] if n else []))


def head(ctx: Ctx, args: list[str]) -> int:
    return _head_tail(ctx, args, _head_pick)


def tail(ctx: Ctx, args: list[str]) -> int:
    return _head_tail(ctx, args, _tail_pick)


def wc(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "lwcm", {"lines": ("l", False), "words": ("w", False),
                                        "bytes": ("c", False), "chars": ("m", False)})  # fmt: skip
    which = [k for k in "lwmc" if opts.has(k)] or ["l", "w", "c"]
    rows: list[tuple[list[int], str | None]] = []
    totals = [0] * len(which)
    status = 0
    piped = not files or "-" in files  # GNU pads to 7 when an input is not a regular file
    named_bytes = 0
    for name, data in _inputs(ctx, files):
        if data is None:
            status = 1
            continue
        if files and name != "-":
            named_bytes += len(data)
        values = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data),
                  "m": len(data.decode("utf-8", "replace"))}  # fmt: skip
        row = [values[k] for k in which]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        rows.append((row, None if not files else name))
    if len(rows) > 1:
        rows.append((totals, "total"))
    # GNU sizes the columns from the files' total size, known before reading them
    width = 1 if (len(which) == 1 and len(rows) == 1) else max(
        7 if piped else 1, len(str(named_bytes)))
    for row, label in rows:
        text = " ".join(f"{v:>{width}}" for v in row)
        ctx.write(text + (f" {label}" if label is not None else "") + "\n")
    return status


def sort(ctx: Ctx, args: list[str]) -> int:
    opts, files = getopt(args, "rnuk:t:", {"reverse": ("r", False), "numeric-sort": ("n", False),
                                           "unique": ("u", False)})  # fmt: skip
    lines: list[bytes] = []
    status = 0
    for _, data in _inputs(ctx, files):
        if data is None:
            status = 2
            continue
        lines.extend(ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines_of(data))
    sep = opts.get("t")
    key_spec = opts.get("k")
    if key_spec is not None and not key_spec.split(",")[0].split(".")[0].isdigit():
        raise UsageFailure(f"invalid number at field start: invalid count at start of "
                           f"{quote(key_spec)}")  # fmt: skip

    def key_text(line: bytes) -> bytes:
        body = line[:-1]
        if key_spec is None:
            return body
        start = int(key_spec.split(",")[0].split(".")[0]) - 1
        fields = body.split(sep.encode()) if sep else body.split()
        return (sep.encode() if sep else b" ").join(fields[start:]) if start < len(fields) else b""

    def numeric(line: bytes) -> tuple[float, bytes]:
        m = re.match(rb"\s*(-?\d+(?:\.\d*)?)", key_text(line))
        return (float(m.group(1)) if m else 0.0, line)

    if opts.has("n"):
        lines.sort(key=numeric, reverse=opts.has("r"))
    else:
        lines.sort(key=lambda ln: (key_text(ln), ln), reverse=opts.has("r"))
    if opts.has("u"):
        unique: list[bytes] = []
        for ln in lines:
            if not unique or key_text(unique[-1]) != key_text(ln):
                unique.append(ln)
        lines = unique
    ctx.out.write(b"".join(lines))
    return status
