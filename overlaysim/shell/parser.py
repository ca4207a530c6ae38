"""Parse tokens into lists of and-or pipelines of simple commands, one line at a time.

Like dash, a complete line is parsed and run before the next is read, so ``echo a\\n&&``
prints ``a`` before the syntax error. Compound commands (if/for/while) are out of scope and
are refused with a clear message rather than misread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from overlaysim.shell.lexer import REDIR_OPS, Lexer, ShellSyntaxError, Token, Word, is_name

_UNSUPPORTED = frozenset({"if", "then", "else", "elif", "fi", "for", "while", "until", "do",
                          "done", "case", "esac", "{", "}", "function", "select"})


@dataclass
class Redir:
    fd: int
    op: str
    target: Word


@dataclass
class Command:
    line: int
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


class Parser:
    """Yields one ``AndOr`` list at a time; ``ShellSyntaxError`` when the next one is bad."""

    def __init__(self, text: str) -> None:
        self._toks = Lexer(text).tokens()
        self._peek: Token | None = None

    def _next(self) -> Token:
        if self._peek is not None:
            t, self._peek = self._peek, None
            return t
        return next(self._toks)

    def _look(self) -> Token:
        if self._peek is None:
            self._peek = next(self._toks)
        return self._peek

    def commands(self) -> Iterator[AndOr]:
        while True:
            t = self._look()
            if t.kind == "eof":
                return
            if t.kind == "newline":
                self._next()
                continue
            yield self._and_or()
            t = self._look()
            if (t.kind == "op" and t.op in (";", "&")) or t.kind == "newline":
                self._next()
            elif t.kind != "eof":
                raise _unexpected(t)

    def _and_or(self) -> AndOr:
        node = AndOr(self._pipeline())
        while True:
            t = self._look()
            if t.kind == "op" and t.op in ("&&", "||"):
                self._next()
                self._skip_newlines()
                node.rest.append((t.op, self._pipeline()))
            else:
                return node

    def _skip_newlines(self) -> None:
        while self._look().kind == "newline":
            self._next()

    def _pipeline(self) -> Pipeline:
        negate = False
        t = self._look()
        if t.kind == "word" and t.word is not None and t.word.unquoted_literal() == "!":
            self._next()
            negate = True
        cmds = [self._command()]
        while self._look().kind == "op" and self._look().op == "|":
            self._next()
            self._skip_newlines()
            cmds.append(self._command())
        return Pipeline(cmds, negate)

    def _command(self) -> Command:
        t = self._look()
        cmd = Command(line=t.line)
        while True:
            t = self._look()
            if t.kind == "word" and t.word is not None:
                text = t.word.unquoted_literal()
                if not cmd.words and text in _UNSUPPORTED:
                    raise ShellSyntaxError(
                        f'"{text}" (compound commands) is not supported by this shell', t.line
                    )
                first = t.word.parts[0] if t.word.parts else None
                if not cmd.words and first is not None and first.kind == "lit" and not first.quoted:
                    name, eq, _ = first.text.partition("=")
                    if eq and is_name(name):
                        self._next()
                        cmd.assigns.append((name, _after_equals(t.word)))
                        continue
                self._next()
                cmd.words.append(t.word)
            elif t.kind == "op" and t.op in REDIR_OPS:
                self._next()
                if t.op == "<<":
                    raise ShellSyntaxError("here-documents are not supported by this shell", t.line)
                target = self._next()
                if target.kind != "word" or target.word is None:
                    raise _unexpected(target)
                default = 0 if t.op.startswith("<") else 1
                cmd.redirs.append(Redir(t.fd if t.fd is not None else default, t.op, target.word))
            else:
                break
        if not (cmd.words or cmd.assigns or cmd.redirs):
            raise _unexpected(self._look())
        return cmd


def _unexpected(t: Token) -> ShellSyntaxError:
    if t.kind == "eof":
        return ShellSyntaxError("end of file unexpected", t.line)
    if t.kind == "newline":
        return ShellSyntaxError('newline unexpected', t.line)
    if t.kind == "op" and t.op in ("(", ")"):
        return ShellSyntaxError(f'"{t.op}" unexpected (subshells are not supported)', t.line)
    return ShellSyntaxError(f'"{t.op}" unexpected', t.line)


def _after_equals(word: Word) -> Word:
    """The value part of ``NAME=value`` (the name is plain unquoted text, so split the first)."""
    parts = list(word.parts)
    first = parts[0]
    _, _, value = first.text.partition("=")
    rest = [type(first)("lit", value, False)] if value else []
    return Word(rest + parts[1:])
