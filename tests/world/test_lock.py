"""One command at a time per world: a writer holds the file from load to commit."""

from __future__ import annotations

import os
import subprocess

import pytest

from overlaysim.errors import WorldError
from overlaysim.world import World, load_world, open_world, save_world, store
from tests.world.test_roundtrip import REPO, _python

HOLDER = """
import sys, time
from overlaysim.world import open_world
with open_world(sys.argv[1]) as w:
    w.fs.os.mkdir("/root/holder")
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_a_second_writer_waits_and_then_fails_busy(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = os.path.join(str(tmp_path), "lock.world")
    save_world(World.new(), path)
    proc = subprocess.Popen([_python(), "-c", HOLDER, path], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "holding"
        monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.2)
        with pytest.raises(WorldError, match="busy"), open_world(path) as w:
            w.fs.os.mkdir("/root/second")
        assert load_world(path).fs.os.listdir("/root") == []  # readers see the last commit
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait(30)
    with open_world(path) as w:  # free again
        w.fs.os.mkdir("/root/second")
    assert sorted(load_world(path).fs.os.listdir("/root")) == ["holder", "second"]
