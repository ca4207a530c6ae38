"""``overlaysim tour`` (``make demo``): it runs, its output holds the evidence the story is
about (read from the simulator, not a transcript), and the commands it ends with work on the
world it leaves behind — run in-process and as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.tour_story import NEXT
from overlaysim.cli.world_opt import ENVVAR
from overlaysim.demo_image import write_demo_archive

EXE = Path(sys.executable).with_name("overlaysim")


def _tour_in_process(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(cwd)
    monkeypatch.delenv(ENVVAR, raising=False)
    r = CliRunner().invoke(main, ["tour"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code == 0, r.output
    return r.stdout


def _after(out: str, command: str) -> list[str]:
    """The output lines of the first ``$ ...`` line where the regex ``command`` matches."""
    lines = out.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("$ ") and re.search(command, line)
    )
    rest = []
    for line in lines[start + 1 :]:
        if line.startswith(("$ ", "→ ")):
            break
        rest.append(line)
    return rest


def _pointers(out: str) -> tuple[str, list[list[str]]]:
    """(world path, argv of each ``overlaysim`` line) from the closing section."""
    tail = out.split("Continue on your own", 1)[1].splitlines()
    world = ""
    commands = []
    for line in tail:
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            world = words[1].split("=", 1)[1]
        elif words[:1] == ["overlaysim"]:
            commands.append(words[1:])
    return world, commands


def _check_evidence(out: str, cwd: Path) -> None:
    assert "\x1b[" not in out  # readable when piped: no ANSI
    # the container's mount: an overlay whose lower layers are named through l/ links
    (mount,) = _after(out, "mount \\| grep overlay")
    assert mount.startswith("overlay on /var/lib/docker/overlay2/") and "type overlay" in mount
    lowers = re.search(r"lowerdir=([^,]+)", mount)
    assert lowers and len(lowers.group(1).split(":")) == 3  # -init + the image's 2 layers
    assert all(re.fullmatch(r".*/l/[A-Z0-9]{26}", p) for p in lowers.group(1).split(":"))
    links = _after(out, "ls -l /var/lib/docker/overlay2/l/")
    assert len(links) == 5 and links[0] == "total 0"  # 2 image layers + -init + rw layer
    for line in links[1:]:
        assert re.fullmatch(r"lrwxrwxrwx 1 root root \d+ .* [A-Z0-9]{26} -> "
                            r"\.\./[0-9a-f]{64}(-init)?/diff", line), line  # fmt: skip
    link_lower = _after(out, "cat link")
    assert re.fullmatch(r"link:  [A-Z0-9]{26}", link_lower[0])
    assert re.fullmatch(r"lower: l/[A-Z0-9]{26}(:l/[A-Z0-9]{26}){2}", link_lower[1])
    # touch /tmp/foo in the container lands in the upper dir
    assert _after(out, "/diff/tmp")[-1].endswith(" 0 Jan  1 00:00 foo")
    # rm of an image file: a whiteout in upper, its master in work/work
    upper = _after(out, "/diff'$")
    assert any(re.fullmatch(r"c--------- 2 root root 0, 0 .* hello\.sh", x) for x in upper)
    masters = _after(out, "work/work")
    assert any(line.startswith("c--------- 2 root root 0, 0") for line in masters)
    assert _after(out, "docker diff web") == ["D /hello.sh", "C /tmp", "A /tmp/foo"]
    # act two: explain names the whiteout that hides hello.sh; compare shows EXDEV vs redirect
    explained = _after(out, "explain web:/hello.sh")
    assert "  not visible in the merged view" in explained
    assert any("search stopped by: whiteout in upper" in line for line in explained)
    compared = "\n".join(_after(out, "compare --image"))
    assert "EXDEV /etc" in compared and "redirect /etc2 -> 'etc'" in compared
    assert "trusted.overlay.redirect" in compared
    # stop: merged/ gone; rm: only the image's layers remain
    layer_listing = _after(out, r"ls -l /var/lib/docker/overlay2/[0-9a-f]{64}'$")
    stopped = [line.split()[-1] for line in layer_listing[1:]]
    assert stopped == ["diff", "link", "lower", "work"]
    # runc: the bundle's container was listed running, then stopped, then gone
    runs = [line.split() for line in out.splitlines() if line.startswith("mycontainer ")]
    assert [r[2] for r in runs] == ["running", "stopped"]
    assert _after(out, "rootfs/tmp")[-1].endswith(" bar")
    # the real disk: an archive tar can read, an OCI layout skopeo wrote
    saved = cwd / "overlaysim-tour" / "saved.tar"
    with tarfile.open(saved) as tf:
        assert "manifest.json" in tf.getnames()
    _check_save_step(out, saved)
    index = json.loads((cwd / "overlaysim-tour" / "demo-oci" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    world, commands = _pointers(out)
    assert world == "overlaysim-tour/tour.world" and (cwd / world).is_file()
    assert all(args in commands for args in NEXT)


def _check_save_step(out: str, saved: Path) -> None:
    """The save step shows the archive as a reader looks at it: ``tar tf`` (compared with
    the real tar when the host has one) and the manifest as ``python3 -m json.tool`` prints it."""
    listing = _after(out, r"^\$ tar tf .*saved\.tar$")
    assert {"manifest.json", "index.json", "oci-layout", "blobs/", "blobs/sha256/"} <= set(listing)
    if shutil.which("tar"):
        real = subprocess.run(["tar", "tf", str(saved)], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
        assert listing == real.splitlines()
    shown = _after(out, r"tar xOf .*saved\.tar manifest\.json \| python3 -m json\.tool")
    with tarfile.open(saved) as tf:
        f = tf.extractfile("manifest.json")
        assert f is not None
        raw = f.read()
    pretty = subprocess.run([sys.executable, "-m", "json.tool"], input=raw, capture_output=True,
                            check=True).stdout.decode()  # fmt: skip
    assert shown == pretty.splitlines()
    (entry,) = json.loads(raw)
    assert entry["RepoTags"] == ["demo:latest"]
    assert all(layer in listing for layer in [entry["Config"], *entry["Layers"]])


def test_tour_in_process_and_its_pointers_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _tour_in_process(tmp_path, monkeypatch)
    _check_evidence(out, tmp_path)
    world, commands = _pointers(out)
    runner = CliRunner(env={ENVVAR: world})
    for args in commands:
        r = runner.invoke(main, args, input="ls /\n")
        assert r.exit_code == 0, (args, r.output)
        if args == ["docker", "diff", "again"]:
            assert r.stdout == "C /root\nA /root/note\n"
        if args == ["sh"]:
            assert "var" in r.stdout.split()  # the shell read `ls /` from stdin
    # a second tour replaces its own files and tells the same story
    assert _after(_tour_in_process(tmp_path, monkeypatch), "docker diff web") == _after(
        out, "docker diff web"
    )


@pytest.mark.skipif(not EXE.exists(), reason=f"{EXE} is not installed (pip install -e .)")
def test_tour_as_a_subprocess_and_its_pointers_work(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != ENVVAR}
    env.update(LC_ALL="C.UTF-8", COLUMNS="100")
    r = subprocess.run([str(EXE), "tour"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)  # fmt: skip
    assert (r.returncode, r.stderr) == (0, "")
    _check_evidence(r.stdout, tmp_path)
    world, commands = _pointers(r.stdout)
    env[ENVVAR] = world
    for args in commands:
        p = subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env,
                           cwd=tmp_path, input="ls /\n", timeout=120)  # fmt: skip
        assert p.returncode == 0, (args, p.stdout, p.stderr)


def test_tour_refuses_a_directory_it_did_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "overlaysim-tour" / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("keep me")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["tour"])
    assert r.exit_code == 1 and mine.read_text() == "keep me"
    assert r.stderr.count("\n") == 1 and "notes.txt" in r.stderr and "--dir" in r.stderr


def test_embedded_image_is_deterministic_and_loads(tmp_path: Path) -> None:
    paths = [tmp_path / "a.tar", tmp_path / "b.tar"]
    for p in paths:
        with open(p, "wb") as f:
            write_demo_archive(f)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    runner = CliRunner(env={ENVVAR: str(tmp_path / "w.world")})
    out = tmp_path / "c.tar"
    assert runner.invoke(main, ["image", "demo", "-o", str(out)]).exit_code == 0
    assert out.read_bytes() == paths[0].read_bytes()
    r = runner.invoke(main, ["image", "demo", "-o", str(out)])
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = runner.invoke(main, ["docker", "load", "-i", str(out)])
    assert r.stdout == "Loaded image: demo:latest\n"
    r = runner.invoke(
        main, ["docker", "run", "--rm", "demo", "sh", "-c", "ls -l /bin; cat /hello.sh"]
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("lrwxrwxrwx 1 root root 7 ") and "bin -> usr/bin" in r.stdout
    assert "echo 'Hello from the top layer'" in r.stdout
