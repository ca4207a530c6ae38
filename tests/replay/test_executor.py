"""The executor on hand-written op streams: per-pid state as the kernel keeps it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from overlaysim.errors import TraceError
from overlaysim.replay import ReplayConfig, read_jsonl, replay, validate
from overlaysim.replay.api import run
from overlaysim.replay.procs import Scope

W, RW, CREAT, TRUNC, CLOEXEC = os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_CLOEXEC


@pytest.fixture
def lower(tmp_path: Path) -> Path:
    low = tmp_path / "lower"
    (low / "d").mkdir(parents=True)
    (low / "d" / "f").write_bytes(b"0123456789")
    (low / "g").write_bytes(b"gg")
    (low / "e1").mkdir()
    return low


def go(lower: Path, ops: list[dict[str, Any]], mount_point: str = "/") -> tuple[Any, Any]:
    cfg = ReplayConfig(lowerdirs=[str(lower)], mount_point=mount_point)
    session = cfg.session()
    for n, op in enumerate(ops, 1):
        op.setdefault("line", n)
        op.setdefault("pid", 1)
        validate(op)
    rep, builder = run(ops, session, cfg.scope())
    return session, (rep, builder.build())


def read(session: Any, path: str) -> bytes:
    with session.fs.open(session.merged + path, "rb") as f:
        data: bytes = f.read()
    return data


def test_recorded_fd_numbers_are_kept(lower: Path) -> None:
    s, (rep, report) = go(lower, [
        {"op": "open", "path": "/new", "flags": W | CREAT, "mode": 0o644, "ret": 7},
        {"op": "write", "fd": 7, "size": 3, "data": b"abc".hex(), "ret": 3},
        {"op": "dup", "fd": 7, "newfd": 9, "ret": 9},
        {"op": "close", "fd": 7, "ret": 0},
        {"op": "write", "fd": 9, "size": 2, "data": b"de".hex(), "ret": 2},
    ])  # fmt: skip
    assert read(s, "/new") == b"abcde"
    assert report["mismatch_count"] == 0
    assert rep.replayed == 5


def test_outside_paths_and_their_fds_are_ignored(lower: Path) -> None:
    _s, (rep, report) = go(lower, [
        {"op": "open", "path": "/proc/self/status", "flags": 0, "ret": 3},
        {"op": "read", "fd": 3, "size": 100, "ret": 100},
        {"op": "open", "path": "/dev/null", "flags": W, "ret": 4},
        {"op": "write", "fd": 4, "size": 1, "data": "00", "ret": 1},
        {"op": "open", "path": "/g", "flags": 0, "ret": 5},
        {"op": "read", "fd": 5, "size": 10, "ret": 2},
    ])  # fmt: skip
    assert rep.ignored["outside the mount"] == 4
    assert report["mismatch_count"] == 0 and rep.replayed == 2


def test_mount_point_elsewhere_and_dotdot_escapes(lower: Path) -> None:
    s, (rep, report) = go(lower, [
        {"op": "mkdir", "path": "/srv/ovl/x", "mode": 0o755, "ret": 0},
        {"op": "mkdir", "path": "/srv/ovl/../other", "mode": 0o755, "ret": 0},
        {"op": "chdir", "path": "/srv/ovl/d", "ret": 0},
        {"op": "open", "path": "f", "flags": W | os.O_APPEND, "ret": 3},
        {"op": "write", "fd": 3, "size": 1, "data": "41", "ret": 1},
        {"op": "unlink", "path": "../../etc/passwd", "ret": 0},
    ], mount_point="/srv/ovl")  # fmt: skip
    assert rep.ignored["outside the mount"] == 2
    assert read(s, "/d/f") == b"0123456789A"
    assert s.fs.os.listdir(s.upper) == ["x", "d"] or sorted(s.fs.os.listdir(s.upper)) == ["d", "x"]
    assert [c["path"].rsplit("/", 1)[1] for c in report["copy_ups"]] == ["d", "f"]
    assert report["copy_ups"][1]["line"] == 4 and report["copy_ups"][1]["bytes"] == 10


def test_dirfd_relative_calls(lower: Path) -> None:
    s, (_rep, report) = go(lower, [
        {"op": "open", "path": "/d", "flags": os.O_RDONLY | os.O_DIRECTORY, "ret": 5},
        {"op": "open", "dirfd": 5, "path": "h", "flags": W | CREAT, "mode": 0o600, "ret": 6},
        {"op": "rename", "olddirfd": 5, "oldpath": "h", "newdirfd": 5, "newpath": "h2", "ret": 0},
        {"op": "unlink", "dirfd": 5, "path": "f", "ret": 0},
    ])  # fmt: skip
    assert sorted(s.fs.os.listdir(s.merged + "/d")) == ["h2"]
    assert [w["path"].rsplit("/", 1)[1] for w in report["whiteouts"]] == ["f"]
    assert report["whiteouts"][0]["line"] == 4


def test_exec_closes_cloexec_fds_and_names_the_program(lower: Path) -> None:
    s, (rep, report) = go(lower, [
        {"op": "open", "path": "/a", "flags": W | CREAT | CLOEXEC, "mode": 0o644, "ret": 3},
        {"op": "open", "path": "/b", "flags": W | CREAT, "mode": 0o644, "ret": 4},
        {"op": "exec", "path": "/usr/bin/sed", "argv": ["sed", "-i"], "ret": 0},
        {"op": "write", "fd": 3, "size": 1, "data": "41", "ret": -1, "err": "EBADF"},
        {"op": "write", "fd": 4, "size": 1, "data": "42", "ret": 1},
        {"op": "chmod", "path": "/g", "mode": 0o600, "ret": 0},
    ])  # fmt: skip
    assert read(s, "/b") == b"B" and read(s, "/a") == b""
    assert report["copy_ups"][-1]["program"] == "sed"
    assert rep.ignored["fd inherited or never opened in the trace"] == 1


def test_fork_copies_fds_clone_files_shares_them(lower: Path) -> None:
    s, (_rep, report) = go(lower, [
        {"op": "open", "path": "/a", "flags": W | CREAT, "mode": 0o644, "ret": 3},
        {"op": "fork", "child": 2, "ret": 2},
        {"op": "close", "pid": 2, "fd": 3, "ret": 0},
        {"op": "write", "fd": 3, "size": 1, "data": "31", "ret": 1},
        {"op": "fork", "child": 3, "share_files": True, "ret": 3},
        {"op": "close", "pid": 3, "fd": 3, "ret": 0},
        {"op": "write", "fd": 3, "size": 1, "data": "32", "ret": -1, "err": "EBADF"},
    ])  # fmt: skip
    assert read(s, "/a") == b"1"
    assert report["mismatch_count"] == 0


def test_child_calls_logged_before_the_fork_returns(lower: Path) -> None:
    s, (_rep, report) = go(lower, [
        {"op": "chdir", "path": "/d", "ret": 0},
        {"op": "open", "pid": 9, "path": "child-file", "flags": W | CREAT, "mode": 0o644,
         "ret": 3},
        {"op": "fork", "child": 9, "ret": 9},
    ])  # fmt: skip
    assert s.fs.os.path.exists(s.merged + "/d/child-file")  # the child inherited cwd /d
    assert report["processes_without_parent"] == []


def test_recorded_and_simulated_results_are_compared(lower: Path) -> None:
    _s, (_rep, report) = go(lower, [
        {"op": "open", "path": "/g", "flags": 0, "ret": -1, "err": "ENOENT", "call": "openat"},
        {"op": "mkdir", "path": "/e1", "mode": 0o755, "ret": 0},
        {"op": "stat", "path": "/nope", "ret": -1, "err": "ENOENT"},
        {"op": "open", "path": "/g", "flags": 0, "ret": 3},
        {"op": "read", "fd": 3, "size": 100, "ret": 50},
    ])  # fmt: skip
    got = [(m["line"], m["recorded"], m["simulated"]) for m in report["mismatches"]]
    assert got == [(1, "-1 ENOENT", "0"), (2, "0", "-1 EEXIST"), (5, "50", "2")]
    assert report["mismatches"][0]["call"] == "openat"


def test_unknown_content_is_zero_filled_sized_and_reported(lower: Path) -> None:
    s, (_rep, report) = go(lower, [
        {"op": "open", "path": "/part", "flags": W | CREAT, "mode": 0o644, "ret": 3},
        {"op": "write", "fd": 3, "size": 6, "data": b"abc".hex(), "complete": False, "ret": 6},
        {"op": "open", "path": "/whole", "flags": W | CREAT, "mode": 0o644, "ret": 4},
        {"op": "write", "fd": 4, "size": 3, "data": b"xyz".hex(), "ret": 3},
        {"op": "open", "path": "/proc/cpuinfo", "flags": 0, "ret": 5},
        {"op": "open", "path": "/copy", "flags": W | CREAT, "mode": 0o644, "ret": 6},
        {"op": "copy", "fd_in": 5, "fd_out": 6, "size": 4, "ret": 4},
        {"op": "rename", "oldpath": "/part", "newpath": "/renamed", "ret": 0},
    ])  # fmt: skip
    assert read(s, "/renamed") == b"abc\0\0\0"
    assert read(s, "/copy") == b"\0\0\0\0"
    assert report["content_unknown"] == ["copy", "renamed"]


def test_getdents_counts_are_compared_over_the_listing(lower: Path) -> None:
    _s, (_rep, report) = go(lower, [
        {"op": "open", "path": "/", "flags": os.O_RDONLY | os.O_DIRECTORY, "ret": 3},
        {"op": "getdents", "fd": 3, "entries": 4, "ret": 96},
        {"op": "getdents", "fd": 3, "entries": 1, "ret": 24},
        {"op": "getdents", "fd": 3, "entries": 0, "ret": 0},
        {"op": "lseek", "fd": 3, "offset": 0, "whence": 0, "ret": 0},
        {"op": "getdents", "fd": 3, "entries": 9, "ret": 200},
    ])  # fmt: skip
    assert [(m["line"], m["simulated"]) for m in report["mismatches"]] == [(6, "5 entries left")]


def test_jsonl_round_trip_and_errors(lower: Path, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    ops = [{"op": "mkdir", "pid": 1, "path": "/made", "mode": 0o700, "ret": 0, "line": 1}]
    trace.write_text(json.dumps({"format": "overlaysim-trace", "version": 1}) + "\n"
                     + "\n".join(json.dumps(o) for o in ops) + "\n")  # fmt: skip
    result = replay(str(trace), ReplayConfig(lowerdirs=[str(lower)]))
    assert result.report["trace_kind"] == "jsonl"
    assert result.session.fs.os.stat(result.session.upper + "/made").st_mode & 0o777 == 0o700
    bad = [
        ('{"op": "mkdir", "pid": 1}', "missing 'path'"),
        ('{"op": "frob", "pid": 1}', "unknown op"),
        ('{"op": "write", "pid": 1, "fd": 3, "size": 1, "data": "zz"}', "must be hex"),
        ('{"op": "close", "pid": "1", "fd": 3}', "'pid' must be an integer"),
        ('{"op": "close", "pid": 1, "fd": 3, "extra": 1}', "unexpected key"),
        ("[1, 2", "not JSON"),
        ('{"format": "overlaysim-trace", "version": 7}', "version 7"),
    ]
    for text, message in bad:
        with pytest.raises(TraceError, match=message):
            list(read_jsonl(['{"format": "overlaysim-trace", "version": 1}', text]
                            if "format" not in text else [text]))  # fmt: skip


def test_scope_rules() -> None:
    s = Scope("/", ("/proc", "/sys", "/dev"))
    assert s.contains("/etc/passwd") and not s.contains("/proc/1") and not s.contains("/dev")
    m = Scope("/srv/ovl", ())
    assert m.contains("/srv/ovl") and m.contains("/srv/ovl/a")
    assert not m.contains("/srv/ovl2") and m.relative("/srv/ovl/a/b") == "a/b"


def test_schema_file_is_the_formats_schema() -> None:
    import importlib.resources

    from overlaysim.replay.format import OPS, json_schema

    text = importlib.resources.files("overlaysim.replay").joinpath("schema.json").read_text()
    schema = json.loads(text)
    assert schema == json.loads(json.dumps(json_schema()))
    assert {v["properties"]["op"]["const"] for v in schema["oneOf"]} == set(OPS)


def test_report_rows_are_capped_but_counts_and_bytes_exact(lower: Path) -> None:
    from overlaysim.replay.report import ReportBuilder

    ops: list[dict[str, Any]] = []
    for i in range(5):
        ops += [{"op": "open", "path": "/g", "flags": W | os.O_APPEND, "ret": 3},
                {"op": "close", "fd": 3, "ret": 0},
                {"op": "rename", "oldpath": "/g", "newpath": f"/g{i}", "ret": 0},
                {"op": "rename", "oldpath": f"/g{i}", "newpath": "/g", "ret": 0}]  # fmt: skip
    cfg = ReplayConfig(lowerdirs=[str(lower)])
    session = cfg.session()
    for n, op in enumerate(ops, 1):
        op.update(line=n, pid=1)
    builder = ReportBuilder(session.merged, "/", max_rows=3)
    from overlaysim.replay.executor import Replayer

    replayer = Replayer(session, cfg.scope(), builder)
    for op in ops:
        replayer.apply(op)
    replayer.finish()
    rep = builder.build()
    assert rep["rows_kept_per_kind"] == 3
    assert rep["counts"]["copy_ups"] == 1 and len(rep["copy_ups"]) == 1
    assert rep["copy_up_bytes"] == 2
    assert rep["counts"]["whiteouts"] == 5 and len(rep["whiteouts"]) == 3
