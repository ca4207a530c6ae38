"""Go's ``fmt`` for template values: ``%v`` printing (what ``{{.X}}`` shows) and ``printf``.

Template output is Go's ``fmt.Fprint`` of the value, so a list prints as ``[a b]``, a map
as ``map[k:v]`` with sorted keys, a missing map key as ``<no value>`` and a null as
``<nil>``; ``printf`` follows Go's verbs and its ``%!d(string=x)`` complaints.
"""

from __future__ import annotations

import decimal
import math
from dataclasses import dataclass
from typing import Any


class _Missing:
    """Go's invalid ``reflect.Value``: what a missing map key evaluates to."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class GoNil:
    """A typed nil of a Go struct field: a nil slice prints ``[]``, a nil map ``map[]``."""

    kind: str  # "slice", "map" or "ptr"


class GoObject:
    """A Go value with methods and fields of its own (the docker CLI's formatter contexts)."""

    go_type = "struct"

    def go_lookup(self, name: str, args: list[Any]) -> Any:
        """The field or method ``name`` called with ``args``; LookupError if there is none."""
        raise LookupError(name)

    def go_json(self) -> str:
        return "{}"

    def go_str(self) -> str:
        return "&{}"


def type_name(v: Any) -> str:
    """The Go type name of a value, as error messages print it."""
    if isinstance(v, GoObject):
        return v.go_type
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "[]string" if all(isinstance(x, str) for x in v) and v else "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, GoNil):
        return {"slice": "[]string", "map": "map[string]string"}.get(v.kind, "*struct")
    return "<nil>"


def go_float(f: float) -> str:
    """``%v`` of a float64: shortest digits, exponent form below 1e-4 and from 1e21."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    d = decimal.Decimal(repr(f)).normalize()
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    x = len(ds) - 1 + exp
    neg = "-" if sign else ""
    if x < -4 or x >= 21:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if exp >= 0:
        return neg + ds + "0" * exp
    point = len(ds) + exp
    if point <= 0:
        return neg + "0." + "0" * -point + ds
    return neg + ds[:point] + "." + ds[point:]


def sprint_v(v: Any) -> str:
    """``fmt.Sprint(v)`` for one operand."""
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, GoNil):
        return {"slice": "[]", "map": "map[]"}.get(v.kind, "<nil>")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, list):
        return "[" + " ".join(sprint_v(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{sprint_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, GoObject):
        return v.go_str()
    return str(v)


def sprint(args: list[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither is a string."""
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(sprint_v(a))
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(sprint_v(a) for a in args) + "\n"


def _bad(verb: str, a: Any) -> str:
    return f"%!{verb}({type_name(a)}={sprint_v(a)})"


def _pad(s: str, width: int | None, flags: str, numeric: bool = False) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags and numeric:
        sign = s[0] if s[:1] in "+- " and s[:1] else ""
        body = s[len(sign) :]
        return sign + "0" * (width - len(s)) + body
    return " " * (width - len(s)) + s


def _one(verb: str, flags: str, width: int | None, prec: int | None, a: Any) -> str:
    from overlaysim.docker.gotemplate import go_quote

    num = isinstance(a, int) and not isinstance(a, bool)
    if verb == "v":
        s = sprint_v(a)
        if isinstance(a, str) and "#" in flags:
            s = go_quote(a)
    elif verb == "s":
        if isinstance(a, str):
            s = a if prec is None else a[:prec]
        elif isinstance(a, list) and all(isinstance(x, str) for x in a):
            s = sprint_v(a)
        else:
            return _bad(verb, a)
    elif verb == "q":
        if isinstance(a, str):
            s = go_quote(a)
        elif num:
            s = "'" + chr(a) + "'"
        else:
            return _bad(verb, a)
    elif verb == "t":
        if not isinstance(a, bool):
            return _bad(verb, a)
        s = "true" if a else "false"
    elif verb in "dxXobc":
        if verb in "xX" and isinstance(a, str):
            s = a.encode().hex()
            s = s.upper() if verb == "X" else s
        elif not num:
            return _bad(verb, a)
        elif verb == "c":
            s = chr(a)
        else:
            spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
            s = format(a, ("+" if "+" in flags else (" " if " " in flags else "")) + spec)
    elif verb in "eEfFgG":
        if not isinstance(a, float):
            return _bad(verb, a)
        if verb in "gG" and prec is None:
            s = go_float(a)
        else:
            p = 6 if prec is None else prec
            s = format(a, ("+" if "+" in flags else "") + f".{p}{verb.lower()}")
            if "e" in s and verb.lower() in "eg":
                mant, _, ex = s.partition("e")
                s = f"{mant}e{ex[0]}{int(ex[1:]):02d}"
            if verb.isupper():
                s = s.upper()
    else:
        return _bad(verb, a)
    return _pad(s, width, flags, numeric=verb in "dxXobeEfFgG")


def sprintf(fmt: str, args: list[Any]) -> str:
    """``fmt.Sprintf`` for the verbs templates use (v s q d x X o b c t e f g)."""
    out: list[str] = []
    i, n, argi = 0, len(fmt), 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        i += 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width: int | None = None
        prec: int | None = None
        if i < n and fmt[i] == "*":
            width, i = (args[argi] if argi < len(args) else 0), i + 1
            argi += 1
        else:
            j = i
            while i < n and fmt[i].isdigit():
                i += 1
            width = int(fmt[j:i]) if i > j else None
        if i < n and fmt[i] == ".":
            i += 1
            j = i
            while i < n and fmt[i].isdigit():
                i += 1
            prec = int(fmt[j:i]) if i > j else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_one(verb, flags, width, prec, args[argi]))
        argi += 1
    if argi < len(args):
        extra = ", ".join(f"{type_name(a)}={sprint_v(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
