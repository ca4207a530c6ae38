"""The Docker release the simulator speaks as (``--docker-version`` / $OVERLAYSIM_DOCKER_VERSION).

Values for 20.10 were observed on dockerd 20.10.24 (Debian's 20.10.24+dfsg1, the judge of
tests/docker_oracle); values for 28 come from the moby and docker/cli v28.5.1 sources (the
code paths are cited where a test depends on them).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from overlaysim.docker import versions
from tests.docker.conftest import Result, fixture_path

Cli = Callable[..., Result]

ZERO_CONFIG = {  # container.Config with every field at its zero value, in Go's field order
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}  # fmt: skip


def docker(cli: Cli, version: str, *args: str) -> Result:
    return cli("docker", "--docker-version", version, *args)


def inspect(cli: Cli, version: str, name: str) -> dict[str, object]:
    r = docker(cli, version, "image", "inspect", name)
    assert r.code == 0, r.err
    (doc,) = json.loads(r.out)
    assert isinstance(doc, dict)
    return doc


def no_created_archive(path: Path) -> str:
    """A manifest.json archive whose config has no "created" and no "config"."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        info = tarfile.TarInfo("hello")
        info.size = 3
        t.addfile(info, io.BytesIO(b"hi\n"))
    did = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    cfg = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [did]},
         "history": [{"created_by": "made by hand"}]}, separators=(",", ":"),
    ).encode()  # fmt: skip
    name = hashlib.sha256(cfg).hexdigest() + ".json"
    man = json.dumps([{"Config": name, "RepoTags": ["nocreated:1"], "Layers": ["l/layer.tar"]}])
    with tarfile.open(path, "w") as t:
        for member, data in (
            (name, cfg),
            ("l/layer.tar", layer.getvalue()),
            ("manifest.json", man.encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return str(path)


# --- the setting ------------------------------------------------------------------------------
def test_setting_option_environment_and_refusal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert versions.lookup("20.10.24") is versions.lookup("20.10") is versions.V20_10
    assert versions.lookup("v28.5.1") is versions.DEFAULT is versions.V28
    assert "28.5.1" in cli("docker", "version").out  # the default
    monkeypatch.setenv(versions.ENV, "20.10")
    assert "20.10.24+dfsg1" in cli("docker", "version").out
    assert "28.5.1" in docker(cli, "28", "version").out  # the option wins over the environment
    r = docker(cli, "24", "version")
    assert r.code == 2 and "unknown Docker version '24'" in r.err and "20.10 or 28" in r.err


def test_version_text(cli: Cli) -> None:
    # observed on dockerd 20.10.24: the whole `docker version` of Debian's 20.10.24+dfsg1
    assert docker(cli, "20.10", "version").out == (
        "Client:\n Version:           20.10.24+dfsg1\n API version:       1.41\n"
        " Go version:        go1.19.8\n Git commit:        297e128\n"
        " Built:             Thu May  7 21:09:36 2026\n OS/Arch:           linux/amd64\n"
        " Context:           default\n Experimental:      true\n\nServer:\n Engine:\n"
        "  Version:          20.10.24+dfsg1\n  API version:      1.41 (minimum version 1.12)\n"
        "  Go version:       go1.19.8\n  Git commit:       5d6db84\n"
        "  Built:            Thu May  7 21:09:36 2026\n  OS/Arch:          linux/amd64\n"
        "  Experimental:     false\n containerd:\n  Version:          1.6.20~ds1\n"
        "  GitCommit:        1.6.20~ds1-1+deb12u3\n runc:\n  Version:          1.1.5+ds1\n"
        "  GitCommit:        1.1.5+ds1-1+deb12u1\n docker-init:\n  Version:          0.19.0\n"
        "  GitCommit:        \n"
    )
    out = docker(cli, "28", "version").out  # docker/cli v28.5.1 template: no Experimental line
    assert out.startswith("Client: Docker Engine - Community\n Version:           28.5.1\n")
    assert "  API version:      1.51 (minimum version 1.24)\n" in out
    assert " Experimental:      " not in out and "Server: Docker Engine - Community\n" in out


def test_info_lines(cli: Cli) -> None:
    old = docker(cli, "20.10", "info").out.splitlines()
    # observed on dockerd 20.10.24: the client block, the overlay2 lines, registry and labels
    assert old[:4] == ["Client:", " Context:    default", " Debug Mode: false", ""]
    assert " Server Version: 20.10.24+dfsg1" in old
    at = old.index(" Storage Driver: overlay2") + 1
    assert [x.split(":")[0] for x in old[at : at + 5]] == [
        "  Backing Filesystem", "  Supports d_type", "  Native Overlay Diff", "  userxattr",
        " Logging Driver",
    ]  # fmt: skip
    assert (
        "  Log: awslogs fluentd gcplogs gelf journald json-file local logentries splunk syslog"
        in old
    )
    assert " Registry: https://index.docker.io/v1/" in old and " Labels:" in old
    assert " Runtimes: io.containerd.runc.v2 io.containerd.runtime.v1.linux runc" in old
    assert re.fullmatch(
        r" ID: ([A-Z2-7]{4}:){11}[A-Z2-7]{4}", next(x for x in old if x.startswith(" ID:"))
    )
    assert old[-2:] == [" Live Restore Enabled: false", ""]
    new = docker(cli, "28", "info").out.splitlines()  # docker/cli v28.5.1 prettyPrintInfo
    assert new[:2] == ["Client: Docker Engine - Community", " Version:    28.5.1"]
    assert "  Using metacopy: false" in new and " Registry: https://index.docker.io/v1/" not in new
    assert " Labels:" not in new and "   Profile: builtin" in new
    assert re.fullmatch(r" ID: [0-9a-f-]{36}", next(x for x in new if x.startswith(" ID:")))


# --- image inspect ------------------------------------------------------------------------------
def test_image_inspect_shapes(cli: Cli) -> None:
    cli("docker", "load", "-i", fixture_path("ggcr/test_image_1.tar"))
    name = "bazel/v1/tarball:test_image_1"
    old = inspect(cli, "20.10", name)
    # observed on dockerd 20.10.24 (its config has "config": {} and no container_config)
    assert list(old) == [
        "Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
        "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os", "Size",
        "VirtualSize", "GraphDriver", "RootFS", "Metadata",
    ]  # fmt: skip
    assert old["Config"] == old["ContainerConfig"] == ZERO_CONFIG
    assert list(old["Config"]) == list(ZERO_CONFIG)  # type: ignore[call-overload]
    assert (old["Created"], old["Author"], old["Container"]) == (
        "1970-01-01T00:00:00Z",
        "Bazel",
        "",
    )
    assert old["Size"] == old["VirtualSize"] == 8
    assert old["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}  # load sets no tag time
    new = inspect(cli, "28", name)
    # moby v28.5.1: API >= 1.45 drops Container/ContainerConfig, >= 1.44 VirtualSize; >= 1.50
    # omits empty config fields but for eight, merged through a map: sorted, Config last
    assert list(new)[-1] == "Config" and not {"Container", "ContainerConfig", "VirtualSize"} & set(
        new
    )
    assert new["Config"] == {"Cmd": None, "Entrypoint": None, "Env": None, "Labels": None,
                             "OnBuild": None, "User": "", "Volumes": None, "WorkingDir": ""}  # fmt: skip
    r = docker(cli, "20.10", "inspect", "-f", "{{.VirtualSize}} {{.Config.Hostname}}|", name)
    assert r.out == "8 |\n"


def test_comment_from_history_and_loaded_image_id(cli: Cli) -> None:
    r = cli("docker", "load", "-i", fixture_path("ggcr/hello-world-v25.tar"))
    iid = "sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44"
    assert r.out == f"Loaded image ID: {iid}\n"  # RepoTags null
    for version in ("20.10", "28"):  # observed on dockerd 20.10.24; same code in v28.5.1
        assert inspect(cli, version, iid)["Comment"] == "buildkit.dockerfile.v0"
    cfg = inspect(cli, "20.10", iid)["Config"]
    assert isinstance(cfg, dict) and cfg["ArgsEscaped"] is True and cfg["WorkingDir"] == "/"
    assert list(cfg)[:3] == ["Hostname", "Domainname", "User"]


def test_missing_created_and_config(cli: Cli, tmp_path: Path) -> None:
    r = cli("docker", "load", "-i", no_created_archive(tmp_path / "nc.tar"))
    assert r.out == "Loaded image: nocreated:1\n"
    old = inspect(cli, "20.10", "nocreated:1")
    # observed on dockerd 20.10.24: a time.Time and a nil *container.Config
    assert (old["Created"], old["Config"]) == ("0001-01-01T00:00:00Z", None)
    assert old["ContainerConfig"] == ZERO_CONFIG
    hist = docker(cli, "20.10", "history", "nocreated:1").out.splitlines()
    assert re.fullmatch(r"[0-9a-f]{12}   292 years ago   made by hand   3B\s*", hist[1])
    rows = docker(cli, "20.10", "images").out.splitlines()
    assert re.fullmatch(r"nocreated    1         [0-9a-f]{12}   N/A       3B", rows[1])
    new = inspect(cli, "28", "nocreated:1")  # moby v28.5.1: *time.Time, omitempty
    assert "Created" not in new and new["Config"] == dict.fromkeys(
        ["Cmd", "Entrypoint", "Env", "Labels", "OnBuild"]) | {"User": "", "Volumes": None, "WorkingDir": ""}  # fmt: skip
    hist = docker(cli, "28", "history", "nocreated:1").out.splitlines()
    assert hist[1].split()[1] == "N/A"  # docker/cli 23+: times <= the epoch are hidden


def test_zero_created_history(cli: Cli) -> None:
    cli("docker", "load", "-i", fixture_path("dive/test-kaniko-image.tar"))
    old = docker(cli, "20.10", "history", "dive-test:kaniko-latest").out.splitlines()
    # observed on dockerd 20.10.24: Go's Time.Sub saturates at ~292 years
    assert all("292 years ago" in x for x in old[1:14]) and "292 years ago" not in old[14]
    new = docker(cli, "28", "history", "dive-test:kaniko-latest").out.splitlines()
    assert new[1].split()[1] == "N/A"


# --- load ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["20.10", "28"])
def test_manifest_parent_links_history(cli: Cli, version: str) -> None:
    cli("docker", "load", "-i", fixture_path("ggcr/test_link.tar"))
    one = inspect(cli, version, "bazel/v1/tarball:test_image_1")["Id"]
    three = inspect(cli, version, "bazel/v1/tarball:test_image_3")
    # observed on dockerd 20.10.24: the manifest's Parent is recorded, history names both
    assert three["Parent"] == one
    hist = docker(cli, version, "history", "bazel/v1/tarball:test_image_3").out.splitlines()
    assert hist[1].startswith(str(three["Id"])[7:19]) and hist[2].startswith(str(one)[7:19])
    r = docker(cli, version, "rmi", "bazel/v1/tarball:test_image_1")  # a parent: untag only
    assert (r.code, r.out) == (0, "Untagged: bazel/v1/tarball:test_image_1\n")


@pytest.mark.parametrize("version", ["20.10", "28"])
def test_untagged_repotag_stops_the_load(cli: Cli, version: str) -> None:
    r = docker(cli, version, "load", "-i", fixture_path("ggcr/test_bundle.tar"))
    # observed on dockerd 20.10.24: the first image is registered, then the load stops
    assert (r.code, r.out, r.err) == (1, "", 'invalid tag "test_image_2"\n')
    rows = docker(cli, version, "images", "-a").out.splitlines()
    assert len(rows) == 2 and re.fullmatch(
        r"<none>\s+<none>\s+[0-9a-f]{12}\s+\d+ years ago\s+8B", rows[1]
    )


def test_legacy_and_oci_archives(cli: Cli) -> None:
    for version in ("20.10", "28"):  # observed on dockerd 20.10.24; v28.5.1 has the same code
        r = docker(cli, version, "load", "-i", fixture_path("dive/test-oci-zstd-image.tar"))
        assert r.code == 1 and re.fullmatch(
            r"open /var/lib/docker/tmp/docker-import-\d+/blobs/json: no such file or directory\n",
            r.err,
        )
    r = docker(cli, "20.10", "load", "-i", fixture_path("moby/emptyLayer.tar"))
    assert (r.code, r.out, r.err) == (0, "", "")
    assert len(docker(cli, "20.10", "images", "-a", "-q").out.split()) == 3


# --- save and commit -----------------------------------------------------------------------------
def test_save_layout_and_names(cli: Cli, tmp_path: Path) -> None:
    cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar"))
    cli("docker", "load", "-i", fixture_path("dive/test-kaniko-image.tar"))
    tops = {}
    for version in ("20.10", "28"):
        out = tmp_path / f"{version}.tar"
        assert docker(cli, version, "save", "-o", str(out), "dive-test").code == 0
        with tarfile.open(out) as t:
            tops[version] = {m.name for m in t if "/" not in m.name.rstrip("/")}
            man = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        # a bare repository name saves every tag (observed on dockerd 20.10.24)
        assert sorted(t for m in man for t in m["RepoTags"]) == [
            "dive-test:kaniko-latest",
            "dive-test:latest",
        ]
    assert {"manifest.json", "repositories"} <= tops["20.10"]
    assert not {"oci-layout", "index.json", "blobs"} & tops["20.10"]
    assert {"oci-layout", "index.json", "manifest.json", "blobs"} <= tops["28"]
    r = docker(cli, "20.10", "save", "-o", str(tmp_path / "x.tar"), "nosuch:1")
    assert (r.code, r.err) == (1, "Error response from daemon: reference does not exist\n")
    r = docker(cli, "20.10", "save", "-o", str(tmp_path / "x.tar"), "nosuch")
    assert r.err == "Error response from daemon: No such image: nosuch\n"


def test_commit_and_container_layer_id(cli: Cli) -> None:
    cli("docker", "load", "-i", fixture_path("dive/test-docker-image.tar"))
    docker(cli, "20.10", "create", "--name", "c1", "--network", "none", "dive-test", "sleep", "9")
    data = json.loads(docker(cli, "20.10", "inspect", "c1").out)[0]["GraphDriver"]["Data"]
    assert "ID" not in data and "UpperDir" in data  # 20.10's mountedLayer.Metadata
    data = json.loads(docker(cli, "28", "inspect", "c1").out)[0]["GraphDriver"]["Data"]
    assert data["ID"] == json.loads(docker(cli, "28", "inspect", "c1").out)[0]["Id"]  # v28.1+
    assert docker(cli, "20.10", "commit", "-m", "msg", "c1", "snap:1").code == 0
    doc = inspect(cli, "20.10", "snap:1")
    # observed on dockerd 20.10.24: NewChildImage keeps the container's config (Image as
    # typed), records the container, and puts the message in history only
    assert doc["DockerVersion"] == "20.10.24+dfsg1" and doc["Comment"] == "msg"
    assert doc["Container"] == json.loads(cli("docker", "inspect", "c1").out)[0]["Id"]
    cfg = doc["Config"]
    assert isinstance(cfg, dict) and cfg["Image"] == "dive-test" and cfg == doc["ContainerConfig"]
    assert doc["Metadata"] != {"LastTagTime": "0001-01-01T00:00:00Z"}  # commit REF tags it
