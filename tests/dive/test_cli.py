"""``overlaysim dive`` as a user runs it: the CI gate, JSON, archives, containers, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.dive.ci import parse_bytes
from tests.docker.conftest import Result, fixture_path

Run = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    world = str(tmp_path / "t.world")

    def run(*args: str, ci_env: str = "") -> Result:
        runner = CliRunner(env={"OVERLAYSIM_WORLD": world, "CI": ci_env})
        r = runner.invoke(main, list(args))
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r.exit_code, r.stdout, r.stderr)

    return run


@pytest.fixture
def loaded(cli: Run) -> Run:
    assert cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar")).code == 0
    return cli


def _rules(out: str) -> dict[str, str]:
    return {r["rule"]: r["status"] for r in json.loads(out)["gate"]["rules"]}


def test_default_rules_are_dives_and_fail_on_user_waste(loaded: Run) -> None:
    r = loaded("dive", "--ci", "dive-test")
    assert r.code == 1
    assert "FAIL: highest-user-wasted-percent" in r.out
    assert "PASS: lowest-efficiency" in r.out and "SKIP: highest-wasted-bytes" in r.out
    assert "Result:FAIL" in r.out


@pytest.mark.parametrize(("eff", "wasted", "pct", "code", "expect"), [
    # dive's evaluator_test.go cases on the same image, judged on dive's figures
    ("0.99", "1B", "0.01", 1, {"lowest-efficiency": "fail", "highest-wasted-bytes": "fail",
                               "highest-user-wasted-percent": "fail"}),
    ("0.9", "50kB", "0.5", 0, {"lowest-efficiency": "pass", "highest-wasted-bytes": "pass",
                               "highest-user-wasted-percent": "pass"}),
    ("disabled", "disabled", "disabled", 0, {"lowest-efficiency": "disabled",
                                             "highest-wasted-bytes": "disabled",
                                             "highest-user-wasted-percent": "disabled"}),
    ("0.9", "1B", "0.5", 1, {"lowest-efficiency": "pass", "highest-wasted-bytes": "fail",
                             "highest-user-wasted-percent": "pass"}),
])  # fmt: skip
def test_dives_evaluator_cases(loaded: Run, eff: str, wasted: str, pct: str, code: int,
                               expect: dict[str, str]) -> None:  # fmt: skip
    r = loaded("dive", "--ci", "--json", "--figures", "dive", "--lowest-efficiency", eff,
               "--highest-wasted-bytes", wasted, "--highest-user-wasted-percent", pct,
               "dive-test")  # fmt: skip
    assert r.code == code
    assert _rules(r.out) == expect


def test_honest_and_dive_gates_disagree_on_efficiency(loaded: Run) -> None:
    args = ("dive", "--ci", "--lowest-efficiency", "0.98", "--highest-user-wasted-percent",
            "off", "dive-test")  # fmt: skip
    assert loaded(*args, "--figures", "dive").code == 0  # dive: 98.44 %
    r = loaded(*args)
    assert r.code == 1 and "efficiency=0.9738 < 0.98" in r.out


def test_json_report_and_ci_env(loaded: Run) -> None:
    r = loaded("dive", "--json", "--highest-wasted-bytes", "20MB", "dive-test")
    assert r.code == 0  # --json alone reports, it does not gate
    doc = json.loads(r.out)
    assert doc["subject"]["kind"] == "image" and len(doc["layers"]) == 14
    assert doc["layers"][13]["command"].endswith("chmod +x /root/saved.txt")
    assert doc["honest"]["wasted_bytes"] == doc["dive"]["wasted_bytes"] == 32025
    assert doc["dive"]["efficiency"] == 0.9844212134184309
    assert doc["gate"]["passed"] is False
    # as dive does, CI=true selects the non-interactive gate
    assert loaded("dive", "dive-test", ci_env="true").code == 1


def test_archive_source_gives_the_world_figures(loaded: Run) -> None:
    world = json.loads(loaded("dive", "--json", "dive-test").out)
    tar = json.loads(loaded("dive", "--json", "--source", "docker-archive",
                            fixture_path("dive/test-docker-image.tar")).out)  # fmt: skip
    assert tar["honest"] == world["honest"] and tar["dive"] == world["dive"]
    assert tar["subject"]["image_id"] == world["subject"]["image_id"]


def test_container_upper_is_the_top_layer(loaded: Run) -> None:
    assert loaded("docker", "run", "-d", "--name", "web", "dive-test", "sleep", "inf").code == 0
    r = loaded("docker", "exec", "web", "sh", "-c", "rm /root/saved.txt; chmod 600 /somefile.txt")
    assert r.code == 0
    doc = json.loads(loaded("dive", "--json", "web").out)
    assert [x["label"] for x in doc["layers"][-2:]] == ["init layer", "container layer"]
    assert doc["layers"][-1]["size"] == 6405  # chmod copied the whole file up
    items = {(i["layer"], i["paths"][0]): i["reason"] for i in doc["honest"]["items"]}
    assert items[(13, "/root/saved.txt")] == "deleted (whiteout)"
    assert items[(1, "/somefile.txt")].startswith("metadata-only change")
    assert doc["honest"]["wasted_bytes"] == 32025 + 2 * 6405


def test_errors_are_one_line(loaded: Run) -> None:
    r = loaded("dive", "--ci", "--highest-wasted-bytes", "lots", "dive-test")
    assert r.code == 1 and "invalid highest-wasted-bytes" in r.err
    r = loaded("dive", "--ci", "--lowest-efficiency", "2", "dive-test")
    assert r.code == 1 and "outside the allowed range" in r.err
    r = loaded("dive", "--ci", "nope")
    assert r.code == 1 and "nope: no such image or container" in r.err
    r = loaded("dive", "dive-test")  # no terminal, no --ci
    assert r.code == 2 and "needs a terminal" in r.err


def test_parse_bytes_units() -> None:
    assert parse_bytes("20MB") == 20_000_000
    assert parse_bytes("20MiB") == 20 * 2**20
    assert parse_bytes("50kB") == 50_000 and parse_bytes("1B") == 1
    assert parse_bytes("1,000") == 1000 and parse_bytes("1.5 k") == 1500
