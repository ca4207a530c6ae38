"""Tree walkers: ``find`` (a useful subset of predicates), ``du`` and ``tree``.

``find`` and ``du`` visit entries in directory (readdir) order, as GNU findutils and
coreutils do, so on an overlay the order is the merged readdir order; ``tree`` sorts by name
(C locale) and ends with tree(1)'s ``N directories, M files`` line (2.x counts the top
directory); its lines are ASCII unless the shell's locale variables name UTF-8, as tree does.
"""

from __future__ import annotations

import stat as statmod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overlaysim.shell.context import Ctx, UsageFailure, quote, strerror
from overlaysim.shell.expand import pattern_match
from overlaysim.shell.fmt import c_sorted, classify, human
from overlaysim.shell.options import getopt

_TYPES = {"f": statmod.S_IFREG, "d": statmod.S_IFDIR, "l": statmod.S_IFLNK,
          "c": statmod.S_IFCHR, "b": statmod.S_IFBLK, "p": statmod.S_IFIFO,
          "s": statmod.S_IFSOCK}  # fmt: skip


def _join(base: str, name: str) -> str:
    return base + name if base.endswith("/") else f"{base}/{name}"


# -- find -------------------------------------------------------------------------------------
@dataclass
class _Item:
    shown: str
    path: str
    name: str
    st: Any
    depth: int


Pred = Callable[[_Item], bool]


class _FindParser:
    """Expression grammar: ``expr := and ('-o' and)*``, ``and := unary (['-a'] unary)*``."""

    def __init__(self, ctx: Ctx, toks: list[str]) -> None:
        self.ctx = ctx
        self.toks = toks
        self.i = 0
        self.has_action = False

    def parse(self) -> Pred:
        pred = self._or()
        if self.i < len(self.toks):
            tok = self.toks[self.i]
            raise UsageFailure(f"unexpected extra predicate '{tok}'" if tok != ")"
                               else "invalid expression; you have too many ')'", hint=False)  # fmt: skip
        return pred

    def _or(self) -> Pred:
        left = self._and()
        while self.i < len(self.toks) and self.toks[self.i] in ("-o", "-or"):
            self.i += 1
            right = self._and()
            left = (lambda a, b: lambda it: a(it) or b(it))(left, right)
        return left

    def _and(self) -> Pred:
        left = self._unary()
        while self.i < len(self.toks) and self.toks[self.i] not in ("-o", "-or", ")"):
            if self.toks[self.i] in ("-a", "-and"):
                self.i += 1
            right = self._unary()
            left = (lambda a, b: lambda it: a(it) and b(it))(left, right)
        return left

    def _arg(self, tok: str) -> str:
        if self.i >= len(self.toks):
            raise UsageFailure(f"missing argument to '{tok}'", hint=False)
        self.i += 1
        return self.toks[self.i - 1]

    def _unary(self) -> Pred:
        if self.i >= len(self.toks):
            raise UsageFailure("invalid expression", hint=False)
        tok = self.toks[self.i]
        self.i += 1
        if tok in ("!", "-not"):
            inner = self._unary()
            return lambda it: not inner(it)
        if tok == "(":
            inner = self._or()
            if self.i >= len(self.toks) or self.toks[self.i] != ")":
                raise UsageFailure("invalid expression; I was expecting to find a ')' somewhere "
                                   "but did not see one.", hint=False)  # fmt: skip
            self.i += 1
            return inner
        if tok in ("-name", "-iname"):
            pat = self._arg(tok)
            if tok == "-iname":
                return lambda it: pattern_match(pat.lower(), it.name.lower())
            return lambda it: pattern_match(pat, it.name)
        if tok in ("-path", "-wholename"):
            pat = self._arg(tok)
            return lambda it: pattern_match(pat, it.shown)
        if tok == "-type":
            spec = self._arg(tok)
            kinds = spec.split(",")
            if not all(k in _TYPES for k in kinds):
                raise UsageFailure(f"Unknown argument to -type: {spec}", hint=False)
            wanted = {_TYPES[k] for k in kinds}
            return lambda it: statmod.S_IFMT(it.st.st_mode) in wanted
        if tok == "-empty":
            return self._empty
        if tok in ("-maxdepth", "-mindepth"):
            self._arg(tok)  # read by find() before parsing; a true predicate here
            return lambda it: True
        if tok in ("-print", "-print0"):
            self.has_action = True
            end = "\n" if tok == "-print" else "\0"
            return lambda it: self._print(it.shown + end)
        if tok in ("-true", "-false"):
            value = tok == "-true"
            return lambda it: value
        if tok in ("-inum", "-links"):
            text = self._arg(tok)
            if not text.isdigit():
                raise UsageFailure(f"invalid argument `{text}' to `{tok}'", hint=False)
            n = int(text)
            field = "st_ino" if tok == "-inum" else "st_nlink"
            return lambda it: int(getattr(it.st, field)) == n
        if tok == "-newer":
            ref = self._arg(tok)
            mtime = self.ctx.o.stat(self.ctx.abspath(ref)).st_mtime_ns
            return lambda it: int(it.st.st_mtime_ns) > mtime
        if tok.startswith("-"):
            raise UsageFailure(f"unknown predicate '{tok}'", hint=False)
        raise UsageFailure(f"paths must precede expression: '{tok}'", hint=False)

    def _empty(self, it: _Item) -> bool:
        mode = it.st.st_mode
        if statmod.S_ISDIR(mode):
            try:
                return not self.ctx.o.listdir(it.path)
            except OSError:
                return False
        return statmod.S_ISREG(mode) and it.st.st_size == 0

    def _print(self, text: str) -> bool:
        self.ctx.write(text)
        return True


def find(ctx: Ctx, args: list[str]) -> int:
    paths: list[str] = []
    i = 0
    while i < len(args) and not (args[i].startswith("-") and len(args[i]) > 1) and args[i] not in (
            "(", "!"):  # fmt: skip
        paths.append(args[i])
        i += 1
    expr = args[i:]
    maxdepth, mindepth = -1, 0
    for k, tok in enumerate(expr):
        if tok in ("-maxdepth", "-mindepth"):
            value = expr[k + 1] if k + 1 < len(expr) else ""
            if not value.isdigit():
                raise UsageFailure(f"Expected a positive decimal integer argument to {tok}, "
                                   f"but got {quote(value)}", hint=False)  # fmt: skip
            if tok == "-maxdepth":
                maxdepth = int(value)
            else:
                mindepth = int(value)
    parser = _FindParser(ctx, expr)
    pred = parser.parse() if expr else (lambda it: True)
    show = not parser.has_action
    status = 0
    for top in paths or ["."]:
        path = ctx.abspath(top)
        try:
            st = ctx.o.lstat(path)
        except OSError as e:
            ctx.error(f"{quote(top)}: {strerror(e)}")
            status = 1
            continue
        stack = [_Item(top, path, top.rstrip("/").rsplit("/", 1)[-1] or "/", st, 0)]
        while stack:
            it = stack.pop()
            if it.depth >= mindepth and pred(it) and show:
                ctx.write(it.shown + "\n")
            if not statmod.S_ISDIR(it.st.st_mode) or it.depth == maxdepth:
                continue
            try:
                names = ctx.o.listdir(it.path)
            except OSError as e:
                ctx.error(f"{quote(it.shown)}: {strerror(e)}")
                status = 1
                continue
            children = []
            for n in names:
                p = _join(it.path, n)
                try:
                    cst = ctx.o.lstat(p)
                except OSError as e:
                    ctx.error(f"{quote(_join(it.shown, n))}: {strerror(e)}")
                    status = 1
                    continue
                children.append(_Item(_join(it.shown, n), p, n, cst, it.depth + 1))
            stack.extend(reversed(children))
    return status


# -- du ---------------------------------------------------------------------------------------
def du(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "ashbckmd:LP", {
        "all": ("a", False), "summarize": ("s", False), "human-readable": ("h", False),
        "bytes": ("b", False), "total": ("c", False), "max-depth": ("d", True),
        "apparent-size": ("apparent", False)})  # fmt: skip
    if opts.has("s") and opts.has("a"):
        raise UsageFailure("cannot both summarize and show all entries")
    apparent = opts.has("b") or opts.has("apparent")
    unit = 1 if opts.has("b") else 1024 * 1024 if opts.has("m") else 1024
    depth_arg = opts.get("d")
    if depth_arg is not None and not depth_arg.isdigit():
        raise UsageFailure(f"invalid maximum depth {quote(depth_arg)}")
    max_depth = 0 if opts.has("s") else int(depth_arg) if depth_arg is not None else -1
    seen: set[tuple[int, int]] = set()
    status = 0
    grand = 0

    def size_of(st: Any) -> int:
        return int(st.st_size) if apparent else int(getattr(st, "st_blocks", 0)) * 512

    def show(n: int, shown: str) -> None:
        text = human(n) if opts.has("h") else str(-(-n // unit))
        ctx.write(f"{text}\t{shown}\n")

    def walk(path: str, shown: str, st: Any, depth: int) -> int:
        nonlocal status
        total = size_of(st)
        if statmod.S_ISDIR(st.st_mode):
            try:
                names = ctx.o.listdir(path)
            except OSError as e:
                ctx.error(f"cannot read directory {quote(shown)}: {strerror(e)}")
                status = 1
                names = []
            for n in names:
                p, s = _join(path, n), _join(shown, n)
                try:
                    cst = ctx.o.lstat(p)
                except OSError as e:
                    ctx.error(f"cannot access {quote(s)}: {strerror(e)}")
                    status = 1
                    continue
                if cst.st_nlink > 1 and not statmod.S_ISDIR(cst.st_mode):
                    key = (cst.st_dev, cst.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += walk(p, s, cst, depth + 1)
            if max_depth < 0 or depth <= max_depth:
                show(total, shown)
        elif depth == 0 or (opts.has("a") and (max_depth < 0 or depth <= max_depth)):
            show(total, shown)
        return total

    for top in ops or ["."]:
        path = ctx.abspath(top)
        try:
            st = ctx.o.stat(path) if opts.has("L") else ctx.o.lstat(path)
        except OSError as e:
            ctx.error(f"cannot access {quote(top)}: {strerror(e)}")
            status = 1
            continue
        grand += walk(path, top, st, 0)
    if opts.has("c"):
        show(grand, "total")
    return status


# -- tree -------------------------------------------------------------------------------------
def tree(ctx: Ctx, args: list[str]) -> int:
    opts, ops = getopt(args, "adfL:F", {"noreport": ("noreport", False)})
    level_text = opts.get("L")
    if level_text is not None and (not level_text.isdigit() or int(level_text) < 1):
        ctx.err.write(b"tree: Invalid level, must be greater than 0.\n")
        return 1
    level = int(level_text) if level_text is not None else -1
    counts = [0, 0]  # directories, files
    locale = ctx.env("LC_ALL") or ctx.env("LC_CTYPE") or ctx.env("LANG")
    utf8 = "utf-8" in locale.lower() or "utf8" in locale.lower()
    tee, corner, bar = ("├── ", "└── ", "│   ") if utf8 else ("|-- ", "`-- ", "|   ")

    def entry_text(shown_path: str, name: str, st: Any, path: str) -> str:
        text = shown_path if opts.has("f") else name
        if statmod.S_ISLNK(st.st_mode):
            try:
                text += " -> " + ctx.o.readlink(path)
            except OSError:
                pass
        elif opts.has("F"):
            text += classify(st.st_mode)
        return text

    def walk(path: str, shown: str, prefix: str, depth: int) -> None:
        try:
            names = ctx.o.listdir(path)
        except OSError:
            return
        if not opts.has("a"):
            names = [n for n in names if not n.startswith(".")]
        items = []
        for n in c_sorted(names):
            p = _join(path, n)
            try:
                st = ctx.o.lstat(p)
            except OSError:
                continue
            is_dir = statmod.S_ISDIR(st.st_mode)
            if statmod.S_ISLNK(st.st_mode):
                try:
                    is_dir = statmod.S_ISDIR(ctx.o.stat(p).st_mode)
                except OSError:
                    is_dir = False
            if opts.has("d") and not is_dir:
                continue
            items.append((n, p, st, is_dir))
        for k, (n, p, st, is_dir) in enumerate(items):
            last = k == len(items) - 1
            ctx.write(prefix + (corner if last else tee) + entry_text(_join(shown, n), n, st, p)
                      + "\n")  # fmt: skip
            counts[0 if is_dir else 1] += 1
            if is_dir and not statmod.S_ISLNK(st.st_mode) and (level < 0 or depth < level):
                walk(p, _join(shown, n), prefix + ("    " if last else bar), depth + 1)

    for top in ops or ["."]:
        path = ctx.abspath(top)
        try:
            st = ctx.o.stat(path)
        except OSError:
            ctx.write(f"{top}  [error opening dir]\n")
            continue
        if not statmod.S_ISDIR(st.st_mode):
            ctx.write(f"{top}  [error opening dir]\n")
            counts[1] += 1  # tree 2.x counts a file operand
            continue
        ctx.write(top + ("/" if opts.has("F") and not top.endswith("/") else "") + "\n")
        counts[0] += 1  # and the top directory itself
        walk(path, top, "", 1)
    if not opts.has("noreport"):
        d, f = counts
        dirs = "directory" if d == 1 else "directories"
        files = "file" if f == 1 else "files"
        summary = f"\n{d} {dirs}" if opts.has("d") else f"\n{d} {dirs}, {f} {files}"
        ctx.write(summary + "\n")
    return 0
