"""Reproducers: case.json round-trips, test_repro.py fails exactly while the divergence
exists, and repro.sh replays the case on a real kernel as the campaign recorded it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings

from overlaysim.fuzz import reproduce
from overlaysim.fuzz.faults import planted
from overlaysim.fuzz.shard import cases
from overlaysim.fuzz.signature import signature
from overlaysim.fuzz.targets import resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing.kernel import can_mount
from overlaysim.testing.strategies import Case

MOUNTABLE, WHY = can_mount()
TARGET = "kernel" if MOUNTABLE else "reference"


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(cases("metacopy=on", "metacopy=on", 5, 10, hardlinks=True)
       | cases("default", "", 5, 10, hardlinks=True))  # fmt: skip
def test_cases_survive_json(case: Case) -> None:
    text = json.dumps([reproduce.encode(case.stack), [reproduce.encode(op) for op in case.ops]])
    stack, ops = json.loads(text)
    assert reproduce.decode(stack) == case.stack
    assert tuple(reproduce.decode(op) for op in ops) == case.ops


def test_unknown_kinds_and_foreign_files_are_refused(tmp_path: object) -> None:
    from overlaysim.errors import UsageError

    with pytest.raises(UsageError):
        reproduce.decode({"$type": "os.system", "command": "true"})
    bad = os.path.join(str(tmp_path), "x.json")
    with open(bad, "w") as f:
        f.write('{"format": "something else"}')
    with pytest.raises(UsageError):
        reproduce.load(bad)


# A lower file unlinked: with the planted fault the simulator leaves no whiteout.
CASE = Case(L.LayerStack((L.Dir({"a": L.File(b"x")}), L.Dir())), "", (O.Unlink("a"), O.Stat("a")),
            "default")  # fmt: skip


@pytest.fixture
def written(tmp_path: object) -> tuple[str, dict[str, object]]:
    target = resolve_target(TARGET)
    with planted("unlink-forgets-whiteout"):
        report = reproduce.run_one(target, CASE)
    assert not report.ok
    rec = reproduce.record(CASE, report, target=TARGET, signature=signature(report), shrunk=True,
                           fault="unlink-forgets-whiteout")  # fmt: skip
    d = os.path.join(str(tmp_path), "sig")
    reproduce.write(d, rec)
    return d, rec


def _pytest(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path],
                          capture_output=True, text=True, cwd=os.path.dirname(path), timeout=300)  # fmt: skip


def test_case_json_loads_back(written: tuple[str, dict[str, object]]) -> None:
    d, rec = written
    loaded = reproduce.load(os.path.join(d, "case.json"))
    assert loaded == rec
    assert reproduce.decode_case(loaded) == CASE
    assert not reproduce.replay(loaded).ok  # still diverges: the fault is recorded with it


def test_written_pytest_fails_while_the_divergence_exists(written: tuple[str, dict[str, object]]) -> None:
    d, rec = written
    test = os.path.join(d, "test_repro.py")
    run = _pytest(test)
    assert run.returncode == 1, run.stdout[-2000:]
    assert str(rec["signature"]) in run.stdout
    rec = {**rec, "fault": None}  # the "fix": without the planted fault both sides agree
    reproduce.write(d, rec)
    run = _pytest(test)
    assert run.returncode == 0, run.stdout[-2000:]


@pytest.mark.kernel
@pytest.mark.skipif(not MOUNTABLE, reason=WHY)
def test_repro_sh_replays_the_kernel_side(written: tuple[str, dict[str, object]]) -> None:
    d, rec = written
    out = subprocess.run(["bash", os.path.join(d, "repro.sh")], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    ran = [line for line in out.stdout.splitlines() if line.startswith("op ") and "|" not in line]
    results = rec["observations"]["results"]  # type: ignore[index]
    assert len(ran) == len(results) == len(CASE.ops)
    for line, r in zip(ran, results, strict=True):
        kernel_word = str(reproduce.decode(r["oracle"]).errno or "ok")
        assert line.split(": ", 1)[1].split()[0] == kernel_word
    assert f"signature: {rec['signature']}" in out.stdout  # both sides' records are printed
    assert "--- merged" in out.stdout and "--- upper" in out.stdout
