"""explain's History part: the world's event log for one path, and the same command on a
kernel overlay copies up (and whites out) the same paths the log says it did."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from overlaysim.world import load_world, open_world
from tests.explain.test_explain_kernel import _build, _opts
from tests.overlay.oharness import can_mount, kernel_side
from tests.worldcli import cli

CMD = "echo y >> {m}/d/f; rm {m}/d/g"


@pytest.fixture
def world(tmp_path: Path) -> str:
    path = str(tmp_path / "w.world")
    with open_world(path) as w:
        _build(w.fs.os, "/k")
        w.fs.mount("overlay", "/k/m", "overlay", _opts("/k", ""))
    cli(path, "sh", "-c", CMD.format(m="/k/m"))
    return path


def test_history_names_the_command_and_the_bytes(world: str) -> None:
    lower = load_world(world).fs.os.stat("/k/l2/d/f").st_size
    r = json.loads(cli(world, "explain", "--json", "/k/m/d/f").output)
    [h] = r["history"]
    assert h["kind"] == "copy_up" and h["detail"]["bytes"] == lower and h["source"] == "sh"
    assert h["command"] == "echo y >>/k/m/d/f" and h["path"] == "/d/f"
    assert h["text"].startswith(f"copy-up of the file, {lower} bytes from lower2 by ")
    text = cli(world, "explain", "/k/m/d/f").output
    assert "History (the world's event log" in text and h["text"] in text
    gone = json.loads(cli(world, "explain", "--json", "/k/m/d/g").output)
    assert [x["kind"] for x in gone["history"]] == ["whiteout"]
    assert "rm /k/m/d/g" in gone["history"][0]["text"]


def test_a_path_never_touched_has_no_history(world: str) -> None:
    r = json.loads(cli(world, "explain", "--json", "/k/m/d/sub").output)
    assert r["history"] == [] and r["history_dropped"] == 0
    assert "nothing logged for this path" in cli(world, "explain", "/k/m/d/sub").output


@pytest.mark.skipif(can_mount() is not None, reason=can_mount() or "")
def test_the_kernel_changes_the_upper_paths_the_log_names(world: str) -> None:
    log = load_world(world).log.entries
    said = {e.path for e in log if e.kind in ("copy_up", "whiteout")}
    with kernel_side() as k:
        _build(os, k.base)
        k.mount(_opts(k.base, ""))
        subprocess.run(["sh", "-c", CMD.format(m=k.mnt)], check=True)
        upper = f"{k.base}/u"
        kernel = {"/" + os.path.relpath(os.path.join(d, n), upper)
                  for d, dirs, files in os.walk(upper) for n in dirs + files}  # fmt: skip
        sizes = {e.path: e.detail["bytes"] for e in log if e.kind == "copy_up"}
        assert sizes["/d/f"] == os.stat(f"{k.base}/l2/d/f").st_size
        k.umount()
    assert said == kernel
