"""Go's ``text/template`` language as the docker CLI uses it: the parser (lexer: ``_lex``).

The docker CLI hands every ``--format`` / ``-f`` string to Go's ``text/template`` (with its
own functions: ``json``, ``split``, ``join``, ``title``, ``lower``, ``upper``, ``pad``,
``truncate``), so a user's template is a program: pipelines, ``if``/``range``/``with``,
variables, ``printf``. We parse the same language into a small tree and report the same
parse errors (``template: :1: unclosed action``); execution is in
:mod:`overlaysim.docker.gotemplate_exec`. ``define``/``template``/``block`` are refused
with a parse error: no docker format uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overlaysim.docker.gotemplate_lex import (
    TemplateError,
    TemplateParseError,
    Tok,
    _Lexer,
    go_quote,
    number_value,
    unquote,
)

__all__ = ["TemplateError", "TemplateParseError", "go_quote", "parse"]


# --- tree --------------------------------------------------------------------------------------
@dataclass
class Node:
    pos: int
    text: str  # the node as Go prints it in "executing ... at <...>"


@dataclass
class Field(Node):
    names: list[str] = field(default_factory=list)


@dataclass
class Var(Node):
    name: str = "$"
    names: list[str] = field(default_factory=list)


@dataclass
class Dot(Node):
    pass


@dataclass
class Nil(Node):
    pass


@dataclass
class Const(Node):
    value: Any = None


@dataclass
class Ident(Node):
    name: str = ""


@dataclass
class Chain(Node):
    node: Node | None = None
    names: list[str] = field(default_factory=list)


@dataclass
class Command(Node):
    args: list[Node] = field(default_factory=list)


@dataclass
class Pipe(Node):
    decl: list[str] = field(default_factory=list)
    assign: bool = False
    cmds: list[Command] = field(default_factory=list)


@dataclass
class Text(Node):
    pass


@dataclass
class Action(Node):
    pipe: Pipe | None = None


@dataclass
class Branch(Node):
    kind: str = "if"  # if, range, with
    pipe: Pipe | None = None
    body: list[Node] = field(default_factory=list)
    else_body: list[Node] | None = None


@dataclass
class Loop(Node):
    kind: str = "break"  # break, continue


# --- parser ------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, funcs: Callable[[str], bool]) -> None:
        self.text = text
        self.toks = _Lexer(text).run()
        self.k = 0
        self.has_func = funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0

    # tokens
    def peek(self) -> Tok:
        return self.toks[self.k]

    def next(self) -> Tok:
        t = self.toks[self.k]
        if t.kind == "error":
            self.error(t.line, t.val)
        if t.kind != "eof":
            self.k += 1
        return t

    def next_nonspace(self) -> Tok:
        t = self.next()
        while t.kind == "space":
            t = self.next()
        return t

    def peek_nonspace(self) -> Tok:
        while self.peek().kind == "space":
            self.k += 1
        if self.peek().kind == "error":
            self.next()
        return self.peek()

    def error(self, line: int, msg: str) -> None:
        raise TemplateParseError(f"template: :{line}: {msg}")

    def unexpected(self, t: Tok, context: str) -> None:
        if t.kind == "error":
            self.error(t.line, t.val)
        self.error(t.line, f"unexpected {t} in {context}")

    # structure
    def parse(self) -> list[Node]:
        body, _end = self.item_list(top=True)
        return body

    def item_list(self, top: bool = False) -> tuple[list[Node], Tok | None]:
        out: list[Node] = []
        while True:
            t = self.next()
            if t.kind == "eof":
                if top:
                    return out, None
                self.error(t.line, "unexpected EOF")
            if t.kind == "text":
                out.append(Text(t.pos, t.val))
                continue
            # left delimiter
            kw = self.peek_nonspace()
            if kw.kind == "keyword" and kw.val in ("end", "else"):
                self.next()
                if top:
                    self.error(kw.line, f"unexpected {{{{{kw.val}}}}}")
                return out, kw
            out.append(self.action())

    def action(self) -> Node:
        t = self.next_nonspace()
        if t.kind == "keyword":
            if t.val in ("if", "range", "with"):
                return self.branch(t)
            if t.val in ("break", "continue"):
                if not self.range_depth:
                    self.error(t.line, f"{{{{{t.val}}}}} outside {{{{range}}}}")
                self.expect_right(t.val)
                return Loop(t.pos, t.val, t.val)
            self.error(t.line, f"unexpected {t} in command")  # define, template, block
        self.k -= 1
        return Action(t.pos, "", self.pipeline("command", end="right"))

    def expect_right(self, context: str) -> None:
        t = self.next_nonspace()
        if t.kind != "right":
            self.unexpected(t, context)

    def branch(self, kw: Tok) -> Node:
        mark = len(self.vars)
        pipe = self.pipeline(kw.val, end="right")
        if kw.val == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if kw.val == "range":
            self.range_depth -= 1
        else_body: list[Node] | None = None
        assert end is not None
        if end.val == "else":
            nxt = self.peek_nonspace()
            if kw.val == "if" and nxt.kind == "keyword" and nxt.val == "if":
                # {{else if ...}}: an if nested in the else branch, ended by the same {{end}}
                t = self.next()
                else_body = [self.branch(t)]
            else:
                self.expect_right("else")
                else_body, end2 = self.item_list()
                assert end2 is not None
                if end2.val != "end":
                    self.error(end2.line, "expected end; found {{else}}")
                self.expect_right("end")
        else:
            self.expect_right("end")
        del self.vars[mark:]
        return Branch(kw.pos, kw.val, kw.val, pipe, body, else_body)

    def pipeline(self, context: str, end: str) -> Pipe:
        first = self.peek_nonspace()
        pipe = Pipe(first.pos, "")
        # declarations: $x := / $x = / $i, $e :=
        save = self.k
        t = self.next_nonspace()
        if t.kind == "var":
            names = [t.val]
            nxt = self.next_nonspace()
            if nxt.kind == "comma" and context == "range":
                t2 = self.next_nonspace()
                if t2.kind != "var":
                    self.error(t2.line, f"range can only initialize variables; found {t2}")
                names.append(t2.val)
                nxt = self.next_nonspace()
            if nxt.kind in ("decl", "assign"):
                pipe.decl, pipe.assign = names, nxt.kind == "assign"
                if nxt.kind == "decl":
                    self.vars.extend(names)
                elif names[0] not in self.vars:
                    self.error(nxt.line, f"undefined variable {go_quote(names[0])}")
            else:
                self.k = save
        else:
            self.k = save
        while True:
            t = self.peek_nonspace()
            if t.kind == end:
                self.next()
                break
            if t.kind in ("right", "rparen", "eof"):
                self.unexpected(self.next(), context)
            pipe.cmds.append(self.command())
        if not pipe.cmds:
            self.error(t.line, f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:], start=2):
            if isinstance(c.args[0], (Const, Dot, Nil)):
                self.error(t.line, f"non executable command in pipeline stage {i}")
        pipe.text = " | ".join(c.text for c in pipe.cmds)
        return pipe

    def command(self) -> Command:
        cmd = Command(self.peek_nonspace().pos, "")
        while True:
            t = self.peek()
            if t.kind == "space":
                self.next()
                continue
            if t.kind in ("right", "rparen"):
                break
            if t.kind == "pipe":
                self.next()
                break
            if t.kind == "error":
                self.next()
            node = self.operand()
            if node is None:
                self.unexpected(self.next(), "operand")
            assert node is not None
            cmd.args.append(node)
            nxt = self.peek()
            if nxt.kind not in ("space", "right", "rparen", "pipe"):
                self.unexpected(self.next(), "operand")
        if not cmd.args:
            self.error(self.peek().line, "missing value for command")
        cmd.text = " ".join(a.text for a in cmd.args)
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind != "field":
            return node
        names = []
        chain_pos = self.peek().pos
        while self.peek().kind == "field":
            names.append(self.next().val[1:])
        text = node.text + "".join("." + n for n in names)
        if isinstance(node, Field):
            return Field(chain_pos, text, node.names + names)
        if isinstance(node, Var):
            return Var(node.pos, text, node.name, node.names + names)
        if isinstance(node, (Const, Nil)):
            self.error(self.peek().line, f"unexpected . after term {go_quote(node.text)}")
        return Chain(chain_pos, text, node, names)

    def term(self) -> Node | None:
        t = self.next_nonspace()
        if t.kind == "ident":
            if not self.has_func(t.val):
                self.error(t.line, f"function {go_quote(t.val)} not defined")
            return Ident(t.pos, t.val, t.val)
        if t.kind == "dot":
            return Dot(t.pos, ".")
        if t.kind == "keyword" and t.val == "nil":
            return Nil(t.pos, "nil")
        if t.kind == "var":
            if t.val not in self.vars:
                self.error(t.line, f"undefined variable {go_quote(t.val)}")
            return Var(t.pos, t.val, t.val)
        if t.kind == "field":
            return Field(t.pos, t.val, [t.val[1:]])
        if t.kind == "bool":
            return Const(t.pos, t.val, t.val == "true")
        if t.kind == "number":
            return Const(t.pos, t.val, number_value(t.val))
        if t.kind in ("string", "rawstring"):
            return Const(t.pos, t.val, unquote(t))
        if t.kind == "char":
            return Const(t.pos, t.val, ord(unquote(t)))
        if t.kind == "lparen":
            pipe = self.pipeline("parenthesized pipeline", end="rparen")
            pipe.text = f"({pipe.text})"
            return pipe
        self.k -= 1
        return None


def parse(text: str, has_func: Callable[[str], bool]) -> list[Node]:
    """The tree of ``text``; ``has_func(name)`` says which function names exist."""
    return _Parser(text, has_func).parse()
