"""The README's worked replay example prints exactly what the README shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from tests.replay.cases import CASES, build_lowers

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0, reason="the example's lowers hold whiteouts and "
                    "trusted.overlay.* xattrs: root only")  # fmt: skip
def test_readme_replay_example(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- replay-example -->\n```console\n(.*?)```\n<!-- /replay-example -->",
                  text, re.S)  # fmt: skip
    assert m, "the README lost its replay example"
    lines = m.group(1).splitlines()
    assert "build_lowers(CASES['sed'], '/tmp/overlaysim-replay-rec/sed')" in lines[0]
    command = shlex.split(lines[1].removeprefix("$ "))
    assert command[0] == "overlaysim"
    expected = "\n".join(lines[2:]) + "\n"
    base = "/tmp/overlaysim-replay-rec/sed"
    shutil.rmtree(base, ignore_errors=True)
    try:
        build_lowers(CASES["sed"], base)
        monkeypatch.chdir(ROOT)
        r = CliRunner().invoke(main, command[1:])
        assert r.exit_code == 0, r.output
        assert r.stdout == expected
    finally:
        shutil.rmtree(base, ignore_errors=True)
