"""Hostile traces: clear errors or counted skips, never a traceback, nothing written outside
the directory the user named."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from overlaysim.cli import main

HEADER = json.dumps({"format": "overlaysim-trace", "version": 1})


@pytest.fixture
def lower(tmp_path: Path) -> str:
    low = tmp_path / "lower"
    (low / "etc").mkdir(parents=True)
    (low / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return str(low)


def invoke(*args: str) -> Any:
    r = CliRunner().invoke(main, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def report(*args: str) -> dict[str, Any]:
    r = invoke(*args, "--json")
    assert r.exit_code in (0, 1), r.output
    rep: dict[str, Any] = json.loads(r.stdout)
    return rep


def test_binary_garbage_is_skipped_and_counted(tmp_path: Path, lower: str) -> None:
    rng = random.Random(9)
    junk = tmp_path / "junk.log"
    junk.write_bytes(bytes(rng.randrange(256) for _ in range(200_000)))
    rep = report("replay", str(junk), "--lowerdir", lower)
    assert rep["calls"]["replayed"] == 0
    assert sum(rep["parse_skipped"].values()) > 100
    assert rep["upper"]["entries"] == 0


def test_a_ten_megabyte_line_is_skipped(tmp_path: Path, lower: str) -> None:
    log = tmp_path / "long.log"
    with open(log, "w") as f:
        f.write('1 mkdir("/a", 0755) = 0\n')
        f.write('1 write(1, "' + "x" * 10_000_000 + '", 10000000) = 10000000\n')
        f.write('1 mkdir("/b", 0755) = 0\n')
    rep = report("replay", str(log), "--lowerdir", lower)
    assert rep["calls"]["replayed"] == 2
    assert rep["upper"]["dirs"] == 2


def test_huge_sizes_stop_with_one_line(tmp_path: Path, lower: str) -> None:
    for op in (
        {"op": "truncate", "path": "/etc/passwd", "length": 1 << 40},
        {"op": "write", "fd": 3, "size": 1 << 40, "offset": 0},
        {"op": "write", "fd": 3, "size": 1, "offset": 1 << 62},
        {"op": "fallocate", "fd": 3, "offset": 0, "length": 1 << 41},
    ):
        trace = tmp_path / "big.jsonl"
        opened = {"op": "open", "pid": 1, "path": "/f", "flags": os.O_RDWR | os.O_CREAT,
                  "mode": 0o644, "ret": 3}  # fmt: skip
        trace.write_text("\n".join([HEADER, json.dumps(opened),
                                    json.dumps({"pid": 1, "line": 9, **op})]) + "\n")  # fmt: skip
        r = invoke("replay", str(trace), "--lowerdir", lower)
        assert r.exit_code == 1
        assert r.stderr.count("\n") == 1 and "--max-file-size" in r.stderr, r.stderr


def test_deep_json_is_a_clear_error(tmp_path: Path, lower: str) -> None:
    trace = tmp_path / "deep.jsonl"
    trace.write_text(HEADER + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    r = invoke("replay", str(trace), "--lowerdir", lower)
    assert r.exit_code == 1 and r.stderr.startswith("overlaysim: error:")


def test_escapes_and_unknown_fds_are_counted_and_write_nothing_outside(
    tmp_path: Path, lower: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    log = tmp_path / "escape.log"
    log.write_text(
        f'1 symlink("{outside}", "/esc") = 0\n'
        '1 openat(AT_FDCWD, "/esc/pwned", O_WRONLY|O_CREAT, 0644) = 3\n'
        '1 write(3, "owned", 5) = 5\n'
        '1 openat(AT_FDCWD, "/../../../../etc/passwd", O_WRONLY|O_APPEND) = 4\n'
        '1 write(4, "x", 1) = 1\n'
        '1 write(77, "never opened", 12) = 12\n'
        '1 unlinkat(AT_FDCWD, "/proc/../etc/passwd", 0) = 0\n'
    )
    up = tmp_path / "up"
    rep = report("replay", str(log), "--lowerdir", lower, "--write-upper", str(up))
    assert rep["calls"]["ignored"]["fd inherited or never opened in the trace"] == 1
    assert os.listdir(outside) == []
    # inside the simulated container, "/esc" points at a directory of the container itself
    assert rep["mismatch_count"] == 1  # openat of /esc/pwned: ENOENT in the container
    assert os.path.islink(up / "esc")
    assert os.readlink(up / "esc") == str(outside)
    # /proc/../etc/passwd is the container's /etc/passwd: it was unlinked (a whiteout)
    st = os.lstat(up / "etc" / "passwd")
    assert (st.st_mode & 0o170000, st.st_rdev) == (0o020000, 0)
