"""A long-lived holder (a FUSE mount of a container) makes other commands refuse at once,
with one line naming it; a holder that died (killed) holds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overlaysim.errors import WorldError
from overlaysim.world import World, holder, load_world, open_world, save_world

HOLD = """
import sys
from overlaysim.world import holder
holder.hold(sys.argv[1], "container web is mounted at /mnt by a test")
print("held", flush=True)
sys.stdin.readline()
holder.release(sys.argv[1])
"""


def test_other_commands_refuse_at_once_while_a_live_process_holds_the_world(tmp_path: Path) -> None:
    path = str(tmp_path / "h.world")
    save_world(World.new(), path)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, path], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "held"
        start = time.monotonic()
        refused = pytest.raises(WorldError, match="container web is mounted at /mnt by a test")
        with refused, open_world(path) as w:
            w.fs.os.mkdir("/root/lost")
        assert time.monotonic() - start < 5  # refused, not waited for
        assert load_world(path).fs.os.listdir("/root") == []  # reading is still allowed
        same = os.path.join(str(tmp_path), ".", "h.world")  # however the file is named
        assert holder.holder(same) == "container web is mounted at /mnt by a test"
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    assert not os.path.exists(holder.note_path(path))  # released by its holder
    with open_world(path) as w:
        w.fs.os.mkdir("/root/after")


def test_a_killed_holder_holds_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "k.world")
    save_world(World.new(), path)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, path], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait(60)
    with open_world(path) as w:
        w.fs.os.mkdir("/root/after")
    assert not os.path.exists(holder.note_path(path))  # the stale note is gone
    assert load_world(path).fs.os.listdir("/root") == ["after"]


def test_a_holder_does_not_refuse_itself(tmp_path: Path) -> None:
    path = str(tmp_path / "s.world")
    save_world(World.new(), path)
    holder.hold(path, "held by this test")
    try:
        assert holder.holder(path) is None
        with open_world(path) as w:
            w.fs.os.mkdir("/root/mine")
    finally:
        holder.release(path)
    assert not os.path.exists(holder.note_path(path))
