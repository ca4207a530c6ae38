"""Reproducers of a divergence: ``case.json``, ``repro.sh`` and ``test_repro.py``.

``case.json`` is the whole case (stack, options, operations) plus what both sides observed,
in a lossless JSON form that loads back (``overlaysim fuzz --replay case.json``). The shell
script rebuilds the layers and replays the operations on a real kernel overlay with
coreutils and python3 only, then prints what each side recorded, so a kernel or
container-runtime engineer can run it without overlaysim. The pytest file embeds the case
and fails for as long as the divergence exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from overlaysim.errors import OverlaySimError, UsageError
from overlaysim.testing import differential as D
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing.simulator import simulator_factory
from overlaysim.testing.strategies import Case

FORMAT = "overlaysim-fuzz-case"
VERSION = 1


def _kind(cls: type) -> str:
    """``layers.Symlink`` / ``ops.Symlink``: both modules have a Symlink."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def _registry() -> dict[str, type]:
    """Every dataclass a case file may hold: layer nodes, the stack, ops, op results."""
    classes: list[type] = [L.File, L.Dir, L.Symlink, L.Whiteout, L.Device, L.Fifo, L.HardLink,
                           L.LayerStack, O.Result]  # fmt: skip
    classes += [v for v in vars(O).values()
                if isinstance(v, type) and issubclass(v, O.Op) and v is not O.Op]  # fmt: skip
    return {_kind(c): c for c in classes}


def encode(obj: Any) -> Any:
    """JSON-able form of layer specs, ops and result values (bytes, tuples kept exact)."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, bytes):
        return {"$bytes": obj.hex()}
    if isinstance(obj, tuple):
        return {"$tuple": [encode(x) for x in obj]}
    if isinstance(obj, list):
        return [encode(x) for x in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"$type": _kind(type(obj)), **fields}
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): encode(v) for k, v in obj.items()}
    raise TypeError(f"cannot encode {type(obj).__name__} in a case file")


def decode(data: Any, kinds: dict[str, type] | None = None) -> Any:
    """The inverse of :func:`encode`; unknown ``$type`` names are a :class:`UsageError`."""
    kinds = kinds if kinds is not None else _registry()
    if isinstance(data, list):
        return [decode(x, kinds) for x in data]
    if not isinstance(data, dict):
        return data
    if "$bytes" in data:
        return bytes.fromhex(data["$bytes"])
    if "$tuple" in data:
        return tuple(decode(x, kinds) for x in data["$tuple"])
    if "$type" in data:
        cls = kinds.get(data["$type"])
        if cls is None:
            raise UsageError(f"case file names an unknown kind {data['$type']!r}")
        return cls(**{k: decode(v, kinds) for k, v in data.items() if k != "$type"})
    return {k: decode(v, kinds) for k, v in data.items()}


def record(case: Case, report: D.CaseReport, *, target: str, signature: str, shrunk: bool,
           fault: str | None = None, sides: tuple[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The case.json content: the case and both sides' observations."""
    results = [{"op": i, "call": repr(op), "oracle": encode(a), "simulator": encode(b),
                "text": f"{a} | {b}"}
               for i, (op, (a, b)) in enumerate(zip(case.ops, report.results, strict=False))]  # fmt: skip
    divergences = [{"where": d.where, "op": repr(d.op) if d.op is not None else None,
                    "oracle": str(d.oracle), "simulator": str(d.simulator), "detail": d.detail}
                   for d in report.divergences]  # fmt: skip
    return {
        "format": FORMAT, "version": VERSION, "signature": signature, "target": target,
        "profile": case.profile, "options": case.options, "fault": fault, "shrunk": shrunk,
        "stack": encode(case.stack), "ops": [encode(op) for op in case.ops],
        "observations": {"oracle": (sides or (target, "overlaysim"))[0],
                         "simulator": (sides or (target, "overlaysim"))[1], "results": results,
                         "divergences": divergences},
    }  # fmt: skip


def decode_case(rec: dict[str, Any]) -> Case:
    """The :class:`Case` of a case.json record."""
    if rec.get("format") != FORMAT or rec.get("version") != VERSION:
        raise UsageError(f"not an overlaysim fuzz case (format {rec.get('format')!r}, "
                         f"version {rec.get('version')!r})")  # fmt: skip
    kinds = _registry()
    stack = decode(rec["stack"], kinds)
    ops = tuple(decode(op, kinds) for op in rec["ops"])
    if not isinstance(stack, L.LayerStack) or not all(isinstance(op, O.Op) for op in ops):
        raise UsageError("case file: 'stack' must be a LayerStack and 'ops' operations")
    return Case(stack, str(rec.get("options", "")), ops, str(rec.get("profile", "")))


def load(path: str) -> dict[str, Any]:
    """Read a case.json (a :class:`UsageError` for anything else)."""
    try:
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{path} is not JSON: {e}") from None
    if not isinstance(rec, dict):
        raise UsageError(f"{path} is not a case file")
    decode_case(rec)  # validate now, not halfway through a replay
    return rec


def sides(target: Any) -> tuple[D.MountFactory, D.MountFactory]:
    """run_case's (oracle, simulator) slots for ``target``: its own ``sides()`` where it has
    one (a target judged against another oracle), else the target against the simulator."""
    get = getattr(target, "sides", None)
    if get is not None:
        pair: tuple[D.MountFactory, D.MountFactory] = get()
        return pair
    return target.factory, simulator_factory


def labels(target: Any) -> tuple[str, str]:
    """Names of the two slots, for reports."""
    if getattr(target, "versus", None) is None:
        return target.name, "overlaysim"
    return "oracle", target.name


Wrap = Callable[[D.MountFactory, str], D.MountFactory]


def run_one(target: Any, case: Case, wrap: Wrap | None = None, *, early: bool = False) -> D.CaseReport:
    """One differential run of ``case`` with the target's comparison rules; ``wrap(factory,
    "oracle"|"sim")`` may instrument the two factories; ``early`` stops after the operations
    (no work dir, remount or round trips: what a shrinker needs for an early signature).

    A crash of either side (any exception but an :class:`OverlaySimError`, which means the
    target itself cannot go on) is reported as a divergence at ``"crash"``: an engine that
    raises is a finding like any other, and is shrunk like one.
    """
    oracle, judged = sides(target)
    if wrap is not None:
        oracle, judged = wrap(oracle, "oracle"), wrap(judged, "sim")
    try:
        clean = getattr(target, "sanitize", None)  # layer features the target never claimed
        compare = tuple(t for t in target.compare if t != "work") if early else target.compare
        return D.run_case(clean(case.stack) if clean else case.stack, case.ops, case.options,
                          judged, oracle_factory=oracle, compare=compare,
                          ignore=target.ignore, round_trip=target.round_trip and not early,
                          remount=getattr(target, "remount", True) and not early)  # fmt: skip
    except OverlaySimError:
        raise
    except Exception as e:
        lines = [x.rstrip() for x in traceback.format_exception(e)[-6:]]
        crash = D.Divergence("crash", oracle="-", simulator=f"{type(e).__name__}: {e}", detail=lines)
        return D.CaseReport(case.stack, case.ops, case.options, divergences=[crash])


@contextlib.contextmanager
def _fault(name: str | None) -> Iterator[None]:
    if not name:
        yield
        return
    from overlaysim.fuzz import faults

    with faults.planted(name):
        yield


def replay(rec: dict[str, Any], target: Any = None) -> D.CaseReport:
    """Run a case record again (on its own target unless another is given)."""
    from overlaysim.fuzz.targets import resolve_target

    tgt = target if target is not None else resolve_target(str(rec["target"]))
    case = decode_case(rec)
    with _fault(rec.get("fault")):
        return run_one(tgt, case)


# --- files ---------------------------------------------------------------------------------------
def script(rec: dict[str, Any]) -> str:
    """repro.sh: build, mount, run up to the diverging op, print both sides' records."""
    case = decode_case(rec)
    divs = [D.Divergence(d["where"]) for d in rec["observations"]["divergences"]]
    report = D.CaseReport(case.stack, case.ops, case.options, divergences=divs)
    body = _target_script(str(rec["target"]), report) or report.script()
    obs = rec["observations"]
    lines = [f"--- recorded by overlaysim fuzz: {obs['oracle']} | {obs['simulator']}",
             f"signature: {rec['signature']}"]  # fmt: skip
    lines += [f"op {r['op']}: {r['text']}" for r in rec["observations"]["results"]]
    for d in rec["observations"]["divergences"]:
        both = "" if d["oracle"] == d["simulator"] == "None" else \
            f": {obs['oracle']}={d['oracle']} {obs['simulator']}={d['simulator']}"  # fmt: skip
        lines.append(f"diverged at {d['where']}{both}")
        lines += [f"  {x}" for x in d["detail"][:20]]
    head = body.split("\n", 2)
    note = f"# signature: {rec['signature']} (target {rec['target']}, options {case.options!r})"
    trailer = "cat <<'OVERLAYSIM_RECORDED'\n" + "\n".join(lines) + "\nOVERLAYSIM_RECORDED\n"
    return "\n".join([head[0], head[1], note, head[2]]) + trailer


def _target_script(spec: str, report: D.CaseReport) -> str | None:
    """The target's own two-sided reproducer (fuse-overlayfs: both mounts), if it has one."""
    from overlaysim.fuzz.targets import resolve_target

    try:
        make = getattr(resolve_target(spec), "script", None)
    except OverlaySimError:
        return None
    return make(report) if make is not None else None


_TEST = '''"""Written by ``overlaysim fuzz``; fails while this divergence exists.

signature: {sig}
target: {target}; profile: {profile}; options: {options!r}
{where}
"""

import json

import pytest

from overlaysim.fuzz.reproduce import replay
from overlaysim.fuzz.targets import resolve_target

CASE = json.loads({blob!r})


def test_{name}() -> None:
    target = resolve_target(CASE["target"])
    usable, why = target.available()
    if not usable:
        pytest.skip(f"target {{target.name}} cannot run here: {{why}}")
    report = replay(CASE, target)
    assert report.ok, f"{{CASE['signature']}}\\n{{report}}\\n--- script ---\\n{{report.script()}}"
'''


def test_source(rec: dict[str, Any], name: str) -> str:
    """test_repro.py: the case embedded, run through run_case on the same target."""
    divs = rec["observations"]["divergences"]
    where = f"first divergence: {divs[0]['where']}" if divs else ""
    ident = re.sub(r"\W+", "_", name).strip("_").lower() or "divergence"
    return _TEST.format(sig=rec["signature"], target=rec["target"], profile=rec["profile"],
                        options=rec["options"], where=where, name=ident[:60],
                        blob=json.dumps(rec, sort_keys=True))  # fmt: skip


def write(directory: str, rec: dict[str, Any]) -> None:
    """Write case.json, repro.sh (executable) and test_repro.py into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    files = {"case.json": json.dumps(rec, indent=1, sort_keys=True) + "\n",
             "repro.sh": script(rec),
             "test_repro.py": test_source(rec, os.path.basename(directory))}  # fmt: skip
    for name, text in files.items():
        tmp = os.path.join(directory, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(directory, name))
    os.chmod(os.path.join(directory, "repro.sh"), 0o755)
