"""``getfattr``/``setfattr`` (the attr package): how a reader sees ``trusted.overlay.*``.

Output follows getfattr.c: names sorted by strcmp, values as ``"text"`` when at most one byte
in eight is unprintable (a trailing NUL not counted), otherwise ``0s`` base64; ``-e hex``
gives ``0x``. Leading ``/`` is stripped from paths with a one-time notice on stderr.
"""

from __future__ import annotations

import base64
import binascii
import re
import stat as statmod

from overlaysim.shell.context import Ctx, UsageFailure, strerror
from overlaysim.shell.options import getopt

_GET_SPEC = "[-hRLP] [-n name|-d] [-e en] [-m pattern] path..."
_SET_SPEC = "{-n name} [-v value] [-h] file...\n       setfattr {-x name} [-h] file..."


def _esc(text: str, chars: str) -> str:
    """attr's quote(): backslash and the given characters as ``\\ooo``."""
    return "".join(f"\\{ord(c):03o}" if c == "\\" or c in chars else c for c in text)


def _printable(b: int) -> bool:
    return 0x20 <= b < 0x7F


def encode_value(value: bytes, encoding: str | None) -> str:
    """getfattr's ``encode()``: text, hex (``0x``) or base64 (``0s``)."""
    if encoding is None:
        body = value[:-1] if value and value[-1] == 0 else value
        nonpr = sum(1 for b in body if not _printable(b))
        encoding = "text" if len(body) >= nonpr * 8 else "base64"
    if encoding == "hex":
        return "0x" + value.hex()
    if encoding == "base64":
        return "0s" + base64.b64encode(value).decode()
    out = ['"']
    for n, b in enumerate(value):
        if b == 0 and n + 1 == len(value):
            break
        if b in (0, 10, 13):
            out.append(f"\\{b:03o}")
        elif b in (0x5C, 0x22):
            out.append("\\" + chr(b))
        else:
            out.append(chr(b) if b < 0x80 else bytes([b]).decode("utf-8", "surrogateescape"))
    out.append('"')
    return "".join(out)


def decode_value(text: str) -> bytes:
    """setfattr's value syntax: ``0x..`` hex, ``0s..`` base64, ``"..."`` with escapes, or raw."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(text) >= 2 and text[0] == "0" and text[1] in "xX":
        try:
            return binascii.unhexlify(text[2:])
        except (binascii.Error, ValueError):
            raise ValueError("bad input encoding") from None
    if len(text) >= 2 and text[0] == "0" and text[1] in "sS":
        try:
            return base64.b64decode(text[2:], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("bad input encoding") from None
    if len(raw) >= 2 and raw[:1] == b'"' and raw[-1:] == b'"':
        body, out, i = raw[1:-1], bytearray(), 0
        while i < len(body):
            if body[i] == 0x5C and i + 1 < len(body):
                digits = body[i + 1 : i + 4]
                if len(digits) == 3 and all(0x30 <= d <= 0x37 for d in digits):
                    out.append(int(digits, 8) & 0xFF)
                    i += 4
                    continue
                out.append(body[i + 1])
                i += 2
                continue
            out.append(body[i])
            i += 1
        return bytes(out)
    return raw


def getfattr(ctx: Ctx, args: list[str]) -> int:
    try:
        opts, paths = getopt(args, "n:de:m:hRLP", {
            "name": ("n", True), "dump": ("d", False), "encoding": ("e", True),
            "match": ("m", True), "only-values": ("v", False), "no-dereference": ("h", False),
            "absolute-names": ("a", False), "recursive": ("R", False),
            "logical": ("L", False), "physical": ("P", False)})  # fmt: skip
    except UsageFailure:
        opts, paths = None, []
    enc = opts.get("e") if opts is not None else None
    if opts is None or not paths or (enc is not None and enc not in ("text", "hex", "base64")):
        ctx.err.write(f"Usage: getfattr {_GET_SPEC}\nTry `getfattr --help' for more "
                      "information.\n".encode())  # fmt: skip
        return 2
    pattern = opts.get("m", "^user\\.")
    assert pattern is not None
    try:
        name_rx = re.compile("" if pattern == "-" else pattern)
    except re.error:
        ctx.error(f'invalid regular expression "{pattern}"')
        return 1
    name = opts.get("n")
    dump = opts.has("d") or name is not None
    follow = not opts.has("h")
    errors = 0
    warned = False

    def show(path: str) -> int:
        nonlocal warned
        full = ctx.abspath(path)
        o = ctx.o
        if name is not None:
            names = [name]
        else:
            try:
                names = sorted((n for n in o.listxattr(full, follow_symlinks=follow)
                                if name_rx.search(n)), key=lambda n: n.encode())  # fmt: skip
            except OSError as e:
                ctx.error(f"{_esc(path, chr(10) + chr(13))}: {strerror(e)}")
                return 1
        lines: list[str] = []
        bad = 0
        for n in names:
            value = b""
            if dump or opts.has("v"):
                try:
                    value = o.getxattr(full, n, follow_symlinks=follow)
                except OSError as e:
                    text = "No such attribute" if e.errno == 61 else strerror(e)
                    ctx.err.write(f"{_esc(path, chr(10) + chr(13))}: {_esc(n, chr(10) + chr(13))}: "
                                  f"{text}\n".encode("utf-8", "surrogateescape"))  # fmt: skip
                    bad = 1
                    continue
            if not lines and not opts.has("v"):
                shown = path
                if not opts.has("a"):
                    if shown.startswith("/"):
                        if not warned:
                            ctx.error("Removing leading '/' from absolute path names")
                            warned = True
                        shown = shown.lstrip("/")
                    elif shown.startswith("./"):
                        shown = shown[2:].lstrip("/")
                    shown = shown or "."
                lines.append(f"# file: {_esc(shown, chr(10) + chr(13))}\n")
            if opts.has("v"):
                ctx.out.write(value)
                lines.append("")
            elif dump:
                lines.append(f"{_esc(n, '=' + chr(10) + chr(13))}={encode_value(value, enc)}\n")
            else:
                lines.append(_esc(n, "=\n\r") + "\n")
        if lines and not opts.has("v"):
            ctx.write("".join(lines) + "\n")
        return bad

    def walk(path: str) -> None:
        nonlocal errors
        errors += show(path)
        if not opts.has("R"):
            return
        full = ctx.abspath(path)
        try:
            st = ctx.o.stat(full) if opts.has("L") else ctx.o.lstat(full)
        except OSError:
            return
        if statmod.S_ISDIR(st.st_mode):
            for n in ctx.o.listdir(full):
                walk(path.rstrip("/") + "/" + n if path != "/" else "/" + n)

    for p in paths:
        try:
            (ctx.o.stat if follow else ctx.o.lstat)(ctx.abspath(p))
        except OSError as e:
            ctx.error(f"{_esc(p, chr(10) + chr(13))}: {strerror(e)}")
            errors += 1
            continue
        walk(p)
    return 1 if errors else 0


def setfattr(ctx: Ctx, args: list[str]) -> int:
    try:
        opts, paths = getopt(args, "n:v:x:h", {"name": ("n", True), "value": ("v", True),
                                                "remove": ("x", True),
                                                "no-dereference": ("h", False)})  # fmt: skip
    except UsageFailure:
        opts, paths = None, []
    if opts is None or not paths or (opts.get("n") is None) == (opts.get("x") is None):
        ctx.err.write(f"Usage: setfattr {_SET_SPEC}\nTry `setfattr --help' for more "
                      "information.\n".encode())  # fmt: skip
        return 2
    follow = not opts.has("h")
    status = 0
    name = opts.get("n")
    for p in paths:
        full = ctx.abspath(p)
        try:
            if name is not None:
                text = opts.get("v")
                try:
                    value = decode_value(text) if text is not None else b""
                except ValueError as e:
                    ctx.err.write(f"{e}\n".encode())  # setfattr prints just this line
                    status = 1
                    continue
                ctx.o.setxattr(full, name, value, follow_symlinks=follow)
            else:
                ctx.o.removexattr(full, opts.get("x"), follow_symlinks=follow)
        except OSError as e:
            text = "No such attribute" if e.errno == 61 else strerror(e)
            ctx.error(f"{p}: {text}")
            status = 1
    return status
