"""The daemon model against §1 of the spec: where each step leaves its files and mounts."""

from __future__ import annotations

import io
import json
import posixpath
import stat
import tarfile

import pytest

from overlaysim.docker import imageops
from overlaysim.docker import inspect as insp
from overlaysim.docker.daemon import RUNC_ROOT, Daemon
from overlaysim.errors import DaemonError
from overlaysim.image import digest as dg
from overlaysim.world import World
from tests.docker.conftest import fixture_path

HOME = "/var/lib/docker/overlay2"
LAYERDB = "/var/lib/docker/image/overlay2/layerdb"


def _new() -> tuple[World, Daemon]:
    w = World.new(7)
    return w, Daemon(w.fs, w.meta, w.seed)


def _read(w: World, path: str) -> bytes:
    with w.fs.open(path, "rb") as f:
        data: bytes = f.read()
    return data


def _mounted(w: World) -> set[str]:
    return {m.target for m in w.fs.mounts() if m.fstype == "overlay"}


def test_load_writes_imagedb_layerdb_and_repositories(demo_tar: str) -> None:
    w, d = _new()
    assert imageops.load(d, demo_tar) == ["Loaded image: demo:latest"]
    (iid,) = d.images.ids()
    cfg = d.images.config_bytes(iid)
    assert cfg is not None and dg.image_id(cfg) == iid
    content = f"/var/lib/docker/image/overlay2/imagedb/content/sha256/{dg.hex_of(iid)}"
    assert _read(w, content) == cfg
    repos = json.loads(_read(w, "/var/lib/docker/image/overlay2/repositories.json"))
    assert repos == {"Repositories": {"demo": {"demo:latest": iid}}}
    diff_ids = json.loads(cfg)["rootfs"]["diff_ids"]
    chains = dg.chain_ids(diff_ids)
    for i, chain in enumerate(chains):
        d_ = f"{LAYERDB}/sha256/{dg.hex_of(chain)}"
        assert _read(w, f"{d_}/diff").decode() == diff_ids[i]
        cache_id = _read(w, f"{d_}/cache-id").decode()
        assert len(cache_id) == 64 and w.fs.os.path.isdir(f"{HOME}/{cache_id}/diff")
    assert _read(w, f"{LAYERDB}/sha256/{dg.hex_of(chains[1])}/parent").decode() == chains[0]


def test_dive_fixture_chain_id_matches_fixtures_md() -> None:
    _w, d = _new()
    assert imageops.load(d, fixture_path("dive/test-docker-image.tar")) == [
        "Loaded image: dive-test:latest"
    ]
    top = d.top_chain(d.images.resolve("dive-test")[0])
    assert top == "sha256:a1c47b1903e5c10581a02d31a80056a7534202ba4d4a352f5c737747d0db4ca7"


def test_container_lifecycle_layers_mounts_and_upper(demo_tar: str) -> None:
    w, d = _new()
    imageops.load(d, demo_tar)
    c = d.create("demo", ["sleep", "infinity"], name="web")
    rw = d.layers.get_rw_layer(c.id)
    mdir, idir = f"{HOME}/{rw.mount_id}", f"{HOME}/{rw.mount_id}-init"
    assert rw.init_id == f"{rw.mount_id}-init"
    # created: both layer dirs, no merged/ yet, the init layer is committed
    assert sorted(w.fs.os.listdir(mdir)) == ["diff", "link", "lower", "work"]
    assert "committed" in w.fs.os.listdir(idir)
    lower = _read(w, f"{mdir}/lower").decode()
    assert lower.split(":")[0] == "l/" + _read(w, f"{idir}/link").decode()
    # started: merged mounted, runc state written
    d.start("web")
    assert f"{mdir}/merged" in _mounted(w)
    assert d.container("web").status == "running"
    state = json.loads(_read(w, f"{RUNC_ROOT}/{c.id}/state.json"))
    assert state["config"]["rootfs"] == f"{mdir}/merged"
    # exec: the new file lands in the container layer's upper dir only
    out, err = io.BytesIO(), io.BytesIO()
    assert d.exec("web", ["touch", "/tmp/foo"], stdout=out, stderr=err) == 0, err.getvalue()
    assert stat.S_ISREG(w.fs.os.lstat(f"{mdir}/diff/tmp/foo").st_mode)
    assert not w.fs.os.path.exists(f"{idir}/diff/tmp/foo")
    assert [str(x) for x in d.diff("web")] == ["C /tmp", "A /tmp/foo"]
    # stop: sleep ignores SIGTERM, so SIGKILL after the timeout; merged unmounted and gone
    d.stop("web")
    st = d.container("web").state
    assert (st["Running"], st["ExitCode"]) == (False, 137)
    assert f"{mdir}/merged" not in _mounted(w)
    assert not w.fs.os.path.exists(f"{mdir}/merged")
    assert w.fs.os.path.exists(f"{mdir}/diff/tmp/foo")  # the upper survives a stop
    assert not w.fs.os.path.exists(f"{RUNC_ROOT}/{c.id}")
    # rm: both layer dirs, their l/ links and the layerdb mount entry go away
    links = {_read(w, f"{mdir}/link").decode(), _read(w, f"{idir}/link").decode()}
    d.rm("web")
    assert not w.fs.os.path.exists(mdir) and not w.fs.os.path.exists(idir)
    assert not links & set(w.fs.os.listdir(f"{HOME}/l"))
    assert not w.fs.os.path.exists(f"{LAYERDB}/mounts/{c.id}")
    assert not w.fs.os.path.exists(f"/var/lib/docker/containers/{c.id}")


def test_state_errors_use_dockers_messages(demo_tar: str) -> None:
    _w, d = _new()
    imageops.load(d, demo_tar)
    c = d.create("demo", ["sleep", "infinity"], name="web")
    with pytest.raises(DaemonError, match=f"^container {c.id} is not running$"):
        d.exec("web", ["true"], stdout=io.BytesIO(), stderr=io.BytesIO())
    with pytest.raises(DaemonError, match='The container name "/web" is already in use'):
        d.create("demo", name="web")
    d.start("web")
    with pytest.raises(DaemonError, match='cannot remove container "/web": container is running'):
        d.rm("web")
    with pytest.raises(DaemonError, match=r"^No such container: nope$"):
        d.container("nope")
    with pytest.raises(DaemonError, match=r"^No such image: nope:latest$"):
        d.create("nope")
    d.rm("web", force=True)
    assert d.containers.ids() == []


def test_short_command_runs_to_completion_and_logs(demo_tar: str) -> None:
    _w, d = _new()
    imageops.load(d, demo_tar)
    c = d.create("demo", ["sh", "-c", "echo hi; cat /etc/motd"])
    d.start(c.id)
    c = d.container(c.id)
    assert c.status == "exited" and c.state["ExitCode"] == 0
    assert [t for _, t in d.logs(c.id)] == [
        "hi\n",
        "Welcome! This motd comes from the app layer.\n",
    ]


def test_commit_adds_the_container_diff_as_a_layer(demo_tar: str) -> None:
    w, d = _new()
    imageops.load(d, demo_tar)
    base_iid, _ = d.images.resolve("demo")
    d.create("demo", ["sleep", "infinity"], name="web")
    d.start("web")
    d.exec("web", ["sh", "-c", "echo x > /root/new; rm /hello.sh"], stdout=io.BytesIO(),
           stderr=io.BytesIO())  # fmt: skip
    iid = imageops.commit(d, "web", "demo:v2", message="two changes")
    raw = d.images.config_bytes(iid)
    assert raw is not None and dg.image_id(raw) == iid
    cfg = json.loads(raw)
    base = d.images.config(base_iid)
    assert cfg["rootfs"]["diff_ids"][:-1] == base["rootfs"]["diff_ids"]
    assert list(cfg) == sorted(cfg)  # Image.MarshalJSON sorts top-level keys
    assert cfg["history"][-1]["comment"] == "two changes"
    assert d.images.parent(iid) == base_iid
    layer = d.layers.lookup(d.top_chain(iid) or "")
    assert layer is not None
    with tarfile.open(fileobj=io.BytesIO(d.layers.tar_stream(layer))) as t:
        names = t.getnames()
    assert "root/new" in names and ".wh.hello.sh" in names
    assert not any(n.startswith(("etc/hosts", ".dockerenv")) for n in names)  # init layer excluded
    assert insp.image(d, iid)["RepoTags"] == ["demo:v2"]
    assert w.fs.os.path.exists(f"{HOME}/{layer.cache_id}/diff/root/new")


def test_save_and_reload_keeps_the_image_id(demo_tar: str, tmp_path: object) -> None:
    _w, d = _new()
    imageops.load(d, fixture_path("dive/test-docker-image.tar"))
    iid, _ = d.images.resolve("dive-test")
    for fmt in ("v25", "v1.2"):
        buf = io.BytesIO()
        imageops.save(d, ["dive-test"], buf, fmt)
        path = posixpath.join(str(tmp_path), f"s-{fmt}.tar")
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        _w2, d2 = _new()
        assert imageops.load(d2, path) == ["Loaded image: dive-test:latest"]
        assert d2.images.resolve("dive-test")[0] == iid


def test_rmi_conflicts_and_deletes_layers(demo_tar: str) -> None:
    w, d = _new()
    imageops.load(d, demo_tar)
    iid, _ = d.images.resolve("demo")
    c = d.create("demo", ["sleep", "infinity"])
    with pytest.raises(DaemonError, match=r"^conflict: unable to remove repository reference "):
        imageops.rmi(d, "demo")
    d.start(c.id)
    with pytest.raises(DaemonError, match=r"\(cannot be forced\) - image is being used by running"):
        imageops.rmi(d, dg.hex_of(iid)[:12])
    d.rm(c.id, force=True)
    cache_ids = [x.cache_id for x in d.layers.layers().values()]
    lines = imageops.rmi(d, "demo")
    assert lines[0] == "Untagged: demo:latest" and lines[1] == f"Deleted: {iid}"
    assert len(lines) == 4  # and one "Deleted: <chain id>" per layer
    assert not any(w.fs.os.path.exists(f"{HOME}/{cid}") for cid in cache_ids)
    assert d.images.ids() == []


def test_restart_keeps_the_upper_and_interactive_exec_runs_line_by_line(demo_tar: str) -> None:
    _w, d = _new()
    imageops.load(d, demo_tar)
    d.create("demo", ["sleep", "infinity"], name="web")
    d.start("web")
    d.exec("web", ["touch", "/tmp/kept"], stdout=io.BytesIO(), stderr=io.BytesIO())
    d.stop("web")
    d.start("web")
    typed = iter(["cd /tmp\n", "ls\n", "exit 4\n", "echo never\n"])
    out, err = io.BytesIO(), io.BytesIO()
    code = d.exec("web", ["sh"], stdout=out, stderr=err, lines=lambda: next(typed, ""))
    assert (code, out.getvalue()) == (4, b"kept\n")
    assert err.getvalue() == b"# # # "  # the prompt, on stderr as sh writes it


def test_load_moves_a_tag_with_dockers_message(demo_tar: str) -> None:
    _w, d = _new()
    imageops.load(d, fixture_path("dive/test-docker-image.tar"))
    imageops.tag(d, "dive-test", "demo:latest")
    old, _ = d.images.resolve("dive-test")
    assert imageops.load(d, demo_tar) == [
        f"The image demo:latest already exists, renaming the old one with ID {old} to empty string",
        "Loaded image: demo:latest",
    ]
    assert d.images.refs_for(old) == ["dive-test:latest"]


def test_loading_twice_keeps_reference_counts_balanced(demo_tar: str) -> None:
    w, d = _new()
    imageops.load(d, demo_tar)
    imageops.load(d, demo_tar)
    assert len(d.layers.layers()) == 2
    imageops.rmi(d, "demo")
    assert d.layers.layers() == {}
    assert w.fs.os.listdir(HOME) == ["l"]


def test_progress_callback_reports_each_layer(demo_tar: str) -> None:
    _w, d = _new()
    seen: list[tuple[str, str, int, int]] = []
    imageops.load(d, demo_tar, lambda *a: seen.append(a))
    assert [s[0] for s in seen] == ["Loading layer"] * 4
    assert seen[1][2] == seen[1][3] > 0  # done == total at the end of a layer
    seen.clear()
    imageops.save(d, ["demo"], io.BytesIO(), "v25", lambda *a: seen.append(a))
    assert {s[0] for s in seen} == {"Saving layer"} and len(seen) == 4
