"""``overlaysim docker …`` through click's CliRunner: output shapes of the real CLI."""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docker.conftest import Result, fixture_path

Cli = Callable[..., Result]


def _header_cols(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_load_images_table(cli: Cli, demo_tar: str) -> None:
    r = cli("docker", "load", "-i", demo_tar)
    assert (r.code, r.out) == (0, "Loaded image: demo:latest\n")
    r = cli("docker", "images")
    lines = r.out.splitlines()
    assert _header_cols(lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    # tabwriter: every column but the last is padded to its widest cell + 3, at least 10
    assert lines[0].startswith("REPOSITORY   TAG       IMAGE ID       CREATED")
    cells = _header_cols(lines[1])
    assert cells[:2] == ["demo", "latest"] and re.fullmatch(r"[0-9a-f]{12}", cells[2])
    assert cells[3] == "7 months ago" and re.fullmatch(r"[\d.]+k?B", cells[4])
    r = cli("docker", "images", "--format", "json")
    row = json.loads(r.out.splitlines()[0])
    assert sorted(row) == list(row) and row["Repository"] == "demo" and len(row["ID"]) == 12
    r = cli("docker", "images", "-q", "--no-trunc")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.out)


def test_run_ps_exec_diff_inspect_stop_rm(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    r = cli("docker", "run", "-d", "--name", "web", "demo", "sleep", "infinity")
    assert r.code == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.out)
    cid = r.out.strip()
    r = cli("docker", "ps")
    lines = r.out.splitlines()
    assert _header_cols(lines[0]) == [
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES",
    ]  # fmt: skip
    assert lines[1].startswith(cid[:12] + '   demo      "sleep infinity"')
    assert lines[1].endswith("web") and "Up " in lines[1]
    r = cli("docker", "exec", "web", "touch", "/tmp/foo")
    assert (r.code, r.out, r.err) == (0, "", "")
    assert cli("docker", "diff", "web").out == "C /tmp\nA /tmp/foo\n"
    r = cli("docker", "inspect", "web")
    (doc,) = json.loads(r.out)
    assert r.out.startswith('[\n    {\n        "Id": ')  # 4-space indent as the CLI prints
    assert list(doc)[:5] == ["Id", "Created", "Path", "Args", "State"]
    gd = doc["GraphDriver"]
    assert list(gd) == ["Data", "Name"] and gd["Name"] == "overlay2"
    assert sorted(gd["Data"]) == list(gd["Data"]) == [
        "ID", "LowerDir", "MergedDir", "UpperDir", "WorkDir",
    ]  # fmt: skip
    assert gd["Data"]["ID"] == cid and gd["Data"]["LowerDir"].split(":")[0].endswith("-init/diff")
    upper = cli("docker", "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "web").out.strip()
    assert upper == gd["Data"]["UpperDir"]
    r = cli("sh", "-c", f"ls {upper}/tmp; mount")
    assert "foo\n" in r.out and f"on {gd['Data']['MergedDir']} type overlay" in r.out
    assert cli("docker", "stop", "web").out == "web\n"
    r = cli("docker", "ps", "-a")
    assert "Exited (137)" in r.out
    r = cli("sh", "-c", f"ls {gd['Data']['MergedDir']}")
    assert r.code != 0 and "No such file or directory" in r.err
    assert cli("docker", "rm", "web").out == "web\n"
    assert cli("docker", "ps", "-a").out.count("\n") == 1


def test_run_attached_prints_and_returns_status(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    r = cli("docker", "run", "--rm", "demo", "sh", "-c", "cat /hello.sh; exit 3")
    assert r.code == 3 and r.out == "#!/bin/sh\necho 'Hello from the top layer'\n"
    assert cli("docker", "ps", "-a", "-q").out == ""  # --rm removed it
    r = cli("docker", "run", "-i", "demo", "sh", input=b"echo from stdin\n")
    assert (r.code, r.out) == (0, "from stdin\n")


def test_errors_are_one_line(cli: Cli, demo_tar: str) -> None:
    r = cli("docker", "rm", "nope")
    assert (r.code, r.out, r.err) == (
        1,
        "",
        "Error response from daemon: No such container: nope\n",
    )
    r = cli("docker", "run", "nope")
    assert r.code == 125
    assert r.err == "docker: Error response from daemon: No such image: nope:latest\n"
    r = cli("docker", "inspect", "nope")
    assert (r.code, r.out, r.err) == (1, "[]\n", "Error: No such object: nope\n")
    r = cli("docker", "load", "-i", "/nonexistent.tar")
    assert (r.code, r.err) == (1, "open /nonexistent.tar: no such file or directory\n")
    cli("docker", "load", "-i", demo_tar)
    cli("docker", "create", "--name", "c1", "demo")
    r = cli("docker", "exec", "c1", "ls")
    assert r.code == 1 and r.err.count("\n") == 1 and r.err.endswith("is not running\n")
    r = cli("docker", "run", "--name", "w", "demo")
    assert r.code == 125 and r.err == (
        "docker: Error response from daemon: Invalid container name (w), only "
        "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\n"
    )
    r = cli("docker", "load", "-i", fixture_path("ggcr/layout-test_index"))
    assert r.code == 1 and r.err.count("\n") == 1


def test_save_to_real_disk_and_reload(cli: Cli, tmp_path: Path, world: str) -> None:
    cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar"))
    out = tmp_path / "saved.tar"
    r = cli("docker", "save", "-o", str(out), "dive-test")
    assert r.code == 0, r.err
    with tarfile.open(out) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert {"index.json", "oci-layout", "manifest.json"} <= set(names)
    assert manifest[0]["RepoTags"] == ["dive-test:latest"] and len(manifest[0]["Layers"]) == 14
    r = cli("docker", "save", "--save-format", "v1.2", "-o", str(tmp_path / "v12.tar"), "dive-test")
    with tarfile.open(tmp_path / "v12.tar") as t:
        assert "repositories" in t.getnames() and "oci-layout" not in t.getnames()
    iid = cli("docker", "images", "-q", "--no-trunc").out
    cli("docker", "rmi", "dive-test")
    assert cli("docker", "images", "-q").out == ""
    assert cli("docker", "load", "-i", str(out)).out == "Loaded image: dive-test:latest\n"
    assert cli("docker", "images", "-q", "--no-trunc").out == iid


def test_commit_then_run_the_new_image(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    cli("docker", "run", "-d", "--name", "w1", "demo", "sleep", "infinity")
    cli("docker", "exec", "w1", "sh", "-c", "echo committed > /root/note")
    r = cli("docker", "commit", "-m", "note", "w1", "demo:note")
    assert r.code == 0 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.out)
    r = cli("docker", "run", "--rm", "demo:note", "cat", "/root/note")
    assert r.out == "committed\n"
    (img,) = json.loads(cli("docker", "inspect", "demo:note").out)
    assert len(img["RootFS"]["Layers"]) == 3 and img["Comment"] == "note"


def test_info_storage_lines(cli: Cli) -> None:
    r = cli("docker", "info")
    block = r.out[r.out.index(" Storage Driver:") :].splitlines()[:6]
    assert block == [
        " Storage Driver: overlay2",
        "  Backing Filesystem: extfs",
        "  Supports d_type: true",
        "  Using metacopy: false",
        "  Native Overlay Diff: true",
        "  userxattr: false",
    ]
    assert json.loads(cli("docker", "info", "--json").out)["Driver"] == "overlay2"


def test_help_has_examples(cli: Cli) -> None:
    for cmd in ("load", "save", "images", "run", "exec", "stop", "rm", "inspect", "diff",
                "commit", "ps", "info", "rmi", "create", "start", "kill", "logs", "tag", "export",
                "history"):  # fmt: skip
        r = cli("docker", cmd, "--help")
        assert r.code == 0 and "Example" in r.out, cmd


def test_layer_tar_of_saved_commit_is_readable_by_tarfile(cli: Cli, tmp_path: Path) -> None:
    cli("docker", "load", "-i", fixture_path("ggcr/whiteout_dir.tar"))
    iid = cli("docker", "images", "-q").out.strip()
    cli("docker", "save", "-o", str(tmp_path / "w.tar"), iid)
    with tarfile.open(tmp_path / "w.tar") as t:
        man = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert man[0]["RepoTags"] is None  # saved by id: untagged
        top = t.extractfile(man[0]["Layers"][-1])
        assert top is not None
        with tarfile.open(fileobj=io.BytesIO(top.read())) as layer:
            assert layer.getnames() == ["a", "a/baz"]


def test_unknown_program_errors_like_the_oci_runtime(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    cli("docker", "run", "-d", "--name", "web", "demo", "sleep", "infinity")
    r = cli("docker", "exec", "web", "nosuch", "x")
    assert r.code == 127 and r.err == (
        "OCI runtime exec failed: exec failed: unable to start container process: "
        'exec: "nosuch": executable file not found in $PATH: unknown\n'
    )
    r = cli("docker", "run", "--name", "bad", "demo", "nosuch")
    assert r.code == 127 and r.err.count("\n") == 1
    assert r.err.startswith("docker: Error response from daemon: failed to create task")
    # the failed start is recorded, as dockerd records it
    r = cli("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "bad")
    assert r.out == "created 127\n"


def test_foreground_run_of_a_never_ending_command_stays_up(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    r = cli("docker", "run", "--name", "forever", "demo", "tail", "-f", "/dev/null")
    assert r.code == 0 and "keeps running" in r.err
    assert "forever" in cli("docker", "ps").out
    r = cli("docker", "run", "--rm", "demo", "sleep", "5")
    assert r.code == 0 and r.out == ""


def test_progress_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from overlaysim.docker import terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    with terminal.progress(True) as bar:
        assert bar is not None
        bar("Loading layer", "0123456789ab", 0, 2048)
        bar("Loading layer", "0123456789ab", 2048, 2048)
    assert "0123456789ab: Loading layer" in fake.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with terminal.progress(True) as bar:
        assert bar is None  # not a terminal: docker load is quiet too


def test_exec_user_comes_from_the_containers_passwd(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    cli("docker", "run", "-d", "--name", "web", "demo", "sleep", "infinity")
    assert cli("docker", "exec", "-u", "nobody", "web", "touch", "/tmp/n").code == 0
    r = cli("docker", "exec", "web", "stat", "-c", "%u:%g %U", "/tmp/n")
    assert r.out == "65534:65534 nobody\n"
    r = cli("docker", "exec", "-u", "nobody", "web", "touch", "/root/x")
    assert r.code == 1 and "Permission denied" in r.err
    r = cli("docker", "exec", "-u", "ghost", "web", "true")
    assert r.code == 126 and r.err == (
        "OCI runtime exec failed: exec failed: unable to start container process: "
        "unable to find user ghost: no matching entries in passwd file: unknown\n"
    )


def test_export_is_the_merged_view_with_init_files(cli: Cli, demo_tar: str, tmp_path: Path) -> None:
    cli("docker", "load", "-i", demo_tar)
    cid = cli("docker", "create", "demo").out.strip()
    out = tmp_path / "rootfs.tar"
    assert cli("docker", "export", "-o", str(out), cid).code == 0
    with tarfile.open(out) as t:
        names = set(t.getnames())
        motd = t.extractfile("etc/motd")
        assert motd is not None and motd.read() == b"Welcome! This motd comes from the app layer.\n"
    assert {".dockerenv", "etc/hostname", "hello.sh", "dev/null"} <= names
    assert "/merged" not in cli("sh", "-c", "mount").out  # mounted only while exporting


def test_load_from_stdin_and_save_to_stdout(cli: Cli, demo_tar: str) -> None:
    with open(demo_tar, "rb") as f:
        data = f.read()
    assert cli("docker", "load", input=data).out == "Loaded image: demo:latest\n"
    r = cli("docker", "load", input=b"")
    assert (r.code, r.err) == (
        1,
        "Error response from daemon: requested load from stdin, but stdin is empty\n",
    )
    runner_out = cli("docker", "save", "demo")
    assert runner_out.code == 0
    with tarfile.open(fileobj=io.BytesIO(runner_out.raw)) as t:
        assert "manifest.json" in t.getnames()


def test_a_binary_of_the_image_cannot_run_exec_format_error(cli: Cli) -> None:
    cli("docker", "load", "-i", fixture_path("ggcr/hello-world-v25.tar"))
    iid = cli("docker", "images", "-q").out.strip()
    r = cli("docker", "run", "--name", "hello", iid)  # Cmd ["/hello"], an arm64 binary
    assert (r.code, r.err) == (255, "exec /hello: exec format error\n")
    assert "Exited (255)" in cli("docker", "ps", "-a").out
    r = cli("docker", "run", iid, "/nothere")
    assert r.code == 127 and r.err.endswith(
        'exec: "/nothere": stat /nothere: no such file or directory: unknown\n'
    )


def test_several_containers_one_missing(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", demo_tar)
    cli("docker", "run", "-d", "--name", "a1", "demo", "sleep", "infinity")
    cli("docker", "run", "-d", "--name", "b1", "demo", "sleep", "infinity")
    r = cli("docker", "stop", "a1", "nope", "b1")
    assert (r.code, r.out) == (1, "a1\nb1\n")
    assert r.err == "Error response from daemon: No such container: nope\n"
    assert cli("docker", "ps", "-q").out == ""  # both stops were saved


def test_history_rows_pair_with_layers(cli: Cli, demo_tar: str) -> None:
    cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar"))
    lines = cli("docker", "history", "dive-test").out.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(lines) == 16  # 15 history entries (one empty_layer: CMD)
    assert lines[1].startswith("75ae28b8ebf8   ") and all(
        x.startswith("<missing>      ") for x in lines[2:]
    )
    cmd_row = next(x for x in lines if "CMD" in x)
    assert "   0B   " in cmd_row
    cli("docker", "load", "-i", demo_tar)
    cli("docker", "run", "--name", "c1", "demo", "touch", "/new")
    cli("docker", "commit", "c1", "demo:2")
    rows = json.loads(cli("docker", "history", "--json", "demo:2").out)
    base = cli("docker", "images", "-q", "--no-trunc", "demo:latest").out.strip()
    assert [r["ID"] == base for r in rows] == [False, True, False]
    assert rows[0]["CreatedBy"] == "touch /new" and rows[0]["Size"] == 0


def test_archives_without_manifest_json_go_to_the_legacy_loader(cli: Cli) -> None:
    # dockerd (20.10.24 observed; 28.5.1's tarexport has the same fallback) loads a pre-1.10
    # archive silently, one image per v1 directory, and an OCI layout fails on blobs/json
    r = cli("docker", "load", "-i", fixture_path("moby/emptyLayer.tar"))
    assert (r.code, r.out, r.err) == (0, "", "")
    ids = cli("docker", "images", "-aq").out.split()
    assert len(ids) == 3 and cli("docker", "images", "-q").out.split() == ids[:1]
    r = cli("docker", "load", "-i", fixture_path("dive/test-oci-gzip-image.tar"))
    assert r.code == 1 and r.out == ""
    assert re.fullmatch(
        r"open /var/lib/docker/tmp/docker-import-\d+/blobs/json: no such file or directory\n",
        r.err,
    )
