"""The reader's story in real processes: every command is a new ``overlaysim`` process on
the same ``--world`` file, so all daemon state must come back from the saved machine."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.docker.conftest import Result

Run = Callable[..., Result]


def test_story_across_processes(proc: Run, demo_tar: str, tmp_path: Path) -> None:
    assert proc("docker", "load", "-i", demo_tar).out == "Loaded image: demo:latest\n"
    r = proc("docker", "run", "-d", "--name", "web", "demo", "sleep", "infinity")
    assert r.code == 0, r.err
    data = json.loads(proc("docker", "inspect", "web").out)[0]["GraphDriver"]["Data"]
    upper, merged, work = data["UpperDir"], data["MergedDir"], data["WorkDir"]
    lowers = data["LowerDir"].split(":")
    assert len(lowers) == 3 and lowers[0].endswith("-init/diff")  # init + 2 image layers
    r = proc("sh", "-c", f"ls -ld {work}/work; ls {merged}; cat {lowers[1]}/etc/motd")
    assert r.out.startswith("d--------- ")  # the kernel's work/work, after the rw mount
    assert "hello.sh" in r.out and "app layer" in r.out
    home = "/var/lib/docker/overlay2"
    r = proc("sh", "-c", f"ls -l {home}/l/")
    links = r.out.splitlines()[1:]
    assert len(links) == 4  # 2 image layers, -init, the container layer
    assert all(re.match(r"lrwxrwxrwx 1 root root 7[27] .* [A-Z2-7]{26} -> \.\./[0-9a-f]{64}", x)
               for x in links), links  # fmt: skip
    assert proc("docker", "exec", "web", "touch", "/tmp/foo").code == 0
    r = proc("sh", "-c", f"ls -la {upper}/tmp; mount")
    assert " foo\n" in r.out and f"overlay on {merged} type overlay (rw,relatime,lowerdir=" in r.out
    assert proc("docker", "stop", "web").out == "web\n"
    r = proc("sh", "-c", "mount")
    assert merged not in r.out
    assert proc("docker", "rm", "web").out == "web\n"
    r = proc("sh", "-c", f"ls {home}")
    assert len(r.out.split()) == 3  # the two image layers and l
    r = proc("docker", "rm", "web")
    assert (r.code, r.err) == (1, "Error response from daemon: No such container: web\n")
    assert "Traceback" not in r.err


def test_skopeo_then_jq_and_tar_read_the_outputs(proc: Run, demo_tar: str, tmp_path: Path) -> None:
    proc("docker", "load", "-i", demo_tar)
    r = proc("skopeo", "copy", "docker-daemon:demo:latest", "oci:demo-oci:v1")
    assert r.code == 0 and r.out.splitlines()[-1] == "Writing manifest to image destination"
    index = json.loads((tmp_path / "demo-oci" / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    r = proc("docker", "save", "-o", "demo-saved.tar", "demo")
    assert r.code == 0, r.err
    listing = subprocess.run(["tar", "tf", str(tmp_path / "demo-saved.tar")],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "manifest.json" in listing.split() and "oci-layout" in listing.split()


def test_runc_story_with_a_bundle_on_disk(proc: Run, demo_tar: str, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    proc("docker", "load", "-i", demo_tar)
    cid = proc("docker", "create", "demo").out.strip()
    assert proc("docker", "export", "-o", str(tmp_path / "rootfs.tar"), cid).code == 0
    subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-xf", str(tmp_path / "rootfs.tar")],
                   check=True)  # fmt: skip
    assert proc("runc", "spec", "--bundle", str(bundle)).code == 0
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["sleep", "infinity"])
    (bundle / "config.json").write_text(json.dumps(spec, indent="\t"))
    assert proc("runc", "run", "-d", "--bundle", str(bundle), "mycontainer").code == 0
    lines = proc("runc", "list").out.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert lines[1].split()[:4] == ["mycontainer", lines[1].split()[1], "running", str(bundle)]
    assert proc("runc", "kill", "mycontainer", "KILL").code == 0
    assert proc("runc", "list").out.splitlines()[1].split()[1:3] == ["0", "stopped"]
    assert proc("runc", "delete", "mycontainer").code == 0
    assert proc("runc", "list", "-q").out == ""
