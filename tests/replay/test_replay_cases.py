"""Real workloads recorded on this kernel (``cases/``), replayed offline: the predicted upper
dir must equal the kernel's manifest (types, modes, owners, sizes, sha256, symlink targets,
hard-link groups, overlay xattrs by value, origin/uuid by presence), and every replayed call
must return what the kernel returned."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from overlaysim.replay import ReplayConfig, replay
from overlaysim.replay.manifest import diff_manifests, manifest
from tests.replay.cases import CASES, CASES_DIR, build_lowers
from tests.replay.record_cases import load

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the lowers hold char 0/0 whiteouts and trusted.overlay.* xattrs: root only",
)
REPLAYED = sorted(CASES)


def _replay(name: str, base: str) -> tuple[dict[str, object], object]:
    case = CASES[name]
    doc, upper = load(str(CASES_DIR / name))
    stack = build_lowers(case, base)
    logs = [str(CASES_DIR / name / x) for x in doc["logs"]]
    cfg = ReplayConfig(lowerdirs=list(stack.lowers), options=case.options,
                       mount_point=case.mount_point, cwd=case.trace_cwd)  # fmt: skip
    return upper, replay(logs if len(logs) > 1 else logs[0], cfg)


@pytest.mark.parametrize("name", REPLAYED)
def test_replay_predicts_the_kernels_upper_dir(name: str) -> None:
    case = CASES[name]
    base = tempfile.mkdtemp(prefix=f"ovs-case-{name}-")
    try:
        want, result = _replay(name, base)
        rep = result.report  # type: ignore[attr-defined]
        session = result.session  # type: ignore[attr-defined]
        assert rep["mismatch_count"] == 0, rep["mismatches"][:10]
        assert sorted(rep["content_unknown"]) == sorted(case.content_unknown)
        skip = set(case.content_unknown) | set(case.volatile)
        got = manifest(session.fs.os, session.upper, skip_content=skip)
        want = {k: ({f: v for f, v in e.items() if not (k in skip and f == "sha256")})
                for k, e in want.items()}  # type: ignore[union-attr]
        assert got == want, "\n".join(diff_manifests(want, got, ("kernel", "replay"))[:40])
        assert rep["calls"]["replayed"] > 0
    finally:
        shutil.rmtree(base, ignore_errors=True)
