"""Reading strace's argument text: top-level splitting, C strings, numbers, flag names, fds.

Kept apart from the line parser so that each decoder is small and testable on its own. Every
function raises ``ValueError`` (or :class:`Skip`, a subclass) on text it cannot read; the
parser turns that into a counted skip, so hostile input never escapes as an exception.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from typing import Any

AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x100, 0x200, 0x400, 0x1000
#: ``close_range``'s "up to the last fd" as strace 6.1 prints it (``~0U`` in newer releases).
MAX_FD = 0xFFFFFFFF


class Skip(ValueError):
    """The call cannot become an op; ``str(self)`` is the reason counted in ``skipped``."""


# --- splitting ---------------------------------------------------------------------------
# Atoms that may hide a ", " or a bracket: quoted strings, -y/-yy fd annotations
# (``3</a/b>``, ``1</dev/null<char 1:3>>``; strace escapes < and > inside them), comments.
_STR = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_ANN = r"<[^<>]*+(?:<[^<>]*+>[^<>]*+)*+>"
_TOKEN = re.compile(rf"{_STR}|{_ANN}|/\*.{{0,256}}?\*/|[{{\[(]|[}}\])]|, ")
# One argument with at most two levels of brackets, in one regex call (possessive, so no
# backtracking on hostile text); anything it cannot cover goes to the token scanner.
_ATOM = rf'{_STR}|{_ANN}|/\*.{{0,256}}?\*/|[^{{}}\[\]()"<,/]++|/'
_L1 = rf"[{{\[(](?:{_ATOM}|, )*+[}}\])]"
_L2 = rf"[{{\[(](?:{_ATOM}|{_L1}|, )*+[}}\])]"
_FLAT = re.compile(rf"(?:\A|, )((?:{_ATOM}|{_L2}|,(?! ))*+)")


def split_args(s: str) -> list[str]:
    """Top-level comma-separated items of ``s`` (an argument list, array or struct body)."""
    parts: list[str] = _FLAT.findall(s)
    if len(s) == sum(map(len, parts)) + 2 * len(parts) - 2:
        return parts
    out: list[str] = []
    depth = 0
    start = 0
    for m in _TOKEN.finditer(s):
        c = s[m.start()]
        if c == ",":
            if not depth:
                out.append(s[start : m.start()])
                start = m.end()
        elif c in "{[(":
            depth += 1
        elif c in "}])":
            depth -= 1
    out.append(s[start:])
    return out


def inner(s: str, open_: str, close: str) -> str:
    """The body of a bracketed value (``[...]``, ``{...}``), comments after it ignored."""
    s = strip_comment(s)
    if not (s.startswith(open_) and s.endswith(close)):
        raise Skip("argument not shown")
    return s[1:-1]


def strip_comment(s: str) -> str:
    """``0x55d0 /* 6 entries */`` -> ``0x55d0`` (strace's annotations after a value)."""
    s = s.strip()
    if s.endswith("*/"):
        i = s.rfind(" /*")
        if i >= 0:
            return s[:i]
    return s


def fields(s: str) -> dict[str, str]:
    """A struct's ``name=value`` items (``{flags=O_RDONLY, mode=0}`` -> dict)."""
    out: dict[str, str] = {}
    for item in split_args(inner(s, "{", "}")):
        key, eq, value = item.partition("=")
        if eq:
            out[key.strip()] = value
    return out


# --- strings --------------------------------------------------------------------------------
_ESC = re.compile(r"\\(?:x([0-9a-fA-F]{1,2})|([0-7]{1,3})|(.))", re.S)
# Text whose every escape means the same to Python's decoder as to strace (no warnings).
_PY_SAFE = re.compile(
    r'(?:[^\\]++|\\(?:[0-3][0-7]{0,2}|[4-7][0-7]?(?![0-7])|x[0-9a-fA-F]{2}|[ntrvfab"\\]))*+')
_SIMPLE_ESC = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "e": 27}


def encode(s: str) -> bytes:
    """Log text back to bytes: latin-1 (how :func:`open_trace_text` decodes) when possible."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        pass
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def unescape(body: str) -> bytes:
    """The bytes of a C string body as strace prints it (``\\n``, ``\\377``, ``\\x61``)."""
    if "\\" not in body:
        return encode(body)
    if body.isascii() and _PY_SAFE.fullmatch(body):  # C speed for big -s buffers
        return codecs.escape_decode(body.encode("ascii"))[0]
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(body):
        if m.start() > pos:
            out += encode(body[pos : m.start()])
        hx, octal, ch = m.groups()
        if hx is not None:
            out.append(int(hx, 16))
        elif octal is not None:
            out.append(int(octal, 8) & 0xFF)
        else:
            code = _SIMPLE_ESC.get(ch)
            if code is not None:
                out.append(code)
            else:
                out += encode(ch)  # \\ \" \' and anything strace would not write
        pos = m.end()
    out += encode(body[pos:])
    return bytes(out)


def cstring(arg: str) -> tuple[bytes, bool]:
    """(bytes, truncated) of a quoted string; ``truncated`` when strace cut it (``"ab"...``)."""
    if arg.endswith('"...'):
        body, truncated = arg[1:-4], True
    else:
        body, truncated = arg[1:-1], False
    if len(arg) < 2 or arg[0] != '"' or arg[len(body) + 1] != '"':
        raise Skip("buffer not shown")
    return unescape(body), truncated


def path(arg: str) -> str:
    """A path argument as ``os.fsdecode`` text; a cut, NULL or unreadable one is a skip."""
    if arg[:1] != '"':
        raise Skip("NULL path" if arg.startswith("NULL") else "path not shown")
    if arg.endswith('"') and len(arg) >= 2:
        body = arg[1:-1]
        if body.isascii() and "\\" not in body:
            return body
        return os.fsdecode(unescape(body))
    if arg.endswith('"...'):
        raise Skip("truncated path")
    raise Skip("path not shown")


def string_list(arg: str) -> list[str] | None:
    """``["a", "b", ...]`` -> the strings shown (``None`` when the array is not printed)."""
    arg = strip_comment(arg)
    if not arg.startswith("["):
        return None
    body = inner(arg, "[", "]")
    if not body:
        return []
    return [os.fsdecode(cstring(x)[0]) for x in split_args(body) if x.startswith('"')]


# --- numbers, fds, flags ------------------------------------------------------------------
def number(s: str) -> int:
    """An integer as strace prints it: decimal, ``0x`` hex, or octal with a leading 0."""
    if s.isdigit() and (s[0] != "0" or len(s) == 1):
        return int(s)
    s = s.strip()
    neg = s.startswith("-")
    body = s[1:] if neg else s
    if body[:2] in ("0x", "0X"):
        v = int(body[2:], 16)
    elif len(body) > 1 and body[0] == "0":
        v = int(body, 8)
    elif body.isdigit():
        v = int(body)
    else:
        raise ValueError(s)
    return -v if neg else v


def fd(s: str) -> int:
    """``3`` or ``3</path>`` (-y) -> 3."""
    i = s.find("<")
    return int(s if i < 0 else s[:i])


def dirfd(s: str) -> int | None:
    """A dirfd argument; ``AT_FDCWD`` (with or without its -y path) is ``None``."""
    if s.startswith("AT_FDCWD"):
        return None
    return fd(s)


def pointed(s: str) -> int | None:
    """An in/out offset: ``NULL`` -> None, ``[123]`` or ``[0] => [3]`` -> the value passed in."""
    if s.startswith("NULL"):
        return None
    if not s.startswith("["):
        raise Skip("offset not shown")
    return number(s[1 : s.index("]")])


def _flag_names() -> dict[str, int]:
    names: dict[str, int] = {k: v for k, v in vars(os).items()
                             if k.startswith("O_") and isinstance(v, int)}  # fmt: skip
    names.update({"__O_TMPFILE": 0o20000000, "__O_SYNC": 0o4000000, "FASYNC": os.O_ASYNC,
                  "O_FSYNC": os.O_SYNC})  # fmt: skip
    names.setdefault("O_LARGEFILE", 0)
    names.update({k: v for k, v in vars(stat).items()
                  if k.startswith(("S_IF", "S_IS", "S_IR", "S_IW", "S_IX")) and k[4:5].isupper()
                  and isinstance(v, int) and k not in ("S_IFMT",)})  # fmt: skip
    names.update({
        "AT_SYMLINK_NOFOLLOW": AT_SYMLINK_NOFOLLOW, "AT_REMOVEDIR": AT_REMOVEDIR,
        "AT_EACCESS": 0x200, "AT_SYMLINK_FOLLOW": AT_SYMLINK_FOLLOW, "AT_NO_AUTOMOUNT": 0x800,
        "AT_EMPTY_PATH": AT_EMPTY_PATH, "AT_STATX_SYNC_AS_STAT": 0, "AT_STATX_FORCE_SYNC": 0x2000,
        "AT_STATX_DONT_SYNC": 0x4000, "AT_RECURSIVE": 0x8000,
        "RENAME_NOREPLACE": 1, "RENAME_EXCHANGE": 2, "RENAME_WHITEOUT": 4,
        "XATTR_CREATE": 1, "XATTR_REPLACE": 2,
        "CLOSE_RANGE_UNSHARE": 2, "CLOSE_RANGE_CLOEXEC": 4,
        "FALLOC_FL_KEEP_SIZE": 1, "FALLOC_FL_PUNCH_HOLE": 2, "FALLOC_FL_NO_HIDE_STALE": 4,
        "FALLOC_FL_COLLAPSE_RANGE": 8, "FALLOC_FL_ZERO_RANGE": 0x10,
        "FALLOC_FL_INSERT_RANGE": 0x20, "FALLOC_FL_UNSHARE_RANGE": 0x40,
        "RESOLVE_NO_XDEV": 1, "RESOLVE_NO_MAGICLINKS": 2, "RESOLVE_NO_SYMLINKS": 4,
        "RESOLVE_BENEATH": 8, "RESOLVE_IN_ROOT": 0x10, "RESOLVE_CACHED": 0x20,
        "F_OK": 0, "R_OK": 4, "W_OK": 2, "X_OK": 1, "FD_CLOEXEC": 1,
        "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2, "SEEK_DATA": 3, "SEEK_HOLE": 4,
        "RWF_HIPRI": 1, "RWF_DSYNC": 2, "RWF_SYNC": 4, "RWF_NOWAIT": 8, "RWF_APPEND": 0x10,
    })  # fmt: skip
    return names


FLAG_NAMES = _flag_names()
_FLAG_CACHE: dict[str, int] = {}


def flags(s: str) -> int:
    """``O_WRONLY|O_CREAT|0x400000`` or ``S_IFCHR|0644`` -> int; an unknown name is a skip."""
    v = _FLAG_CACHE.get(s)
    if v is not None:
        return v
    text = strip_comment(s)
    total = 0
    for part in text.split("|"):
        part = part.strip()
        known = FLAG_NAMES.get(part)
        if known is not None:
            total |= known
        elif part[:1].isdigit():
            total |= number(part)
        elif not part:
            raise ValueError(s)
        else:
            raise Skip(f"unknown flag {part[:40]}")
    if len(_FLAG_CACHE) > 4096:
        _FLAG_CACHE.clear()
    _FLAG_CACHE[s] = total
    return total


def makedev(s: str) -> int:
    """``makedev(0x1, 0x3)`` -> the dev_t value ``os.makedev`` gives."""
    s = strip_comment(s)
    if s.startswith("makedev("):
        major, minor = split_args(s[8:-1])
        return os.makedev(number(major), number(minor))
    return number(s)


# --- structured values -------------------------------------------------------------------
_TV = re.compile(r"tv_sec=(-?\d+), tv_(n|u)sec=(\w+)")


def _one_time(s: str) -> Any:
    s = strip_comment(s)
    if "UTIME_NOW" in s:
        return None
    if "UTIME_OMIT" in s:
        return "omit"
    m = _TV.search(s)
    if m is None:
        raise Skip("times not shown")
    frac = int(m.group(3))
    return [int(m.group(1)), frac if m.group(2) == "n" else frac * 1000]


def times(s: str) -> tuple[Any, Any]:
    """(atime, mtime) of utimes/utimensat/utime: null = now, "omit", or [sec, nsec]."""
    s = strip_comment(s)
    if s.startswith("NULL"):
        return None, None
    if s.startswith("{"):  # utime(2): {actime=1 /* ... */, modtime=2 /* ... */}
        f = fields(s)
        return [number(strip_comment(f["actime"])), 0], [number(strip_comment(f["modtime"])), 0]
    items = split_args(inner(s, "[", "]"))
    if len(items) != 2:
        raise Skip("times not shown")
    return _one_time(items[0]), _one_time(items[1])


def iovecs(s: str) -> tuple[list[tuple[str, int]], bool]:
    """(iov_base text, iov_len) of each iovec shown, and whether the array was cut short."""
    s = strip_comment(s)
    body = inner(s, "[", "]")
    out: list[tuple[str, int]] = []
    cut = False
    for item in split_args(body) if body else []:
        if item.strip() == "...":
            cut = True
            continue
        f = fields(item)
        out.append((f.get("iov_base", ""), number(f["iov_len"])))
    return out, cut


def entries(s: str) -> int | None:
    """Directory entries returned by getdents: the ``/* 5 entries */`` note or the array."""
    i = s.find("/* ")
    if i >= 0:
        word = s[i + 3 :].split(" ", 1)[0]
        return int(word) if word.isdigit() else None
    s = s.strip()
    if not s.startswith("["):
        return None
    body = s[1:-1]
    if not body:
        return 0
    items = split_args(body)
    if items[-1].strip() == "...":
        return None
    return len(items)
