"""The stored real-workload cases (``cases/<name>/``) are well formed and match
``cases.py``; and, where root and strace are at hand, re-recording the cheap ``sed`` case on
this machine's kernel gives the stored upper dir (so drift of the machine shows up)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from overlaysim.testing import kernel
from tests.replay.cases import CASES, CASES_DIR, REC_ROOT
from tests.replay.record_cases import CASE_KEYS, compare, load, record

MAX_CASE_BYTES = 1_000_000
NAMES = sorted(CASES)


def _load(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    return load(str(CASES_DIR / name))


def test_every_case_is_stored_and_nothing_else() -> None:
    stored = sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir())
    assert stored == NAMES, "re-record with: sudo python -m tests.replay.record_cases"


@pytest.mark.parametrize("name", NAMES)
def test_case_json_matches_cases_py(name: str) -> None:
    case = CASES[name]
    doc, _ = _load(name)
    assert set(CASE_KEYS) <= set(doc), sorted(set(CASE_KEYS) - set(doc))
    assert doc["name"] == name
    assert doc["lowerdir_count"] == len(case.lowers) == len(doc["lowerdirs"])
    assert doc["options"] == case.options
    assert doc["strace"]["flags"] == list(case.strace), "cases.py changed: re-record"
    assert doc["strace"]["attach"] == case.attach
    assert doc["mount_point"] == case.mount_point
    assert doc["merged"] == f"{REC_ROOT}/{name}/merged"
    assert doc["cwd"] == case.trace_cwd
    # the interpreter's path is the recording machine's (a clone elsewhere has another)
    def argv(words: list[str]) -> list[str]:
        return ["PYTHON" if w.endswith("/bin/python") or w == sys.executable else w
                for w in words]  # fmt: skip

    assert argv(doc["workload"]) == argv(case.argv(case.paths()))
    assert doc["exit_status"] == 0
    assert doc["content_unknown"] == list(case.content_unknown)
    assert doc["content_copied"] == list(case.content_copied)
    assert doc["volatile"] == list(case.volatile)
    for opt in filter(None, case.options.split(",")):
        assert opt in doc["kernel_mount_options"].split(","), opt


@pytest.mark.parametrize("name", NAMES)
def test_logs_present_and_readable(name: str) -> None:
    doc, _ = _load(name)
    assert doc["logs"]
    total = 0
    for log in doc["logs"]:
        path = CASES_DIR / name / log
        assert path.is_file(), path
        total += path.stat().st_size
        if log.endswith(".gz"):
            with gzip.open(path, "rt", errors="replace") as f:
                first = f.readline()
        else:
            assert path.stat().st_size <= 100 * 1024, f"{log}: big logs are stored gzipped"
            with open(path, errors="replace") as f:
                first = f.readline()
        assert first.strip(), f"{log}: empty"
    total += sum((CASES_DIR / name / n).stat().st_size for n in ("case.json", "upper.json"))
    assert total < MAX_CASE_BYTES, f"{name}: {total:,} bytes stored"
    if "-ff" in doc["strace"]["flags"]:
        assert len(doc["logs"]) > 1 and all(n.startswith("trace.") for n in doc["logs"])
    else:
        assert doc["logs"] in (["trace.log"], ["trace.log.gz"])


@pytest.mark.parametrize("name", NAMES)
def test_upper_json_is_a_manifest(name: str) -> None:
    case = CASES[name]
    doc, upper = _load(name)
    assert upper["."]["type"] == "dir"
    assert len(upper) > 1, "the workload left nothing in the upper dir"
    for path, e in upper.items():
        assert e["type"] in ("file", "dir", "symlink", "chr", "blk", "fifo", "sock"), path
        assert len(e["mode"]) == 4 and int(e["mode"], 8) <= 0o7777, path
        if e["type"] == "file":
            assert "size" in e and len(e["sha256"]) == 64, path
    for path in (*case.content_unknown, *case.content_copied, *case.volatile):
        assert upper.get(path, {}).get("type") == "file", f"{path}: not a file in upper.json"
    assert doc["uncaptured_calls"].keys() <= {"sendfile", "copy_file_range"}
    if case.content_unknown or case.content_copied:
        assert doc["uncaptured_calls"], "declared content the trace lacks, found no such call"
    else:
        assert not doc["uncaptured_calls"], "undeclared data the trace does not show"


_CAN, _WHY = kernel.can_mount()


@pytest.mark.kernel
@pytest.mark.skipif(not _CAN, reason=f"needs mount(2) of overlay: {_WHY}")
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_rerecording_sed_gives_the_stored_upper(tmp_path: Path) -> None:
    case = CASES["sed"]
    out = tmp_path / "out"
    doc = record(case, rec_root=str(tmp_path / "rec"), out_dir=str(out))
    _, stored = _load("sed")
    _, new = load(str(out))
    diffs = compare(case, stored, new, ("stored", "this machine"))
    assert diffs == [], (
        "the kernel/tools here leave a different upper dir than when sed was recorded "
        f"({json.dumps(_load('sed')[0]['machine'])} then, {json.dumps(doc['machine'])} now):\n"
        + "\n".join(diffs)
    )
    assert not os.path.exists(tmp_path / "rec" / "sed"), "the recording dir was not cleaned"
