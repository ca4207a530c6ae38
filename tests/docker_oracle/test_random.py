"""Hypothesis drives both machines: random exec scripts over the runnable fixture images, each
in a fresh container, compared by the scripts' output, ``docker diff``, the overlay2 tree and
the ``export`` tar. ``OVERLAYSIM_DOCKERD_EXAMPLES`` raises the count for long runs."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from overlaysim.testing.dockerd.compare import Pair
from overlaysim.testing.dockerd.scripts import RUNNABLE, scripts
from tests.docker_oracle.conftest import fixture_path

pytestmark = pytest.mark.dockerd

EXAMPLES = int(os.environ.get("OVERLAYSIM_DOCKERD_EXAMPLES", "200"))


@pytest.fixture
def loaded(pair: Pair) -> Pair:
    for archive, _ in RUNNABLE:
        pair.run("load", "-i", fixture_path(archive))
    pair.assert_same()
    return pair


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
@given(data=st.data())
def test_random_exec_scripts_match_dockerd(loaded: Pair, data: st.DataObject) -> None:
    pair = Pair(loaded.real, loaded.sim)  # each example keeps its own differences
    tag = data.draw(st.sampled_from([t for _, t in RUNNABLE]), label="image")
    script = data.draw(scripts(), label="script")
    pair.run("run", "-d", "--name", "fuzzed", "--network", "none", tag, "sleep", "100000", how="ignore")
    try:
        pair.run("exec", "fuzzed", "sh", "-c", script)
        pair.run("diff", "fuzzed", how="lines")
        pair.check_tree(only="RW[")  # image layers: checked by the other tests
        pair.run("export", "fuzzed", how="tar")
    finally:
        pair.run("rm", "-f", "fuzzed", how="ignore")
    pair.assert_same()
