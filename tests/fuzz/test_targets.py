"""``--against`` targets and the JSON-lines protocol, without mount(2).

The served simulator (``python -m overlaysim.fuzz.serve``) must be indistinguishable from the
simulator in-process on every tree; broken servers must stop a run with one clear line
(:class:`TargetError`) within the reply deadline, never hang or leave a process behind.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import time

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from overlaysim.errors import TargetError, UsageError
from overlaysim.fuzz import protocol as P
from overlaysim.fuzz import remote
from overlaysim.fuzz.targets import ALL_TREES, SIM_PAIRS, Remounted, resolve_target
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing import strategies as S
from overlaysim.testing.simulator import simulator_factory

SERVE = f"{sys.executable} -m overlaysim.fuzz.serve"


# --- resolution -------------------------------------------------------------------------------
def test_named_targets_resolve_with_their_rules() -> None:
    k = resolve_target("kernel")
    assert (k.compare, k.round_trip, k.hardlinks, k.versus) == (ALL_TREES, True, True, None)
    assert set(k.profiles) == set(S.PROFILES)
    assert k.options_for("userxattr") == "userxattr"
    assert k.sides()[1] is simulator_factory
    ref = resolve_target("reference")
    assert ref.hardlinks is False and ref.compare == ("merged",) and ref.sanitize is not None


def test_simulator_pairs_mount_the_first_profile_against_the_second() -> None:
    t = resolve_target("simulator")
    assert t.name == "simulator:volatile,default"
    assert t.options_for("default") == "volatile"  # the simulator side: the first profile
    assert isinstance(t.factory, Remounted) and t.factory.options == ""  # the second
    assert t.remount is False  # the kernel refuses to remount a volatile mount's dirs
    mc = resolve_target("simulator:metacopy=on,redirect_dir=on")
    assert mc.compare == ("merged",) and mc.options_for("default") == "metacopy=on"
    assert all(p.stacks for p in SIM_PAIRS.values())


@pytest.mark.parametrize("spec, words", [
    ("", "needs a value"),
    ("   ", "needs a value"),
    ("simulator:volatile", "FIRST,SECOND"),
    ("simulator:redirect_dir=on,default", "EXDEV"),
    ("simulator:default,userxattr", "hard-link"),
    ("no-such-program-xyz --flag", "not an executable"),
    ("'unbalanced", "quotation"),
])  # fmt: skip
def test_bad_specs_raise_one_typed_error(spec: str, words: str) -> None:
    with pytest.raises(TargetError, match=words) as info:
        resolve_target(spec)
    assert isinstance(info.value, UsageError) and "\n" not in str(info.value)


def test_options_for_refuses_a_profile_the_target_cannot_run() -> None:
    with pytest.raises(TargetError, match="cannot run profile"):
        resolve_target("simulator").options_for("userxattr")


# --- protocol codec ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(S.layer_stacks(upper=None, hardlinks=True, whiteouts=True, metacopy=True))
def test_layer_stacks_survive_json(stack: L.LayerStack) -> None:
    import json

    assert P.stack_from_json(json.loads(json.dumps(P.stack_to_json(stack)))) == stack


def test_values_survive_json() -> None:
    st_ = os.lstat("/")
    back = P.decode_value(P.encode_value(st_))
    assert isinstance(back, os.stat_result)
    assert [getattr(back, f) for f in P.STAT_FIELDS] == [getattr(st_, f) for f in P.STAT_FIELDS]
    assert P.decode_value(P.encode_value([b"\0\xff", "x", None, 3])) == [b"\0\xff", "x", None, 3]
    assert P.errno_number("ENOENT") == 2 and P.errno_number(13) == 13
    with pytest.raises(TargetError):
        P.errno_number("ENOTANERRNO")
    with pytest.raises(TargetError):
        P.node_from_json({"type": "socket"})


# --- the served simulator ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def served() -> object:
    t = resolve_target(SERVE)
    ok, why = t.available()
    assert ok, why
    return dataclasses.replace(t, compare=ALL_TREES)  # the server exposes upper and work too


def test_served_simulator_equals_the_simulator_in_process(served: object) -> None:
    t = served
    assert t.sides()[0] is simulator_factory  # type: ignore[attr-defined]
    n = {"cases": 0}

    @seed(20261204)
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(sorted(S.PROFILES)).flatmap(
        lambda p: S.cases(p, min_ops=10, max_ops=20, hardlinks=True)))  # fmt: skip
    def run(case: S.Case) -> None:
        report = t.run(case.stack, case.ops, t.options_for(case.profile))  # type: ignore[attr-defined]
        n["cases"] += 1
        assert report.ok, f"{case.profile}\n{report}"

    run()
    assert n["cases"] == 60


def test_refused_mounts_and_remounts_travel_as_errno(served: object) -> None:
    t = served
    stack = L.LayerStack((L.Dir(),), L.Dir())
    report = t.run(stack, [O.Mkdir("x")], "redirect_dir=bogus")  # type: ignore[attr-defined]
    assert report.ok and report.results == []  # both sides refused alike (EINVAL)
    mount = t.factory(stack, "")  # type: ignore[attr-defined]
    try:
        with pytest.raises(OSError) as info:
            mount.os.lstat(mount.os.path.join(mount.mount_path, "missing"))
        assert info.value.errno == 2
        fd = mount.os.open(mount.mount_path + "/f", os.O_CREAT | os.O_WRONLY, 0o600)
        assert mount.os.write(fd, b"abc") == 3
        mount.os.close(fd)  # an os-level close, not the end of the case
        assert mount.os.listdir(mount.mount_path) == ["f"]
        mount.umount()
        mount.remount()
        assert mount.os.stat(mount.mount_path + "/f").st_size == 3
    finally:
        mount.close()


# --- broken servers ---------------------------------------------------------------------------
def _server(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


GREET = 'import json,sys; print(json.dumps({"overlaysim-fuzz-protocol": 1}), flush=True); '
BROKEN = {
    "silent": (_server("import time; time.sleep(30)"), "no reply to the greeting within"),
    "not json": (_server("print('hello there', flush=True)"), "not JSON"),
    "old version": (_server('print(\'{"overlaysim-fuzz-protocol": 0}\', flush=True)'),
                    "does not speak overlaysim-fuzz-protocol 1"),
    "exits": (_server(GREET + "sys.stdin.readline()"), "exited before replying to 'setup'"),
    "hangs on setup": (_server(GREET + "import time; sys.stdin.readline(); time.sleep(30)"),
                       "no reply to 'setup' within"),
    "refuses": (_server(GREET + 'sys.stdin.readline(); print(json.dumps({"error": "no way"}), '
                        "flush=True); sys.stdin.readline()"), "refused 'setup': no way"),
    "crashes": (_server(GREET + "sys.stdin.readline(); sys.exit('boom: out of cheese')"),
                "out of cheese"),
    "no mount path": (_server(GREET + 'sys.stdin.readline(); print(json.dumps({"ok": 1}), '
                              "flush=True); sys.stdin.readline()"), "without a mount path"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_servers_stop_with_one_line_and_no_hang(name: str) -> None:
    cmd, words = BROKEN[name]
    target = remote.command_target(cmd, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(TargetError) as info:
        target.run(L.LayerStack((L.Dir(),), L.Dir()), [O.Stat(".")], "")
    assert time.monotonic() - t0 < 8
    msg = str(info.value)
    assert words in msg and "\n" not in msg and msg.startswith("fuzz target"), msg
    factory = target.factory
    assert isinstance(factory, remote.CommandFactory)
    assert factory._server is None or factory._server.proc.poll() is not None  # killed
    ok, why = target.available()  # a fresh probe says why too, in one line
    if not ok:
        assert "\n" not in why


def test_command_factory_pickles_without_its_process() -> None:
    import pickle

    target = remote.command_target(SERVE)
    assert target.available()[0]
    clone = pickle.loads(pickle.dumps(target.factory))
    assert clone.argv == target.factory.argv and clone._server is None


@pytest.mark.parametrize("spec", ["kernel", "reference", "simulator", "fuse-overlayfs", SERVE])
def test_targets_pickle_for_cluster_workers(spec: str) -> None:
    import pickle

    t = resolve_target(spec)
    clone = pickle.loads(pickle.dumps(t))
    assert (clone.name, clone.compare, clone.ignore, clone.profiles) == (
        t.name, t.compare, t.ignore, t.profiles)  # fmt: skip


def test_the_readme_documents_every_protocol_call() -> None:
    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Judging your own union filesystem"):]
    assert f'"overlaysim-fuzz-protocol": {P.VERSION}' in section
    for name in sorted(P.CALLS | P.CONTROL):
        assert name in section, name
