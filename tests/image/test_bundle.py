"""runc bundles: config.json as `runc spec` prints it; rootfs written without trusting the image."""

from __future__ import annotations

import json
import os
import stat

import pytest

from overlaysim import HostFS
from overlaysim.image.bundle import ExportPolicy, runc_spec_json, write_bundle, write_tree


def test_runc_spec_text_shape() -> None:
    text = runc_spec_json("1.4").decode()
    assert text.startswith('{\n\t"ociVersion": "1.3.0",\n\t"process": {\n\t\t"terminal": true,')
    assert not text.endswith("\n")
    spec = json.loads(text)
    assert list(spec) == ["ociVersion", "process", "root", "hostname", "mounts", "linux"]
    assert list(spec["linux"]) == ["resources", "namespaces", "maskedPaths", "readonlyPaths"]
    assert [n["type"] for n in spec["linux"]["namespaces"]][-1] == "cgroup"
    assert spec["mounts"][2]["options"][-1] == "gid=5"


@pytest.mark.parametrize(
    ("version", "oci", "caps"), [("1.1", "1.0.2-dev", 5), ("1.2", "1.2.0", 3), ("1.3", "1.2.1", 3)]
)
def test_runc_versions(version: str, oci: str, caps: int) -> None:
    spec = json.loads(runc_spec_json(version, cgroup_v2=False))
    assert spec["ociVersion"] == oci and len(spec["process"]["capabilities"]) == caps
    assert "cgroup" not in [n["type"] for n in spec["linux"]["namespaces"]]


def test_image_config_can_drive_process() -> None:
    spec = json.loads(
        runc_spec_json(
            image_config={
                "config": {
                    "Entrypoint": ["/bin/app"],
                    "Cmd": ["-v"],
                    "WorkingDir": "/srv",
                    "Env": ["A=1"],
                }
            }
        )
    )
    assert spec["process"]["args"] == ["/bin/app", "-v"] and spec["process"]["cwd"] == "/srv"


def test_hostile_rootfs_cannot_write_outside_and_loses_setid_and_devices(tmpdir_root: str) -> None:
    fs = HostFS()
    o = fs.os
    o.makedirs("/r/etc")
    o.symlink("/", "/r/escape")  # a symlink to the host root inside the image
    o.symlink("../../../../tmp", "/r/up")
    with fs.open("/r/etc/passwd", "w") as f:
        f.write("root:x:0:0::/:/bin/sh\n")
    with fs.open("/r/suid", "w") as f:
        f.write("x")
    o.chmod("/r/suid", 0o4755)
    o.mknod("/r/sda", stat.S_IFBLK | 0o600, os.makedev(8, 0))
    o.link("/r/etc/passwd", "/r/hard")
    sentinel = os.path.join(tmpdir_root, "sentinel")
    os.mkdir(sentinel)
    policy = ExportPolicy()
    dest = os.path.join(tmpdir_root, "bundle")
    write_bundle(o, "/r", dest, runc_spec_json(), policy)
    root = os.path.join(dest, "rootfs")
    assert os.readlink(os.path.join(root, "escape")) == "/"
    assert stat.S_IMODE(os.lstat(os.path.join(root, "suid")).st_mode) == 0o755
    assert not os.path.lexists(os.path.join(root, "sda"))
    assert (
        os.stat(os.path.join(root, "hard")).st_ino
        == os.stat(os.path.join(root, "etc/passwd")).st_ino
    )
    assert {"setid-stripped", "device-skipped"} <= policy.findings.codes()
    assert os.listdir(sentinel) == []
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700


def test_write_tree_refuses_an_existing_destination(tmpdir_root: str) -> None:
    o = HostFS().os
    o.mkdir("/r")
    with pytest.raises(FileExistsError):
        write_tree(o, "/r", tmpdir_root)
