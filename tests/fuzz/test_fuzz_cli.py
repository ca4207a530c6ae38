"""``overlaysim fuzz``: exit codes, one-line usage errors, --json, --replay, reports on disk."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from click.testing import CliRunner, Result

from overlaysim.cli import main
from overlaysim.fuzz import reproduce
from overlaysim.fuzz.faults import planted
from overlaysim.fuzz.signature import signature
from overlaysim.fuzz.targets import resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing.kernel import can_mount
from overlaysim.testing.strategies import Case

TARGET = "kernel" if can_mount()[0] else "reference"


def fuzz(*args: str) -> Result:
    return CliRunner().invoke(main, ["fuzz", *args])


@pytest.mark.parametrize("args", [
    ["--profile", "no-such-profile"],
    ["--time", "soon"],
    ["--profile", "default", "--options", "redirect_dir=on"],
    ["--options", "upperdir=/tmp"],
    ["--sequences", "0"],
    ["--replay", "/nonexistent/case.json"],
    ["--against", ""],
    ["--no-such-flag"],
])  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2(args: list[str], tmp_path: Any) -> None:
    r = fuzz("--against", TARGET, "--out", str(tmp_path / "o"), *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("overlaysim fuzz: error: ")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output


def test_json_lines_and_exit_0_without_divergence(tmp_path: Any) -> None:
    out = str(tmp_path / "j")
    r = fuzz("--against", TARGET, "--sequences", "3", "--shard-size", "3", "--ops", "3",
             "--json", "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "summary"
    s = events[-1]
    assert s["sequences"] == 3 and s["signatures"] == {} and s["interrupted"] is False
    assert s["ops_per_s"] > 0 and s["coverage"] >= 1 and s["coverage_source"] == "fs.events kinds"
    assert os.path.exists(os.path.join(out, "state.json"))


def test_a_planted_fault_is_reported_shrunk_with_all_three_reproducers(tmp_path: Any) -> None:
    out = str(tmp_path / "f")
    r = fuzz("--against", TARGET, "--sequences", "40", "--shard-size", "10", "--ops", "4", "-x",
             "--plant-fault", "unlink-forgets-whiteout", "--json", "--out", out)  # fmt: skip
    assert r.exit_code == 1, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]
    found = [e for e in events if e["event"] == "divergence"]
    assert found and found[0]["shrunk"] and found[0]["ops"] <= 5
    d = os.path.join(out, found[0]["dir"])
    assert sorted(os.listdir(d)) == ["case.json", "repro.sh", "test_repro.py"]
    assert os.access(os.path.join(d, "repro.sh"), os.X_OK)
    assert events[-1]["signatures"].keys() == {found[0]["signature"]}
    again = fuzz("--replay", os.path.join(d, "case.json"))  # the fault travels with the case
    assert again.exit_code == 1 and "still diverges" in again.stdout and "same signature" in again.stdout


def test_replay_says_when_a_case_no_longer_diverges(tmp_path: Any) -> None:
    case = Case(L.LayerStack((L.Dir({"a": L.File()}),)), "", (O.Unlink("a"),), "default")
    target = resolve_target(TARGET)
    with planted("unlink-forgets-whiteout"):
        report = reproduce.run_one(target, case)
    rec = reproduce.record(case, report, target=TARGET, signature=signature(report), shrunk=True)
    path = str(tmp_path / "case.json")
    with open(path, "w") as f:
        json.dump(rec, f)
    r = fuzz("--replay", path, "--json")
    assert r.exit_code == 0, r.output
    line = json.loads(r.stdout)
    assert line["diverges"] is False and line["recorded_signature"] == rec["signature"]
