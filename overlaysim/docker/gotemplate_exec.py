"""Executing a parsed Go template (:mod:`overlaysim.docker.gotemplate`) over our values.

Values are Python's JSON shapes (dict, list, str, int, float, bool, None) plus
:class:`~overlaysim.docker.gofmtverbs.GoObject` for the docker CLI's formatter contexts,
whose methods (``.ID``, ``.Label "k"``) and Go type names (in "can't evaluate field X in
type *formatter.imageContext") are their own. Errors carry Go's text and position:
``template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overlaysim.docker import gotemplate as gt
from overlaysim.docker.gofmtverbs import (
    MISSING,
    GoNil,
    GoObject,
    sprint,
    sprint_v,
    sprintf,
    sprintln,
    type_name,
)


class ExecError(gt.TemplateError):
    """Execution stopped; ``partial`` is what had been written (Go keeps it in the buffer)."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class _FuncError(Exception):
    """A function failed; wrapped as ``error calling NAME: ...``."""


@dataclass(frozen=True)
class Func:
    fn: Callable[..., Any]
    nparams: int
    variadic: bool = False


# --- functions ---------------------------------------------------------------------------------
def _want_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"wrong type for value; expected string; got {type_name(v)}")
    return v


def _want_int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"wrong type for value; expected int; got {type_name(v)}")
    return v


def truth(v: Any) -> bool:
    """Go's ``isTrue``: empty and zero values are false, structs are true."""
    if v is MISSING or v is None or isinstance(v, GoNil):
        return False
    if isinstance(v, GoObject):
        return True
    return bool(v)


def _len(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode("utf-8", "surrogateescape"))
    if isinstance(v, (list, dict)):
        return len(v)
    if isinstance(v, GoNil) and v.kind != "ptr":
        return 0
    raise _FuncError(f"len of type {type_name(v)}")


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, list):
            if not isinstance(k, int) or isinstance(k, bool):
                raise _FuncError(f"cannot index slice/array with type {type_name(k)}")
            if not 0 <= k < len(v):
                raise _FuncError(f"index out of range: {k}")
            v = v[k]
        elif isinstance(v, dict):
            v = v.get(k) if isinstance(k, str) else None
        elif isinstance(v, GoNil) and v.kind == "map":
            v = None
        elif v is None or v is MISSING:
            raise _FuncError("index of untyped nil")
        else:
            raise _FuncError(f"can't index item of type {type_name(v)}")
    return v


def _slice(v: Any, *idx: Any) -> Any:
    if not isinstance(v, (str, list)):
        raise _FuncError(f"can't slice item of type {type_name(v)}")
    bounds = [int(i) for i in idx]
    if len(bounds) > 2:
        raise _FuncError("too many slice indexes")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(v)
    if not 0 <= lo <= hi <= len(v):
        raise _FuncError(f"index out of range: {hi if hi > len(v) else lo}")
    return v[lo:hi]


def _basic(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)):
        return v
    raise _FuncError("invalid type for comparison")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "string"


def _eq(a: Any, *bs: Any) -> bool:
    a = _basic(a)
    if not bs:
        raise _FuncError("missing argument for comparison")
    for b in bs:
        b = _basic(b)
        if _kind(a) != _kind(b):
            raise _FuncError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    a, b = _basic(a), _basic(b)
    if _kind(a) != _kind(b):
        raise _FuncError("incompatible types for comparison")
    if isinstance(a, bool):
        raise _FuncError("invalid type for comparison")
    return bool(a < b)


def json_func(v: Any) -> str:
    """docker's ``json``: json.Encoder without HTML escaping, trailing newline trimmed."""
    if isinstance(v, GoObject):
        return v.go_json()
    if v is MISSING or isinstance(v, GoNil):
        return "null"
    return (
        json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def title(s: str) -> str:
    """``strings.Title``: upper-case each letter that follows a separator."""
    out, prev = [], " "
    for ch in _want_str(s):
        sep = not (prev.isalnum() or prev == "_") if prev.isascii() else prev.isspace()
        out.append(ch.upper() if sep else ch)
        prev = ch
    return "".join(out)


def _truncate(s: Any, n: Any) -> str:
    text, width = _want_str(s), _want_int(n)
    return text if len(text) < width else text[:width]


def _join(v: Any, sep: Any) -> str:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TypeError(f"wrong type for value; expected []string; got {type_name(v)}")
    return _want_str(sep).join(v)


def _pad(s: Any, before: Any, after: Any) -> str:
    """docker's ``pad``: spaces around a non-empty string (an empty one stays empty)."""
    text = _want_str(s)
    return " " * _want_int(before) + text + " " * _want_int(after) if text else text


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: a[-1], 1, True),  # evaluated lazily by the executor
    "or": Func(lambda *a: a[-1], 1, True),
    "not": Func(lambda v: not truth(v), 1),
    "len": Func(_len, 1),
    "index": Func(_index, 2, True),
    "slice": Func(_slice, 2, True),
    "print": Func(lambda *a: sprint(list(a)), 1, True),
    "printf": Func(lambda f, *a: sprintf(_want_str(f), list(a)), 2, True),
    "println": Func(lambda *a: sprintln(list(a)), 1, True),
    "eq": Func(_eq, 2, True),
    "ne": Func(lambda a, b: not _eq(a, b), 2),
    "lt": Func(_lt, 2),
    "le": Func(lambda a, b: _lt(a, b) or _eq(a, b), 2),
    "gt": Func(lambda a, b: not (_lt(a, b) or _eq(a, b)), 2),
    "ge": Func(lambda a, b: not _lt(a, b), 2),
}

#: the docker CLI's own functions (cli/templates)
DOCKER: dict[str, Func] = {
    "json": Func(json_func, 1),
    "split": Func(lambda s, sep: _want_str(s).split(_want_str(sep)) if sep else list(s), 2),
    "join": Func(_join, 2),
    "title": Func(title, 1),
    "lower": Func(lambda s: _want_str(s).lower(), 1),
    "upper": Func(lambda s: _want_str(s).upper(), 1),
    "pad": Func(_pad, 3),
    "truncate": Func(_truncate, 2),
}

#: the table header is executed with these in place of the docker ones: names stay as they are
HEADER: dict[str, Func] = {
    "json": Func(_want_str, 1),
    "split": Func(lambda s, _sep: _want_str(s), 2),
    "join": Func(lambda s, _sep: _want_str(s), 2),
    "title": Func(_want_str, 1),
    "lower": Func(_want_str, 1),
    "upper": Func(_want_str, 1),
    "truncate": Func(lambda s, _n: _want_str(s), 2),
}


# --- executor ----------------------------------------------------------------------------------
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _State:
    def __init__(
        self,
        text: str,
        funcs: dict[str, Func],
        missingkey_error: bool,
        nil_kind: Callable[[str], str | None] | None,
    ) -> None:
        self.text = text
        self.funcs = funcs
        self.missingkey_error = missingkey_error
        self.nil_kind = nil_kind
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []

    def fail(self, node: gt.Node, msg: str) -> ExecError:
        before = self.text[: node.pos]
        line = 1 + before.count("\n")
        col = len(before[before.rfind("\n") + 1 :].encode()) if "\n" in before else node.pos
        where = f'template: :{line}:{col}: executing "" at <{node.text}>: {msg}'
        return ExecError(where, "".join(self.out))

    def var(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        return MISSING

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return

    # walking
    def walk(self, dot: Any, nodes: list[gt.Node]) -> None:
        for n in nodes:
            if isinstance(n, gt.Text):
                self.out.append(n.text)
            elif isinstance(n, gt.Action):
                assert n.pipe is not None
                v = self.pipe(dot, n.pipe)
                if not n.pipe.decl:
                    self.out.append(sprint_v(v))
            elif isinstance(n, gt.Branch):
                self.branch(dot, n)
            elif isinstance(n, gt.Loop):
                raise _Break() if n.kind == "break" else _Continue()

    def branch(self, dot: Any, n: gt.Branch) -> None:
        mark = len(self.vars)
        assert n.pipe is not None
        if n.kind == "range":
            self.range_(dot, n)
        else:
            v = self.pipe(dot, n.pipe)
            if truth(v):
                self.walk(v if n.kind == "with" else dot, n.body)
            elif n.else_body is not None:
                self.walk(dot, n.else_body)
        del self.vars[mark:]

    def range_(self, dot: Any, n: gt.Branch) -> None:
        assert n.pipe is not None
        decl = n.pipe.decl
        n.pipe.decl = []  # evaluate the value; the variables are set per element
        try:
            v = self.pipe(dot, n.pipe)
        finally:
            n.pipe.decl = decl
        if isinstance(v, dict):
            items = [(k, v[k]) for k in sorted(v)]
        elif isinstance(v, list):
            items = list(enumerate(v))
        elif v is MISSING or v is None or isinstance(v, GoNil):
            items = []
        else:
            raise self.fail(n.pipe, f"range can't iterate over {sprint_v(v)}")
        mark = len(self.vars)
        for key, elem in items:
            del self.vars[mark:]
            if len(decl) == 1:
                self.vars.append((decl[0], elem))
            elif len(decl) == 2:
                self.vars += [(decl[0], key), (decl[1], elem)]
            try:
                self.walk(elem, n.body)
            except _Break:
                break
            except _Continue:
                continue
        del self.vars[mark:]
        if not items and n.else_body is not None:
            self.walk(dot, n.else_body)

    def pipe(self, dot: Any, p: gt.Pipe) -> Any:
        value: Any = _NOFINAL
        for cmd in p.cmds:
            value = self.command(dot, cmd, value)
        for name in p.decl:
            if p.assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: gt.Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, gt.Field):
            return self.chain(dot, dot, first, first.names, cmd.args[1:], final)
        if isinstance(first, gt.Var):
            return self.chain(dot, self.var(first.name), first, first.names, cmd.args[1:], final)
        if isinstance(first, gt.Chain):
            assert first.node is not None
            recv = self.arg(dot, first.node)
            return self.chain(dot, recv, first, first.names, cmd.args[1:], final)
        if isinstance(first, gt.Ident):
            return self.call(dot, first.name, cmd, cmd.args[1:], final)
        if len(cmd.args) > 1 or final is not _NOFINAL:
            raise self.fail(first, f"can't give argument to non-function {first.text}")
        return self.arg(dot, first)

    def arg(self, dot: Any, n: gt.Node) -> Any:
        if isinstance(n, gt.Dot):
            return dot
        if isinstance(n, gt.Nil):
            raise self.fail(n, "cannot assign nil to interface {}")
        if isinstance(n, gt.Const):
            return n.value
        if isinstance(n, gt.Pipe):
            mark = len(self.vars)
            v = self.pipe(dot, n)
            del self.vars[mark:]
            return v
        if isinstance(n, gt.Ident):
            return self.call(dot, n.name, n, [], _NOFINAL)
        return self.command(dot, gt.Command(n.pos, n.text, [n]), _NOFINAL)

    def chain(
        self, dot: Any, recv: Any, node: gt.Node, names: list[str], args: list[gt.Node], final: Any
    ) -> Any:
        for i, name in enumerate(names):
            last = i == len(names) - 1
            recv = self.field(
                dot, recv, name, node, args if last else [], final if last else _NOFINAL
            )
        if not names and (args or final is not _NOFINAL):
            raise self.fail(node, f"can't give argument to non-function {node.text}")
        return recv

    def field(
        self, dot: Any, recv: Any, name: str, node: gt.Node, args: list[gt.Node], final: Any
    ) -> Any:
        has_args = bool(args) or final is not _NOFINAL
        if isinstance(recv, GoObject):
            vals = [self.arg(dot, a) for a in args]
            if final is not _NOFINAL:
                vals.append(final)
            try:
                return recv.go_lookup(name, vals)
            except LookupError:
                raise self.fail(
                    node, f"can't evaluate field {name} in type {recv.go_type}"
                ) from None
            except TypeError as e:
                raise self.fail(node, str(e)) from None
        if isinstance(recv, dict):
            if has_args:
                raise self.fail(node, f"{name} is not a method but has arguments")
            if name in recv:
                v = recv[name]
                if v is None and self.nil_kind is not None:
                    kind = self.nil_kind(name)
                    return GoNil(kind) if kind else None
                return v
            if self.missingkey_error:
                raise self.fail(node, f'map has no entry for key "{name}"')
            return MISSING
        if recv is MISSING:
            if self.missingkey_error:
                raise self.fail(node, f'nil data; no entry for key "{name}"')
            return MISSING
        if recv is None or (isinstance(recv, GoNil) and recv.kind == "ptr"):
            raise self.fail(node, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(recv, GoNil) and recv.kind == "map":
            return MISSING
        raise self.fail(node, f"can't evaluate field {name} in type {type_name(recv)}")

    def call(self, dot: Any, name: str, node: gt.Node, args: list[gt.Node], final: Any) -> Any:
        f = self.funcs[name]
        n = len(args) + (final is not _NOFINAL)
        if (f.variadic and n < f.nparams - 1) or (not f.variadic and n != f.nparams):
            want = f"at least {f.nparams - 1}" if f.variadic else str(f.nparams)
            raise self.fail(node, f"wrong number of args for {name}: want {want} got {n}")
        if name in ("and", "or"):
            v: Any = None
            for a in args:
                v = self.arg(dot, a)
                if truth(v) != (name == "and"):
                    return v
            return final if final is not _NOFINAL else v
        vals = [self.arg(dot, a) for a in args]
        if final is not _NOFINAL:
            vals.append(final)
        try:
            return f.fn(*vals)
        except _FuncError as e:
            raise self.fail(node, f"error calling {name}: {e}") from None
        except TypeError as e:
            raise self.fail(node, str(e)) from None


_NOFINAL: Any = object()


class Template:
    """A parsed template; ``execute(data)`` returns its output or raises :class:`ExecError`."""

    def __init__(self, text: str, funcs: dict[str, Func] | None = None) -> None:
        self.text = text
        self.funcs = {**BUILTINS, **(DOCKER if funcs is None else funcs)}
        self.tree = gt.parse(text, lambda name: name in self.funcs)

    def execute(
        self,
        data: Any,
        *,
        funcs: dict[str, Func] | None = None,
        missingkey_error: bool = False,
        nil_kind: Callable[[str], str | None] | None = None,
    ) -> str:
        """Run over ``data``; ``funcs`` replaces functions of the same name (header mode)."""
        st = _State(self.text, {**self.funcs, **(funcs or {})}, missingkey_error, nil_kind)
        st.vars.append(("$", data))
        st.walk(data, self.tree)
        return "".join(st.out)
