"""The campaign engine: deterministic shards, --jobs, resuming, Ctrl-C.

Runs against the kernel where mount(2) is permitted, else against the reference model (the
campaign's behaviour, not the oracle, is under test here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from overlaysim.errors import UsageError
from overlaysim.fuzz.campaign import Campaign, Config, exit_code, shard_seed
from overlaysim.fuzz.progress import Reporter, Stats
from overlaysim.fuzz.shard import ShardSpec, run_shard
from overlaysim.fuzz.store import Store
from overlaysim.testing.kernel import can_mount

TARGET = "kernel" if can_mount()[0] else "reference"
SMALL = {"target": TARGET, "shard_size": 4, "min_ops": 4, "max_ops": 8}


class Quiet(Reporter):
    """Records what a campaign reports instead of printing it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []

    def start(self, stats: Stats, text: str) -> None:
        self.events.append(("start", text))

    def tick(self, stats: Stats, force: bool = False) -> None:
        pass

    def divergence(self, stats: Stats, sig: str, info: dict[str, Any], new: bool) -> None:
        self.events.append(("divergence", sig))

    def note(self, stats: Stats, text: str) -> None:
        self.events.append(("note", text))

    def finish(self, stats: Stats) -> None:
        self.events.append(("finish", stats))


def _state(out: str) -> dict[str, Any]:
    with open(os.path.join(out, "state.json")) as f:
        state: dict[str, Any] = json.load(f)
    return state


def _shards(out: str) -> dict[str, Any]:
    return {k: {f: v[f] for f in ("profile", "sequences", "ops", "divergent")}
            for k, v in _state(out)["shards"].items()}  # fmt: skip


def test_a_shard_is_a_function_of_seed_and_index() -> None:
    spec = ShardSpec(3, "default", "", shard_seed(7, 3), 100, TARGET, 4, 8,
                     fault="unlink-forgets-whiteout", shrink=False)  # fmt: skip
    a, b = run_shard(spec), run_shard(spec)
    assert a.complete and b.complete and a.sequences == b.sequences == 100
    assert (a.ops, a.counts) == (b.ops, b.counts)
    assert a.counts and a.found  # the planted fault showed, so records are compared too
    assert [f.record for f in a.found] == [f.record for f in b.found]
    assert shard_seed(7, 3) != shard_seed(7, 4) and shard_seed(7, 3) != shard_seed(8, 3)


def test_jobs_change_the_speed_not_the_cases(tmp_path: Any) -> None:
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    for out, jobs in ((one, 1), (two, 2)):
        stats = Campaign(Config(sequences=12, jobs=jobs, seed=11, **SMALL), Store(out), Quiet()).run()
        assert stats.sequences == 12 and exit_code(stats) == 0
    assert _shards(one) == _shards(two)
    assert len(_shards(one)) == 3


def test_any_executor_runs_the_same_shards(tmp_path: Any) -> None:
    """What --cluster relies on: a concurrent.futures executor (a Dask client's, here threads)."""
    from concurrent.futures import ThreadPoolExecutor

    here, pool = str(tmp_path / "here"), str(tmp_path / "pool")
    Campaign(Config(sequences=8, seed=3, **SMALL), Store(here), Quiet()).run()
    with ThreadPoolExecutor(2) as ex:
        stats = Campaign(Config(sequences=8, seed=3, **SMALL), Store(pool), Quiet(), ex).run()
    assert stats.sequences == 8 and _shards(here) == _shards(pool)


def test_a_dask_cluster_runs_the_same_shards(tmp_path: Any) -> None:
    """--cluster with a real local Dask cluster of two worker processes."""
    distributed = pytest.importorskip("distributed", reason="the optional cluster extra "
                                      "(pip install 'overlaysim[cluster]') is not installed")  # fmt: skip
    here, remote = str(tmp_path / "here"), str(tmp_path / "remote")
    Campaign(Config(sequences=8, seed=3, **SMALL), Store(here), Quiet()).run()
    exe = os.path.join(os.path.dirname(sys.executable), "overlaysim")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        run = subprocess.run([exe, "fuzz", "--cluster", cluster.scheduler_address, "--against",
                              TARGET, "--sequences", "8", "--shard-size", "4", "--ops", "4",
                              "--seed", "3", "--json", "--out", remote],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "on the Dask cluster at tcp://" in json.loads(run.stdout.splitlines()[0])["message"]
    assert _shards(here) == _shards(remote)


def test_a_second_run_resumes_and_never_redoes_a_shard(tmp_path: Any) -> None:
    out = str(tmp_path / "c")
    first = Campaign(Config(sequences=8, seed=5, **SMALL), Store(out), Quiet()).run()
    assert first.shards_done == 2
    done = _state(out)["shards"]
    rep = Quiet()
    second = Campaign(Config(sequences=16, seed=5, **SMALL), Store(out), rep).run()
    assert second.session_sequences == 8 and second.sequences == 16
    assert "resuming 2 finished shards" in rep.events[0][1]
    state = _state(out)
    assert state["sessions"] == 2 and len(state["shards"]) == 4
    assert all(state["shards"][k] == v for k, v in done.items())
    with pytest.raises(UsageError, match="other settings"):
        Campaign(Config(sequences=16, seed=6, **SMALL), Store(out), Quiet()).run()


def test_a_short_last_shard_is_redone_at_full_size(tmp_path: Any) -> None:
    out = str(tmp_path / "s")
    Campaign(Config(sequences=6, seed=9, **SMALL), Store(out), Quiet()).run()
    assert _state(out)["shards"]["1"]["sequences"] == 2
    stats = Campaign(Config(sequences=8, seed=9, **SMALL), Store(out), Quiet()).run()
    assert stats.session_sequences == 4 and stats.sequences == 8
    assert _state(out)["shards"]["1"]["sequences"] == 4


def test_unknown_profiles_and_layer_options_are_usage_errors(tmp_path: Any) -> None:
    store = Store(str(tmp_path / "u"))
    with pytest.raises(UsageError):
        Campaign(Config(profiles=("no-such-profile",), **SMALL), store, Quiet())
    with pytest.raises(UsageError):
        Campaign(Config(options="lowerdir=/etc", **SMALL), store, Quiet())
    with pytest.raises(UsageError):
        Campaign(Config(fault="no-such-fault", **SMALL), store, Quiet())


def test_ctrl_c_stops_cleanly_with_a_summary_and_resumes(tmp_path: Any) -> None:
    out = str(tmp_path / "i")
    exe = os.path.join(os.path.dirname(sys.executable), "overlaysim")
    common = ["--against", TARGET, "--shard-size", "3", "--ops", "3", "--json", "--out", out]
    proc = subprocess.Popen([exe, "fuzz", "--time", "10m", *common], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until a shard has finished
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(json.loads(line))
        if lines[-1]["event"] == "progress" and lines[-1]["shards_done"] >= 1:
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=240)
    lines += [json.loads(x) for x in rest.splitlines()]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["interrupted"] is True
    finished = len(_state(out)["shards"])
    assert finished >= 1 and summary["shards_done"] == finished
    again = subprocess.run([exe, "fuzz", "--sequences", str(3 * (finished + 1)), *common],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    start = json.loads(again.stdout.splitlines()[0])
    assert f"resuming {finished} finished shards" in start["message"]
    assert json.loads(again.stdout.splitlines()[-1])["session_sequences"] == 3


def test_a_worker_that_cannot_mount_runs_its_shards_against_the_reference_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 10: workers without mount permission run simulator-only and say so."""
    from overlaysim.fuzz import targets

    monkeypatch.setattr(targets, "_kernel_probe", lambda: (False, "mount(2): EPERM (not root)"))
    spec = ShardSpec(0, "default", "", shard_seed(7, 0), 3, "kernel", 4, 8, shrink=False)
    res = run_shard(spec)
    assert res.complete and res.sequences == 3 and res.ops > 0
    assert res.judge == "reference"
    assert "cannot mount (mount(2): EPERM (not root))" in res.note
    assert "reference model" in res.note


def test_the_campaign_records_which_judge_ran_a_shard(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from overlaysim.fuzz import targets

    monkeypatch.setattr(targets, "_kernel_probe", lambda: (False, "not root"))
    from concurrent.futures import ThreadPoolExecutor

    # a local run refuses a kernel it cannot mount (usage error); the workers of an executor
    # (a cluster) decide for themselves, as a worker host without root would
    out = str(tmp_path / "c")
    with ThreadPoolExecutor(1) as ex:
        stats = Campaign(Config(sequences=4, seed=3, profiles=("default",),
                                **{**SMALL, "target": "kernel"}), Store(out), Quiet(), ex).run()  # fmt: skip
    assert exit_code(stats) == 0
    shards = _state(out)["shards"]
    assert shards and all(s["judge"] == "reference" for s in shards.values())
    assert any("reference model" in n for n in stats.notes)
