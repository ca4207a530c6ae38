"""Tokens of a POSIX shell command line: words (with quoting kept per part) and operators.

Quoting is kept on each part of a word, not removed here, because field splitting and
pathname expansion must know which characters were quoted (``"$x"*`` globs, ``'*'`` does not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

OPERATORS = ("&&", "||", ";;", ">>", ">&", "<&", ">|", "<<", "<>", "|", "&", ";", "<", ">", "(", ")")
REDIR_OPS = frozenset({">", ">>", "<", ">&", "<&", ">|", "<>", "<<"})
_NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_NAME_CHARS = _NAME_START + "0123456789"
_SPECIAL_PARAMS = "?$#!@*-0123456789"


class ShellSyntaxError(Exception):
    """A dash-style syntax error: ``sh: LINE: Syntax error: MESSAGE``."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text, a ``$NAME`` reference, or a ``$(...)`` command."""

    kind: Literal["lit", "var", "sub"]
    text: str
    quoted: bool


@dataclass
class Word:
    parts: list[Part] = field(default_factory=list)

    def literal(self) -> str | None:
        """The text if the word holds no expansion (used for operators-like words and names)."""
        if all(p.kind == "lit" for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None

    def unquoted_literal(self) -> str | None:
        """The text if the word is plain unquoted literal text (reserved words, assignments)."""
        if all(p.kind == "lit" and not p.quoted for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None


@dataclass
class Token:
    kind: Literal["word", "op", "newline", "eof"]
    line: int
    word: Word | None = None
    op: str = ""
    fd: int | None = None  # an IO number before a redirection operator: the 2 of ``2>``


class Lexer:
    """Turns a command string into tokens lazily, so earlier lines run before later errors."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1

    def tokens(self) -> Iterator[Token]:
        s = self.s
        parts: list[Part] = []
        started = False
        word_line = self.line

        def flush() -> Token | None:
            nonlocal parts, started
            if not started:
                return None
            tok = Token("word", word_line, word=Word(_merge(parts)))
            parts, started = [], False
            return tok

        while self.i < len(s):
            c = s[self.i]
            if not started:
                word_line = self.line
            if c in " \t":
                self.i += 1
                if (t := flush()) is not None:
                    yield t
            elif c == "\n":
                if (t := flush()) is not None:
                    yield t
                yield Token("newline", self.line)
                self.i += 1
                self.line += 1
            elif c == "#" and not started:
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            elif c == "\\":
                if self.i + 1 < len(s) and s[self.i + 1] == "\n":
                    self.i += 2
                    self.line += 1
                elif self.i + 1 < len(s):
                    parts.append(Part("lit", s[self.i + 1], True))
                    started = True
                    self.i += 2
                else:
                    parts.append(Part("lit", "\\", False))
                    started = True
                    self.i += 1
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("Unterminated quoted string", self.line)
                text = s[self.i + 1 : end]
                parts.append(Part("lit", text, True))
                self.line += text.count("\n")
                started = True
                self.i = end + 1
            elif c == '"':
                parts.extend(self._double_quoted())
                started = True
            elif c == "$":
                parts.append(self._dollar(False))
                started = True
            elif c == "`":
                parts.append(self._backquote(False))
                started = True
            elif c in "|&;<>()":
                fd = None
                if c in "<>" and started and all(p.kind == "lit" and not p.quoted for p in parts):
                    text = "".join(p.text for p in parts)
                    if text.isdigit():
                        fd = int(text)
                        parts, started = [], False
                if fd is None and (t := flush()) is not None:
                    yield t
                op = next(o for o in OPERATORS if s.startswith(o, self.i))
                self.i += len(op)
                yield Token("op", self.line, op=op, fd=fd)
            else:
                parts.append(Part("lit", c, False))
                started = True
                self.i += 1
        if (t := flush()) is not None:
            yield t
        yield Token("eof", self.line)

    def _double_quoted(self) -> list[Part]:
        s = self.s
        out: list[Part] = [Part("lit", "", True)]
        self.i += 1
        while True:
            if self.i >= len(s):
                raise ShellSyntaxError("Unterminated quoted string", self.line)
            c = s[self.i]
            if c == '"':
                self.i += 1
                return out
            if c == "\\" and self.i + 1 < len(s) and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] == "\n":
                    self.line += 1
                else:
                    out.append(Part("lit", s[self.i + 1], True))
                self.i += 2
            elif c == "$":
                out.append(self._dollar(True))
            elif c == "`":
                out.append(self._backquote(True))
            else:
                if c == "\n":
                    self.line += 1
                out.append(Part("lit", c, True))
                self.i += 1

    def _dollar(self, quoted: bool) -> Part:
        s = self.s
        j = self.i + 1
        if j < len(s) and s[j] == "{":
            end = s.find("}", j)
            if end < 0:
                raise ShellSyntaxError("Missing '}'", self.line)
            name = s[j + 1 : end]
            if not (_is_name(name) or (len(name) == 1 and name in _SPECIAL_PARAMS)):
                raise ShellSyntaxError(f"${{{name}}}: Bad substitution", self.line)
            self.i = end + 1
            return Part("var", name, quoted)
        if j < len(s) and s[j] == "(":
            if s.startswith("((", j):
                raise ShellSyntaxError("arithmetic expansion is not supported", self.line)
            end = _matching_paren(s, j + 1, self.line)
            body = s[j + 1 : end]
            self.line += body.count("\n")
            self.i = end + 1
            return Part("sub", body, quoted)
        if j < len(s) and s[j] in _SPECIAL_PARAMS:
            self.i = j + 1
            return Part("var", s[j], quoted)
        k = j
        if k < len(s) and s[k] in _NAME_START:
            while k < len(s) and s[k] in _NAME_CHARS:
                k += 1
            self.i = k
            return Part("var", s[j:k], quoted)
        self.i = j
        return Part("lit", "$", quoted)

    def _backquote(self, quoted: bool) -> Part:
        s = self.s
        j = self.i + 1
        body: list[str] = []
        while j < len(s) and s[j] != "`":
            if s[j] == "\\" and j + 1 < len(s) and s[j + 1] in "$`\\":
                body.append(s[j + 1])
                j += 2
                continue
            body.append(s[j])
            j += 1
        if j >= len(s):
            raise ShellSyntaxError('EOF in backquote substitution', self.line)
        self.i = j + 1
        return Part("sub", "".join(body), quoted)


def _is_name(text: str) -> bool:
    return bool(text) and text[0] in _NAME_START and all(c in _NAME_CHARS for c in text)


def is_name(text: str) -> bool:
    """A valid shell variable name."""
    return _is_name(text)


def _matching_paren(s: str, i: int, line: int) -> int:
    depth = 1
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            end = s.find("'", i + 1)
            if end < 0:
                break
            i = end + 1
            continue
        if c == '"':
            i += 1
            while i < len(s) and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
            i += 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ShellSyntaxError("end of file unexpected (expecting \")\")", line)


def _merge(parts: list[Part]) -> list[Part]:
    """Join adjacent literal parts of the same quoting (keeps an empty quoted "" as a part)."""
    out: list[Part] = []
    for p in parts:
        if out and p.kind == "lit" and out[-1].kind == "lit" and out[-1].quoted == p.quoted:
            out[-1] = Part("lit", out[-1].text + p.text, p.quoted)
        else:
            out.append(p)
    return out
