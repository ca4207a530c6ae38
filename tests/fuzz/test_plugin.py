"""The pytest plugin, run the way a user meets it: a test file in a fresh pytester dir, the
plugin loaded through its ``pytest11`` entry point (nothing in a conftest)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from overlaysim.testing.kernel import can_mount

pytest_plugins = ["pytester"]

JUDGES = [
    pytest.param("kernel", marks=pytest.mark.skipif(not can_mount()[0], reason=can_mount()[1])),
    "reference",
]

USER_TESTS = '''
import errno
import pytest
from overlaysim.testing.simulator import simulator_factory

LAYERS = pytest.mark.overlay_layers(lowers=[{"d": {"e": "top"}}, {"a": "low", "d": {"f": ""}}],
                                    upper={})


class ModeLosingOs:
    """A planted fault: mkdir forgets its mode."""
    def __init__(self, real):
        self._real = real
    def __getattr__(self, name):
        return getattr(self._real, name)
    def mkdir(self, path, mode=0o777):
        self._real.mkdir(path, 0o755)


def broken(stack, options):
    m = simulator_factory(stack, options)
    m.os = ModeLosingOs(m.os)
    return m


@LAYERS
@pytest.mark.overlay_differential(judge="JUDGE")
def test_agrees(overlay):
    assert overlay.os.read("a") == b"low"
    assert overlay.os.listdir("d") == ["e", "f"]
    overlay.os.write("a", b"!", append=True)
    with pytest.raises(OSError) as e:
        overlay.os.rmdir("d")
    assert e.value.errno == errno.ENOTEMPTY
    overlay.os.unlink("d/e")
    overlay.os.rename("a", "d/a")
    assert overlay.os.listdir("d") == ["a", "f"]


class TestBroken:
    @pytest.fixture
    def overlay_simulator(self):
        return broken

    @LAYERS
    @pytest.mark.overlay_differential(judge="JUDGE")
    def test_fails_on_a_result(self, overlay):
        overlay.os.mkdir("n", 0o700)
        overlay.os.stat("n")   # the simulator says 0o755

    @LAYERS
    @pytest.mark.overlay_differential(judge="JUDGE")
    def test_fails_on_the_final_tree(self, overlay):
        overlay.os.mkdir("n", 0o700)   # no result differs; the merged tree does


def test_simulator_alone(overlay):
    overlay.os.mkdir("x", 0o700)
    assert overlay.os.lstat("x")[:2] == ("dir", 0o700)
    assert overlay.judge.name == "none"
    assert overlay.sim.fs.os.path.isdir(overlay.path("x"))
'''


def _run(pytester: pytest.Pytester, judge: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=USER_TESTS.replace("JUDGE", judge))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("judge", JUDGES)
def test_differential_passes_and_fails_as_the_judge_says(pytester: pytest.Pytester, judge: str) -> None:
    result = _run(pytester, judge)
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    # Both failures are test failures (not teardown errors), each with a reproducer. Only the
    # tracebacks are counted: under CI=1 pytest repeats full messages in the short summary.
    tracebacks = out.split("short test summary info")[0]
    assert tracebacks.count("--- reproducer (bash, as root) ---") == 2
    assert f"overlay divergence, {judge} vs simulator: op 1 Stat(path='n'" in out
    assert f"overlay divergence, {judge} vs simulator: at the end: merged" in out
    assert f"n: mode: {judge}=448 simulator=493" in out
    assert "mount -t overlay" in out


def test_differential_skips_with_the_reason_without_a_kernel(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import overlaysim.testing.kernel as K

    monkeypatch.setattr(K, "can_mount", lambda: (False, "needs root to mount(2) (test)"))
    result = _run(pytester, "kernel", "-rs")
    result.assert_outcomes(passed=1, skipped=3)
    assert "needs root to mount(2) (test)" in result.stdout.str()


def test_kernel_twin_of_a_plain_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import os
import pytest

@pytest.mark.overlay_layers(lowers=[{"a": "x"}, {}], upper=None)
def test_twin(overlay):
    k = overlay.kernel          # skips with the reason where mount(2) is refused
    assert os.listdir(k.mount_path) == ["a"]
    with pytest.raises(OSError):   # read-only: no upper
        overlay.os.unlink("a")
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    if can_mount()[0]:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(skipped=1)
        assert can_mount()[1] in result.stdout.str()


def test_marker_without_the_fixture_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.overlay_differential(judge="reference")
def test_forgot():
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "needs the `overlay` fixture" in result.stdout.str()


def test_hypothesis_tests_use_the_session_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
from hypothesis import given, settings
import overlaysim.strategies as S
from overlaysim.testing.reference import sanitize

@settings(max_examples=5, deadline=None, database=None)
@given(S.cases("default", min_ops=1, max_ops=4, hardlinks=False))
def test_cases(overlay_factory, case):
    # The reference model judges only the stacks it represents exactly: sanitize them.
    with overlay_factory(sanitize(case.stack), case.options, judge="reference") as ov:
        for op in case.ops:
            ov.apply(op)
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_plugin_comes_from_the_entry_point_only(pytester: pytest.Pytester) -> None:
    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("overlaysim") == "overlaysim.pytest_plugin"
    pytester.makepyfile("def test_x(overlay):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:overlaysim")
    result.assert_outcomes(errors=1)
    assert "fixture 'overlay' not found" in result.stdout.str()


def test_importing_the_plugin_mounts_nothing_and_loads_no_oracle() -> None:
    code = ("import sys, overlaysim.pytest_plugin\n"
            "print(sorted(m for m in sys.modules if m.startswith(('overlaysim.testing', "
            "'hypothesis'))))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
