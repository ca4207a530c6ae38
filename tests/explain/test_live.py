"""``sh --explain``: after each command, the engine's decisions for it, in plain words."""

from __future__ import annotations

import json

from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.world_opt import ENVVAR

SETUP = ("mkdir -p /l/d /u /w /m && echo hello > /l/d/f && echo x > /l/g && "
         "mount -t overlay o -o lowerdir=/l,upperdir=/u,workdir=/w /m")


def test_sh_explain_reports_per_command(tmp_path: object) -> None:
    r = CliRunner(env={ENVVAR: f"{tmp_path}/w.world"})
    res = r.invoke(main, ["sh", "--explain", "-c", SETUP + "; echo more >> /m/d/f; rm /m/g; "
                          "mv /m/d /m/e"])  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    heads = [i for i, x in enumerate(lines) if not x.startswith("explain:   ")]
    assert [lines[i] for i in heads][1:] == [
        "explain: echo more >>/m/d/f", "explain: rm /m/g", "explain: mv /m/d /m/e"]
    write = lines[heads[1] + 1 : heads[2]]
    assert any("copy-up of file /m/d/f" in x and "6 bytes" in x for x in write)
    assert "whiteout (char 0/0) created at /m/g" in lines[heads[2] + 1]
    assert "EXDEV" in lines[heads[3] + 1] and "ovl_rename" in lines[heads[3] + 1]


def test_sh_explain_json(tmp_path: object) -> None:
    r = CliRunner(env={ENVVAR: f"{tmp_path}/w.world"})
    res = r.invoke(main, ["sh", "--explain", "--json", "-c", SETUP + "; rm /m/g"])
    rows = [json.loads(x) for x in res.stderr.splitlines()]
    assert rows[-1]["command"] == "rm /m/g" and rows[-1]["status"] == 0
    [e] = rows[-1]["events"]
    assert e["kind"] == "whiteout" and e["kernel"].startswith("ovl_remove_and_whiteout")
