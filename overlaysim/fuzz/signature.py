"""Divergence signatures: one bug, one report.

A campaign meets the same bug in many cases, at different paths, in different profiles. The
signature keeps what identifies the bug and drops what varies between its sightings: the
operation kind, the kind of observation that differed (an op's result, ``st_ino`` across a
copy-up, a tree field at a checkpoint, the work dir after umount, a mount...) and the errno
(or value) pair of the two sides -- never paths, names, or file contents.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from typing import Any

from overlaysim.testing.differential import CaseReport, Divergence
from overlaysim.testing.ops import Open, Rename, Result, Stat

# stat_summary() positions, for naming which part of a stat value differed
_STAT_FIELDS = ("type", "mode", "uid", "gid", "size", "nlink", "rdev")
# observe.diff() lines: "<path>: <field>: kernel=<repr> simulator=<repr>", "<path>: only in X"
_FIELD_LINE = re.compile(r"^(?P<path>.*?): (?P<field>[a-z_]+): kernel=(?P<a>.*) simulator=(?P<b>.*)$")
_ONLY_LINE = re.compile(r"^(?P<path>.*?): only in (?P<side>kernel|simulator)$")
_SPACES = re.compile(r"\s+")


def op_kind(op: Any) -> str:
    """``rename`` -> ``rename``/``rename(exchange)``...; ``open`` keeps its access mode."""
    name = type(op).__name__.lower()
    if isinstance(op, Rename) and op.flags:
        flags = [n for bit, n in ((1, "noreplace"), (2, "exchange"), (4, "whiteout")) if op.flags & bit]
        return f"{name}({'+'.join(flags)})"
    if isinstance(op, Stat):
        return "stat" if op.follow else "lstat"
    if isinstance(op, Open):
        return f"open({_open_mode(op.flags)})"
    return name


def _open_mode(flags: int) -> str:
    acc = {os.O_RDONLY: "r", os.O_WRONLY: "w", os.O_RDWR: "rw"}.get(flags & os.O_ACCMODE, "?")
    extra = [n for bit, n in ((os.O_CREAT, "creat"), (os.O_EXCL, "excl"), (os.O_TRUNC, "trunc"),
                              (os.O_APPEND, "append"), (os.O_DIRECTORY, "dir")) if flags & bit]  # fmt: skip
    return "+".join([acc, *extra])


def _outcome(r: Result) -> str:
    return r.errno or "ok"


def _result_sig(op: Any, a: Result, b: Result) -> str:
    head = f"{op_kind(op)}.result"
    if a.errno or b.errno:
        return f"{head}.{_outcome(a)}~{_outcome(b)}"
    if a.data != b.data:
        return f"{head}.data"
    if isinstance(a.value, tuple) and isinstance(b.value, tuple) and isinstance(op, Stat):
        fields = [_STAT_FIELDS[i] if i < len(_STAT_FIELDS) else str(i)
                  for i, (x, y) in enumerate(zip(a.value, b.value, strict=False)) if x != y]  # fmt: skip
        return f"{head}.value[{'+'.join(fields) or 'len'}]"
    return f"{head}.value"


def _kept(v: Any) -> str:
    """A (stat, lstat) pair of st_ino-kept flags as one word."""
    if not isinstance(v, tuple):
        return str(v)
    return "/".join({True: "kept", False: "changed", None: "none"}.get(x, str(x)) for x in v)


def _stage(where: str) -> str:
    """Where in a run: start, checkpoint, umount (work dir), remount, round trips, mount."""
    if where.startswith("start"):
        return "start"
    if where.startswith("after op"):
        return "checkpoint"
    if where.startswith("after remount"):
        return "remount"
    if where.startswith("work dir"):
        return "umount"
    if where.startswith("kernel layers -> simulator"):
        return "roundtrip(kernel>sim)"
    if where.startswith("simulator layers -> kernel"):
        return "roundtrip(sim>kernel)"
    return where.split(":")[0].strip().replace(" ", "-")


def _tree(where: str) -> str:
    for tree in ("merged", "upper"):
        if where.endswith(": " + tree):
            return tree
    return "work" if where.startswith("work dir") else "tree"


def _xattr_names(text: str) -> set[str]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return set()
    return {str(k) for k, *_ in value} if isinstance(value, tuple) else set()


def _xattr_kind(name: str) -> str:
    """The overlay's own xattrs by name (either prefix), every other xattr as ``*``: which
    user xattrs a case happened to hold says nothing about the bug."""
    for prefix in ("trusted.overlay.", "user.overlay."):
        if name.startswith(prefix):
            return "overlay." + name[len(prefix) :]
    return "*"


def _field_sigs(detail: list[str]) -> list[str]:
    """The fields that differed over all diff lines, normalised (no paths, no values but the
    types and the kinds of xattrs gained or lost)."""
    out: set[str] = set()
    xattrs: set[str] = set()
    for line in detail:
        m = _FIELD_LINE.match(line)
        if m:
            f, a, b = m["field"], m["a"], m["b"]
            if f == "type":
                out.add(f"type[{a.strip(chr(39))}~{b.strip(chr(39))}]")
            elif f == "xattrs":
                xa, xb = _xattr_names(a), _xattr_names(b)
                xattrs |= {f"-{_xattr_kind(n)}" for n in xa - xb}
                xattrs |= {f"+{_xattr_kind(n)}" for n in xb - xa}
                if xa == xb:
                    xattrs.add("value")
            else:
                out.add(f)
            continue
        m = _ONLY_LINE.match(line)
        if m:
            out.add("missing" if m["side"] == "kernel" else "extra")
        elif line.startswith("distinct st_dev"):
            out.add("st_dev")
    if xattrs:
        out.add(f"xattrs[{','.join(sorted(xattrs))}]")
    return sorted(out)


def of_divergence(d: Divergence) -> str:
    """The signature of one divergence (see the module docstring)."""
    if d.op is not None and isinstance(d.oracle, Result) and isinstance(d.simulator, Result):
        return _result_sig(d.op, d.oracle, d.simulator)
    if d.op is not None and "st_ino" in d.where:
        return f"{op_kind(d.op)}.st_ino.{_kept(d.oracle)}~{_kept(d.simulator)}"
    if d.where == "crash":  # an exception: its type and the function that raised it
        kind = str(d.simulator).split(":")[0]
        funcs = [m[1] for line in d.detail for m in [re.search(r", in (\w+)", line)] if m]
        return f"crash.{kind}" + (f"@{funcs[-1]}" if funcs else "")
    stage = _stage(d.where)
    if d.detail:
        fields = _field_sigs(d.detail)
        shown = "+".join(fields[:3]) + (f"+{len(fields) - 3}more" if len(fields) > 3 else "")
        return f"{stage}.{_tree(d.where)}.{shown or 'differs'}"
    return f"{stage}.{d.oracle}~{d.simulator}"


_LATE = ("umount.", "remount.", "roundtrip(", "crash.")


def is_early(sig: str) -> bool:
    """Whether a signature shows while the operations run (op results, checkpoints), so that
    a run checking for it may skip the umount, remount and round trips."""
    return not sig.startswith(_LATE)


def signature(report: CaseReport) -> str:
    """The signature of a failed case: that of its first divergence ("" when it passed)."""
    if report.ok:
        return ""
    return _SPACES.sub("_", of_divergence(report.divergences[0]))


def dirname(sig: str) -> str:
    """A directory name for a signature: readable, bounded, unique (a short hash at the end)."""
    digest = hashlib.sha1(sig.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "-", sig).strip("-.")[:80]
    return f"{slug}-{digest}"
