"""``overlaysim explain`` on dive's test image: answers checked against the layer tars."""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.world_opt import ENVVAR

FIXTURE = "/work/shared/fixtures/dive/test-docker-image.tar"
pytestmark = pytest.mark.skipif(not os.path.exists(FIXTURE), reason="dive fixture not present")


def _layers() -> list[dict[str, tarfile.TarInfo]]:
    """Each layer tar's members by path, base layer first, from the archive's manifest."""
    with tarfile.open(FIXTURE) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        out = []
        for name in manifest[0]["Layers"]:
            raw = io.BytesIO(t.extractfile(name).read())  # type: ignore[union-attr]
            with tarfile.open(fileobj=raw) as inner:
                out.append({m.name.rstrip("/").removeprefix("./"): m for m in inner.getmembers()})
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("w") / "w.world")
    r = CliRunner(env={ENVVAR: path})
    assert r.invoke(main, ["docker", "load", "-i", FIXTURE]).exit_code == 0
    assert r.invoke(main, ["docker", "create", "--name", "web", "dive-test", "sh"]).exit_code == 0
    return path


def _explain(world: str, spec: str) -> dict[str, Any]:
    r = CliRunner(env={ENVVAR: world}).invoke(main, ["explain", "--json", spec])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)  # type: ignore[no-any-return]


def _topmost(layers: list[dict[str, tarfile.TarInfo]], rel: str) -> int:
    """Index (base = 0) of the topmost layer tar that has ``rel`` or a whiteout for it."""
    d, b = os.path.split(rel)
    for i in range(len(layers) - 1, -1, -1):
        if rel in layers[i] or f"{d}/.wh.{b}" in layers[i]:
            return i
    raise AssertionError(rel)


@pytest.mark.parametrize("kind", ["dive-test", "web"])
def test_name_and_data_layer_match_the_tars(world: str, kind: str) -> None:
    layers = _layers()
    r = _explain(world, f"{kind}:/root/saved.txt")
    top = _topmost(layers, "root/saved.txt")
    got = r["lookup"]["name_from"]["layer"]
    assert got["label"] == f"image layer {top + 1}/{len(layers)}"
    assert "chmod +x /root/saved.txt" in got["created_by"]
    assert r["lookup"]["data_from"] == r["lookup"]["name_from"]
    assert r["merged"]["size"] == layers[top]["root/saved.txt"].size
    # every tar that has the path is listed, the lower ones hidden by the top one
    having = [i for i, m in enumerate(layers) if "root/saved.txt" in m]
    listed = sorted(int(x["layer"]["label"].split()[2].split("/")[0]) - 1
                    for x in r["layers_with_path"])  # fmt: skip
    assert listed == having
    assert all(x["role"] == "hidden" and "replaced by" in x["hidden_by"]
               for x in r["layers_with_path"] if x["layer"] != got)  # fmt: skip
    # the next write copies up the whole file: its bytes from the tar, and its parent dir
    write = next(w for w in r["what_if"] if w["op"] == "write")
    ups = {e["path"]: e for e in write["events"] if e["kind"] == "copy_up"}
    merged = r["target"]["merged_path"]
    assert ups[merged]["detail"]["bytes"] == layers[top]["root/saved.txt"].size
    assert ups[merged.rsplit("/", 1)[0]]["detail"]["type"] == "dir"
    assert write["upper"][-1].startswith(f"/root/saved.txt: new in upper: file of "
                                         f"{layers[top]['root/saved.txt'].size} bytes")  # fmt: skip
    unlink = next(w for w in r["what_if"] if w["op"] == "unlink")
    assert [e["kind"] for e in unlink["events"]][-1] == "whiteout"


def test_whiteout_from_rm_rf_hides_the_lower_dirs(world: str) -> None:
    layers = _layers()
    r = _explain(world, "dive-test:/root/example")
    assert r["merged"] is None and r["lookup"]["name_from"] is None
    wh = _topmost(layers, "root/example")
    assert "root/.wh.example" in layers[wh]
    [top] = [x for x in r["layers_with_path"] if x["type"] == "character device"]
    assert top["layer"]["label"] == f"image layer {wh + 1}/{len(layers)}"
    assert "rm -rf /root/example" in top["layer"]["created_by"]
    below = [x for x in r["layers_with_path"] if x is not top]
    assert below and all("whiteout (char 0/0) at /root/example" in x["hidden_by"] for x in below)
    assert len(below) == sum(1 for m in layers[:wh] if "root/example" in m)


def test_explain_does_not_change_the_world(world: str) -> None:
    with open(world, "rb") as f:
        before = f.read()
    _explain(world, "web:/root/saved.txt")
    with open(world, "rb") as f:
        assert f.read() == before


@pytest.mark.parametrize("spec,message", [
    ("nosuch:/etc/passwd", "no such container or image"),
    ("web:/no/such/file", "no such file or directory in any layer"),
    ("relative/path", "expected CONTAINER:/path"),
    ("/etc/passwd", "not on an overlay mount"),
])  # fmt: skip
def test_bad_input_is_one_line(world: str, spec: str, message: str) -> None:
    r = CliRunner(env={ENVVAR: world}).invoke(main, ["explain", spec])
    assert r.exit_code == 1
    assert message in r.output and r.output.count("\n") == 1
    assert "Traceback" not in r.output
