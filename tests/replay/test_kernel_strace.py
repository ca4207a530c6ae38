"""The replay's proof: random operation sequences run on a real kernel overlay under
``strace -f``, the log replayed offline, and the predicted upper dir equal to the kernel's.

Cases come from the differential oracle's strategies (layer stacks with whiteouts, opaque
and x-whiteout dirs, hard links; every op kind). The traced program is a Python script:
its startup touches hundreds of host files outside the mount, which the replay must ignore.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlaysim.replay import ReplayConfig, replay
from overlaysim.testing import kernel, observe, strategies
from overlaysim.testing.layers import build_stack, escape_lowerdir, xattr_prefix_for

_CAN, _WHY = kernel.can_mount()
pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not _CAN, reason=f"needs mount(2) of overlay: {_WHY}"),
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
]

_PROGRAM = """import ctypes, os, sys
ns = {"os": os, "ctypes": ctypes, "r": None, "d": None}
snippets = [bytes.fromhex(h).decode() for h in sys.argv[2:]]
os.chdir(sys.argv[1])
for src in snippets:
    try:
        exec(src, ns)
    except OSError:
        pass
"""
#: Profiles whose cases have an upper dir (the replay predicts one).
PROFILES = ("default", "redirect_dir=on", "userxattr", "volatile", "metacopy=on")


def record(case: strategies.Case, base: str) -> tuple[str, str]:
    """Run ``case`` on a kernel overlay under strace; returns (log, kernel upper dir)."""
    paths = build_stack(case.stack, os, os.path.join(base, "k"), options=case.options)
    assert paths.upper and paths.work
    merged = os.path.join(base, "k", "m")
    os.mkdir(merged)
    data = (f"lowerdir={':'.join(escape_lowerdir(x) for x in paths.lowers)},"
            f"upperdir={paths.upper},workdir={paths.work}")  # fmt: skip
    if case.options:
        data += "," + case.options
    prog = os.path.join(base, "prog.py")
    with open(prog, "w") as f:
        f.write(_PROGRAM)
    log = os.path.join(base, "trace.log")
    kernel.mount("overlay", merged, "overlay", data)
    try:
        args = [op.snippet().encode().hex() for op in case.ops]
        subprocess.run(["strace", "-f", "-qq", "-s", "1000000", "-o", log, sys.executable,
                        "-I", prog, merged, *args], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    finally:
        kernel.umount(merged)
    return log, paths.upper


def replay_case(case: strategies.Case, base: str, log: str, merged: str) -> object:
    pristine = build_stack(case.stack, os, os.path.join(base, "s"), options=case.options)
    cfg = ReplayConfig(lowerdirs=list(pristine.lowers), upperdir=pristine.upper,
                       options=case.options, mount_point=merged)  # fmt: skip
    return replay(log, cfg)


def check(case: strategies.Case) -> None:
    base = tempfile.mkdtemp(prefix="ovs-replay-")
    try:
        log, kupper = record(case, base)
        result = replay_case(case, base, log, os.path.join(base, "k", "m"))
        rep = result.report  # type: ignore[attr-defined]
        assert rep["mismatch_count"] == 0, rep["mismatches"][:5]
        assert rep["calls"]["replayed"] >= len(case.ops) // 2
        prefix = xattr_prefix_for(case.options)
        fs = result.session.fs  # type: ignore[attr-defined]
        ka = observe.snapshot(os, kupper, upper_prefix=prefix)
        sa = observe.snapshot(fs.os, result.session.upper, upper_prefix=prefix)  # type: ignore[attr-defined]
        assert ka == sa, "\n".join(observe.diff(ka, sa)[:30])
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("profile", PROFILES)
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(data=st.data())
def test_random_sequences_under_strace_replay_to_the_kernels_upper(profile: str,
                                                                     data: object) -> None:
    case = data.draw(strategies.cases(profile, min_ops=15, max_ops=30))  # type: ignore[attr-defined]
    check(case)
