"""``overlaysim skopeo copy``: OCI layouts as skopeo writes them, and round trips."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from tests.docker.conftest import Result

Cli = Callable[..., Result]


def test_daemon_to_oci_dir(cli: Cli, demo_tar: str, tmp_path: Path) -> None:
    cli("docker", "load", "-i", demo_tar)
    dest = tmp_path / "oci"
    r = cli("skopeo", "copy", "docker-daemon:demo:latest", f"oci:{dest}:latest")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == "Getting image source signatures"
    assert (dest / "oci-layout").read_bytes() == b'{"imageLayoutVersion":"1.0.0"}'
    index = json.loads((dest / "index.json").read_bytes())
    assert "mediaType" not in index and index["schemaVersion"] == 2
    (desc,) = index["manifests"]
    assert desc["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    for blob in (dest / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    man = json.loads((dest / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())
    assert {x["mediaType"] for x in man["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }
    iid = cli("docker", "images", "-q", "--no-trunc").out.strip()
    assert man["config"]["digest"] == iid
    cfg = json.loads((dest / "blobs" / "sha256" / iid[7:]).read_bytes())
    for layer, diff_id in zip(man["layers"], cfg["rootfs"]["diff_ids"], strict=True):
        raw = gzip.decompress((dest / "blobs" / "sha256" / layer["digest"][7:]).read_bytes())
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id


def test_second_copy_updates_the_layout(cli: Cli, demo_tar: str, tmp_path: Path) -> None:
    cli("docker", "load", "-i", demo_tar)
    dest = tmp_path / "oci"
    cli("skopeo", "copy", "docker-daemon:demo", f"oci:{dest}:a")
    cli("skopeo", "copy", "docker-daemon:demo", f"oci:{dest}:a")
    refs = [
        m.get("annotations") for m in json.loads((dest / "index.json").read_text())["manifests"]
    ]
    assert refs == [None, {"org.opencontainers.image.ref.name": "a"}]


def test_oci_to_docker_archive_to_daemon(cli: Cli, demo_tar: str, tmp_path: Path) -> None:
    cli("docker", "load", "-i", demo_tar)
    iid = cli("docker", "images", "-q", "--no-trunc").out.strip()
    cli("skopeo", "copy", "docker-daemon:demo", f"oci:{tmp_path / 'oci'}:x")
    arch = tmp_path / "d.tar"
    r = cli("skopeo", "copy", f"oci:{tmp_path / 'oci'}:x", f"docker-archive:{arch}:re/demo:2")
    assert r.code == 0, r.err
    cli("docker", "rmi", "demo")
    assert cli("docker", "load", "-i", str(arch)).out == "Loaded image: re/demo:2\n"
    assert cli("docker", "images", "-q", "--no-trunc").out.strip() == iid
    r = cli("skopeo", "copy", f"oci:{tmp_path / 'oci'}:x", "docker-daemon:back:1")
    assert r.code == 0, r.err
    rows = [line.split()[:3] for line in cli("docker", "images").out.splitlines()[1:]]
    assert ["back", "1", iid[7:19]] in rows


def test_bad_transport_is_one_line(cli: Cli) -> None:
    r = cli("skopeo", "copy", "nope:x", "oci:y")
    assert (
        r.code == 1
        and r.err == 'FATA[0000] Invalid image name "nope:x", unknown transport "nope"\n'
    )
