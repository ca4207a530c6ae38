"""Go's text shapes: go-units durations and sizes (cases from go-units' own tests), tabwriter."""

from __future__ import annotations

import pytest

from overlaysim.docker.render import ellipsis
from overlaysim.runtime.gofmt import human_duration, human_size, rfc3339nano, tabwrite

M, H, D = 60, 3600, 86400


@pytest.mark.parametrize(
    ("secs", "text"),
    [(0.45, "Less than a second"), (1, "1 second"), (47, "47 seconds"), (60, "About a minute"),
     (3 * M, "3 minutes"), (35 * M + 40, "35 minutes"), (H, "About an hour"),
     (H + 29 * M, "About an hour"), (H + 31 * M, "2 hours"), (3 * H + 31 * M, "4 hours"),
     (24 * H, "24 hours"), (36 * H, "36 hours"), (2 * D, "2 days"), (13 * D + 5 * H, "13 days"),
     (14 * D, "2 weeks"), (30 * D, "4 weeks"), (44 * D, "6 weeks"), (60 * D, "2 months"),
     (13 * 30 * D, "13 months"), (24 * 30 * D + 14 * D, "2 years"),
     (3 * 365 * D + 60 * D, "3 years")],
)  # fmt: skip
def test_human_duration(secs: float, text: str) -> None:
    assert human_duration(secs) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (4261550, "4.26MB"), (1220598, "1.22MB"),
     (7.8e9, "7.8GB")],
)  # fmt: skip
def test_human_size(n: float, text: str) -> None:
    assert human_size(n) == text


def test_tabwriter_pads_all_but_the_last_column() -> None:
    text = tabwrite([["A", "LONGER HEADER", "Z"], ["value", "", "last"]], 10, 3)
    assert text == "A         LONGER HEADER   Z\nvalue                     last\n"


def test_rfc3339nano_trims_zeros_and_ellipsis() -> None:
    assert rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339nano(1_700_000_000 * 10**9) == "2023-11-14T22:13:20Z"
    assert ellipsis("sh -c 'while true; do sleep 1; done'", 20) == "sh -c 'while true; …"


def test_ps_command_quotes_arguments_with_spaces() -> None:
    from overlaysim.docker.containers import Container, new_state

    doc = {"ID": "a" * 64, "Name": "/x", "State": new_state(), "Image": "sha256:" + "b" * 64,
           "Path": "sh", "Args": ["-c", "echo hi; sleep 1"], "Created": "2024-01-01T00:00:00Z",
           "Config": {"Image": "demo"}}  # fmt: skip
    from overlaysim.docker.render import container_fields

    f = container_fields(Container(doc, {}), 0)
    assert f["Command"] == '"sh -c \'echo hi; sle…"'
    assert container_fields(Container(doc, {}), 0, no_trunc=True)["Command"] == (
        "\"sh -c 'echo hi; sleep 1'\""
    )
