"""Word expansion: parameters, command substitution, field splitting, pathname expansion.

Globbing asks the os-like module (not the real disk) which names exist, so ``ls /merged/*``
lists what the simulated overlay shows, with dash's rules (no dotfiles unless the pattern
starts with a dot, C-locale order, an unmatched pattern stays as written).
"""

from __future__ import annotations

import fnmatch
import stat as statmod
from collections.abc import Callable
from typing import Any

from overlaysim.shell.context import ShellState
from overlaysim.shell.lexer import Word

_IFS_WS = " \t\n"
Field = list[tuple[str, bool]]  # characters, each with "may glob" (unquoted) flag


class Expander:
    """Expands words in the context of one shell state."""

    def __init__(
        self,
        o: Any,
        state: ShellState,
        run_sub: Callable[[str], bytes],
        name: str = "sh",
    ) -> None:
        self.o = o
        self.state = state
        self.run_sub = run_sub
        self.name = name

    def param(self, name: str) -> str:
        if name == "?":
            return str(self.state.status)
        if name == "0":
            return self.name
        if name == "#":
            return "0"
        if name == "$":
            return "1"
        return self.state.vars.get(name, "")

    def _value(self, kind: str, text: str) -> str:
        if kind == "var":
            return self.param(text)
        out = self.run_sub(text).decode("utf-8", "surrogateescape")
        return out.rstrip("\n")

    def single(self, word: Word) -> str:
        """No splitting, no globbing: assignment values and redirection targets."""
        chunks: list[str] = []
        for i, p in enumerate(word.parts):
            if p.kind == "lit":
                text = p.text
                if i == 0 and not p.quoted:
                    text = self._tilde(text)
                chunks.append(text)
            else:
                chunks.append(self._value(p.kind, p.text))
        return "".join(chunks)

    def fields(self, words: list[Word]) -> list[str]:
        out: list[str] = []
        for w in words:
            for f in self._split(w):
                out.extend(self._glob(f))
        return out

    def _tilde(self, text: str) -> str:
        if text == "~" or text.startswith("~/"):
            return self.state.vars.get("HOME", "/") + text[1:]
        return text

    def _split(self, word: Word) -> list[Field]:
        fields: list[Field] = []
        cur: Field | None = None
        for i, p in enumerate(word.parts):
            if p.kind == "lit":
                if cur is None:
                    cur = []
                text = self._tilde(p.text) if i == 0 and not p.quoted else p.text
                cur.extend((c, not p.quoted) for c in text)
                continue
            value = self._value(p.kind, p.text)
            if p.quoted:
                if cur is None:
                    cur = []
                cur.extend((c, False) for c in value)
                continue
            for c in value:
                if c in _IFS_WS:
                    if cur is not None and cur:
                        fields.append(cur)
                        cur = None
                else:
                    if cur is None:
                        cur = []
                    cur.append((c, True))
        if cur is not None:
            fields.append(cur)
        return fields

    def _glob(self, f: Field) -> list[str]:
        text = "".join(c for c, _ in f)
        if not any(active and c in "*?[" for c, active in f):
            return [text]
        matches = glob(self.o, self.state.cwd, f)
        return matches if matches else [text]


def _component_pattern(chars: Field) -> tuple[str, bool]:
    """An fnmatch pattern for one path component (quoted magic escaped) and whether it globs."""
    out: list[str] = []
    magic = False
    prev_open = False
    for c, active in chars:
        if active and c in "*?[":
            magic = True
            out.append(c)
        elif c in "*?[]" and not active:
            out.append(f"[{c}]")
        elif active and c == "^" and prev_open:
            out.append("!")
        else:
            out.append(c)
        prev_open = active and c == "["
    return "".join(out), magic


def glob(o: Any, cwd: str, f: Field) -> list[str]:
    """Expand a pattern field against the os-like module; sorted as the C locale sorts."""
    comps: list[Field] = [[]]
    for c, active in f:
        if c == "/":
            comps.append([])
        else:
            comps[-1].append((c, active))
    absolute = not comps[0] and len(comps) > 1
    if absolute:
        comps = comps[1:]
    bases = ["/" if absolute else ""]
    for idx, comp in enumerate(comps):
        last = idx == len(comps) - 1
        pattern, magic = _component_pattern(comp)
        literal = "".join(c for c, _ in comp)
        new: list[str] = []
        for base in bases:
            if not magic:
                new.append(_join(base, literal))
                continue
            where = base if base else "."
            full = where if where.startswith("/") else cwd.rstrip("/") + "/" + where
            try:
                names = o.listdir(full)
            except OSError:
                continue
            dot_ok = literal.startswith(".")
            for name in names:
                if name.startswith(".") and not dot_ok:
                    continue
                if fnmatch.fnmatchcase(name, pattern):
                    if not last:
                        sub = full.rstrip("/") + "/" + name
                        try:
                            if not statmod.S_ISDIR(o.stat(sub).st_mode):
                                continue
                        except OSError:
                            continue
                    new.append(_join(base, name))
        bases = new
    found = []
    for path in bases:
        full = path if path.startswith("/") else cwd.rstrip("/") + "/" + path
        try:
            o.lstat(full)
        except OSError:
            continue
        found.append(path)
    return sorted(set(found), key=lambda s: s.encode("utf-8", "surrogateescape"))


def _join(base: str, name: str) -> str:
    if not base:
        return name
    return base + name if base.endswith("/") else base + "/" + name


def pattern_match(pattern: str, name: str) -> bool:
    """fnmatch as ``find -name`` and ``case`` use it: all characters are pattern characters."""
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))
