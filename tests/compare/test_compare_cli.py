"""``overlaysim compare`` on the embedded demo layers, a JSONL trace, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.world_opt import ENVVAR
from overlaysim.demo_layers import BASE_FILES
from overlaysim.replay import write_jsonl


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["compare", *args])
    return r.exit_code, r.stdout, r.stderr


def test_rename_of_a_merged_dir_exdev_against_redirect() -> None:
    code, out, _ = _run("--json", "-o", "redirect_dir=off", "-o", "redirect_dir=on", "--", "mv /etc /etc2")
    assert code == 0
    c = json.loads(out)
    step = c["commands"][0]
    assert not step["same"]
    assert "EXDEV /etc" in step["A"]["decisions"] and step["A"]["status"] == 0
    assert "redirect /etc2 -> 'etc'" in step["B"]["decisions"]
    # without redirect_dir, mv copies every file of /etc into the upper dir: one entry each
    etc = {p.split("/")[1] for p in BASE_FILES if p.startswith("etc/")}
    assert c["sides"]["A"]["upper_entries"] > len(etc) and c["sides"]["B"]["upper_entries"] == 2
    assert c["sides"]["A"]["exdev"] == 1 and c["sides"]["B"]["redirects"] == 1
    rows = {(r["path"], r["what"]): (r["A"], r["B"]) for r in c["upper_differences"]}
    assert rows[("etc2", "trusted.overlay.redirect")] == ("absent", "'etc'")
    # the files mv copied on side A are one row, not one per file
    folded = rows[("etc2/*", "only in A")]
    assert folded[1] == "absent" and folded[0].startswith(f"{len(etc)} entries: ")


def test_default_output_fits_80_columns() -> None:
    """What ``make demo`` shows: the side-by-side table, the upper dirs, the totals."""
    r = CliRunner(env={"COLUMNS": "80"}).invoke(
        main, ["compare", "-o", "redirect_dir=off", "-o", "redirect_dir=on", "--", "mv /etc /etc2"])
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) < 60
    assert "EXDEV /etc" in r.stdout and "redirect /etc2 -> 'etc'" in r.stdout
    assert "trusted.overlay.redirect" in r.stdout and "upper dirs differ" in r.stdout


def test_metacopy_copies_no_data_and_the_table_says_so() -> None:
    code, out, _ = _run("-o", "", "-o", "metacopy=on", "--", "chmod 600 /etc/passwd")
    assert code == 0
    size = len(BASE_FILES["etc/passwd"])
    assert f"copy-up /etc/passwd: {size} bytes" in out
    assert "metadata only" in out and "trusted.overlay.metacopy" in out
    code, out, _ = _run("--json", "-o", "", "-o", "metacopy=on", "--", "chmod 600 /etc/passwd")
    sides = json.loads(out)["sides"]
    assert sides["A"]["copied_bytes"] - sides["B"]["copied_bytes"] == size


def test_same_behaviour_is_said_once() -> None:
    code, out, _ = _run("-o", "", "-o", "redirect_dir=on", "--", "echo hi > /new; cat /new")
    assert code == 0
    assert "all 2 commands: same status, output and decisions" in out
    assert "upper dirs: the same" in out


def test_a_refused_option_set_is_a_result_with_the_kernels_reason() -> None:
    code, out, _ = _run("--json", "-o", "", "-o", "metacopy=on,redirect_dir=off", "--", "true")
    c = json.loads(out)
    assert code == 0 and c["differs"]
    assert c["sides"]["A"]["refused"] is None
    assert "conflicting options" in c["sides"]["B"]["refused"]


def test_script_from_a_file_and_a_trace(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("rm /etc/motd\nmkdir /etc/new\n")
    code, out, _ = _run("--json", "-o", "", "-o", "redirect_dir=on", "-f", str(script))
    c = json.loads(out)
    assert code == 0 and [s["command"] for s in c["commands"]] == ["rm /etc/motd", "mkdir /etc/new"]
    assert "whiteout /etc/motd" in c["commands"][0]["A"]["decisions"]
    trace = tmp_path / "t.jsonl"
    with open(trace, "w") as f:
        write_jsonl([{"op": "rename", "pid": 1, "oldpath": "/usr", "newpath": "/usr2", "ret": 0}], f)
    code, out, _ = _run("--json", "-o", "", "-o", "redirect_dir=on", "--trace", str(trace))
    c = json.loads(out)
    assert code == 0
    assert "EXDEV /usr" in c["commands"][0]["A"]["decisions"]
    assert "redirect /usr2 -> 'usr'" in c["commands"][0]["B"]["decisions"]


def test_an_image_of_the_saved_world(tmp_path: Path) -> None:
    world, archive = str(tmp_path / "w.world"), str(tmp_path / "demo.tar")
    r = CliRunner(env={ENVVAR: world})
    assert r.invoke(main, ["image", "demo", "-o", archive]).exit_code == 0
    assert r.invoke(main, ["docker", "load", "-i", archive]).exit_code == 0
    before = os.stat(world).st_mtime_ns
    res = r.invoke(main, ["compare", "--json", "--image", "demo", "-o", "", "-o", "xino=on", "--",
                          "mkdir /new"])  # fmt: skip
    assert res.exit_code == 0, res.output
    c = json.loads(res.stdout)
    assert "image demo of the world" in c["lowers"]
    assert c["upper_differences"] == [
        {"path": "new", "what": "trusted.overlay.opaque", "A": "absent", "B": "'y'"}]
    # the same image from its archive gives the same comparison, and the world is untouched
    res2 = r.invoke(main, ["compare", "--json", "--image", archive, "-o", "", "-o", "xino=on", "--",
                           "mkdir /new"])  # fmt: skip
    assert json.loads(res2.stdout)["upper_differences"] == c["upper_differences"]
    assert os.stat(world).st_mtime_ns == before


def test_index_entry_of_a_lower_hard_link(tmp_path: Path) -> None:
    (tmp_path / "l1").mkdir()
    (tmp_path / "l1" / "a").write_text("hello\n")
    os.link(tmp_path / "l1" / "a", tmp_path / "l1" / "b")
    code, out, _ = _run("--json", "--lowerdir", str(tmp_path / "l1"), "-o", "", "-o", "index=on",
                        "--", "chmod 600 /a")  # fmt: skip
    c = json.loads(out)
    assert code == 0 and (c["sides"]["A"]["index_entries"], c["sides"]["B"]["index_entries"]) == (0, 1)
    rows = {r["path"]: (r["what"], r["A"], r["B"]) for r in c["work_differences"]}
    # the index dir is only in B, and its one entry (named after the upper path linked to
    # it) is shown rather than folded into "1 entry below"
    assert rows["index/=a"] == ("only in B", "absent", "file, 6 bytes")


@pytest.mark.parametrize("args, message", [
    (["-o", "a", "--", "true"], "give --options twice"),
    (["-o", "", "-o", "", "--lowerdir", "/a", "--image", "/b", "--", "true"], "choose one"),
    (["-o", "", "-o", ""], "give the operations once"),
    (["-o", "", "-o", "", "--lowerdir", "/nonexistent-lower", "--", "true"], "not a directory"),
    (["-o", "", "-o", "", "--trace", "/nonexistent.jsonl"], "no such trace file"),
    (["-o", "", "-o", "", "--image", "nosuch", "--", "true"], "--image nosuch: not a file"),
    (["-o", "", "-o", "", "--image", "nosuch", "--ref", "x", "--", "true"], "--ref picks"),
    (["-o", "", "-o", "lowerdir=/x", "--", "true"], "lowerdir is given by"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str, tmp_path: Path) -> None:
    world = tmp_path / "w.world"
    r = CliRunner(env={ENVVAR: str(world)}).invoke(main, ["compare", *args])
    assert r.exit_code == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr
    assert not world.exists()  # nothing left behind
