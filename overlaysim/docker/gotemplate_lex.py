"""Go's ``text/template`` lexer: the tokens of a docker ``--format`` string.

Split from :mod:`overlaysim.docker.gotemplate` (the parser), as Go splits lex.go and
parse.go; the error classes live here because the lexer and the literal decoder raise them.
"""

from __future__ import annotations

from dataclasses import dataclass

from overlaysim.errors import UsageError


class TemplateError(UsageError):
    """A template Go would refuse to parse or fail to execute (the message is Go's)."""


class TemplateParseError(TemplateError):
    """Refused before anything was executed (``docker inspect`` exits 64 for these)."""


# --- lexer ------------------------------------------------------------------------------------
KEYWORDS = {
    "block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template",
    "with",
}  # fmt: skip


@dataclass
class Tok:
    kind: str  # text, left, right, space, field, dot, var, ident, keyword, string, rawstring,
    #            char, number, bool, pipe, decl, assign, lparen, rparen, comma, eof, error
    val: str
    pos: int
    line: int

    def __str__(self) -> str:  # Go's item.String(), used in "unexpected ..." messages
        if self.kind == "eof":
            return "EOF"
        if self.kind == "error":
            return self.val
        if self.kind == "keyword":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def go_quote(s: str) -> str:
    """``strconv.Quote``: double quotes, Go escapes, printable characters kept."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _ESC:
            out.append(_ESC[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + '"'


_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_SPACE = " \t\r\n"


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.toks: list[Tok] = []
        self.parens = 0

    def line_at(self, pos: int) -> int:
        return 1 + self.s.count("\n", 0, pos)

    def emit(self, kind: str, start: int, val: str | None = None) -> None:
        v = self.s[start : self.i] if val is None else val
        self.toks.append(Tok(kind, v, start, self.line_at(start)))

    def fail(self, msg: str) -> list[Tok]:
        self.toks.append(Tok("error", msg, self.i, self.line_at(self.i)))
        return self.toks

    def run(self) -> list[Tok]:
        s = self.s
        while True:
            start = self.i
            j = s.find("{{", self.i)
            if j < 0:
                if self.i < len(s):
                    self.i = len(s)
                    self.emit("text", start)
                self.toks.append(Tok("eof", "", len(s), self.line_at(len(s))))
                return self.toks
            text_end = j
            trim_left = s.startswith("-", j + 2) and j + 3 < len(s) and s[j + 3] in _SPACE
            if trim_left:
                while text_end > start and s[text_end - 1] in _SPACE:
                    text_end -= 1
            if text_end > start:
                self.toks.append(Tok("text", s[start:text_end], start, self.line_at(start)))
            self.i = j + 2
            if trim_left:
                self.i += 2
            after = self.i
            while after < len(s) and s[after] in _SPACE:
                after += 1
            if s.startswith("/*", after) or s.startswith("/*", self.i):
                err = self._comment()
                if err is not None:
                    return self.fail(err)
                continue
            self.emit("left", j, "{{")
            err = self._action()
            if err is not None:
                return self.fail(err)

    def _comment(self) -> str | None:
        s = self.s
        k = s.find("/*", self.i)
        end = s.find("*/", k + 2)
        if end < 0:
            return "unclosed comment"
        self.i = end + 2
        trim = False
        if s.startswith(" -}}", self.i) or s.startswith("\t-}}", self.i):
            trim, self.i = True, self.i + 2
        if not s.startswith("}}", self.i):
            return "comment ends before closing delimiter"
        self.i += 2
        if trim:
            while self.i < len(s) and s[self.i] in _SPACE:
                self.i += 1
        return None

    def _action(self) -> str | None:
        s = self.s
        while True:
            if self.i >= len(s):
                return "unclosed action"
            ch = s[self.i]
            start = self.i
            if ch in _SPACE:
                # " -}}": right trim marker
                k = self.i
                while k < len(s) and s[k] in _SPACE:
                    k += 1
                if s.startswith("-}}", k):
                    if self.parens:
                        return "unclosed left paren"
                    self.i = k + 3
                    self.emit("right", k, "}}")
                    while self.i < len(s) and s[self.i] in _SPACE:
                        self.i += 1
                    return None
                self.i = k
                self.emit("space", start)
            elif s.startswith("}}", self.i):
                if self.parens:
                    return "unclosed left paren"
                self.i += 2
                self.emit("right", start)
                return None
            elif ch == "|":
                self.i += 1
                self.emit("pipe", start)
            elif ch == ":":
                if not s.startswith(":=", self.i):
                    return "expected :="
                self.i += 2
                self.emit("decl", start)
            elif ch == "=":
                self.i += 1
                self.emit("assign", start)
            elif ch == ",":
                self.i += 1
                self.emit("comma", start)
            elif ch == '"':
                err = self._quote()
                if err:
                    return err
            elif ch == "`":
                end = s.find("`", self.i + 1)
                if end < 0:
                    return "unterminated raw quoted string"
                self.i = end + 1
                self.emit("rawstring", start)
            elif ch == "'":
                k = self.i + 1
                while k < len(s) and s[k] != "'":
                    if s[k] == "\n":
                        return "unterminated character constant"
                    k += 2 if s[k] == "\\" else 1
                if k >= len(s):
                    return "unterminated character constant"
                self.i = k + 1
                self.emit("char", start)
            elif ch == "$":
                self.i += 1
                while self.i < len(s) and _alnum(s[self.i]):
                    self.i += 1
                self.emit("var", start)
            elif ch == ".":
                if self.i + 1 < len(s) and s[self.i + 1].isdigit():
                    err = self._number()
                    if err:
                        return err
                    continue
                self.i += 1
                while self.i < len(s) and _alnum(s[self.i]):
                    self.i += 1
                self.emit("dot" if self.i == start + 1 else "field", start)
            elif ch in "+-" or ch.isdigit():
                err = self._number()
                if err:
                    return err
            elif _alnum(ch):
                while self.i < len(s) and _alnum(s[self.i]):
                    self.i += 1
                word = s[start : self.i]
                if word in KEYWORDS:
                    self.emit("keyword", start)
                elif word in ("true", "false"):
                    self.emit("bool", start)
                else:
                    self.emit("ident", start)
            elif ch == "(":
                self.parens += 1
                self.i += 1
                self.emit("lparen", start)
            elif ch == ")":
                self.parens -= 1
                if self.parens < 0:
                    return f"unexpected right paren {_go_char(ch)}"
                self.i += 1
                self.emit("rparen", start)
            else:
                return f"unrecognized character in action: {_go_char(ch)}"

    def _quote(self) -> str | None:
        s, k = self.s, self.i + 1
        while k < len(s) and s[k] != '"':
            if s[k] == "\n":
                return "unterminated quoted string"
            k += 2 if s[k] == "\\" else 1
        if k >= len(s):
            return "unterminated quoted string"
        start, self.i = self.i, k + 1
        self.emit("string", start)
        return None

    def _number(self) -> str | None:
        s, start = self.s, self.i
        k = self.i
        if s[k] in "+-":
            k += 1
        while k < len(s) and (_alnum(s[k]) or s[k] in ".+-"):
            if s[k] in "+-" and s[k - 1] not in "eEpP":
                break
            k += 1
        self.i = k
        text = s[start:k]
        if number_value(text) is None:
            return f"bad number syntax: {go_quote(text)}"
        self.emit("number", start)
        return None


def _go_char(ch: str) -> str:
    """Go's %#U: ``U+0023 '#'``."""
    return f"U+{ord(ch):04X} '{ch}'"


def number_value(text: str) -> int | float | None:
    t = text.replace("_", "")
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return None


def unquote(tok: Tok) -> str:
    """The value of a string, raw string or char literal (Go's escapes)."""
    if tok.kind == "rawstring":
        return tok.val[1:-1]
    body = tok.val[1:-1]
    out, i = [], 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'"}  # fmt: skip
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif width:
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        elif nxt in "01234567":
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise TemplateParseError(f"invalid syntax: {tok.val}")
    return "".join(out)
