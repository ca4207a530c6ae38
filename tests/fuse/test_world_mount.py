"""A container of the saved world mounted for real (``overlaysim docker mount NAME DIR``,
``overlaysim mount --world [FILE] --container NAME DIR``): writes land in the container's
upper dir as a kernel overlay on the same layers leaves them, the world is saved once at
unmount (atomically: a failed save or a killed daemon leaves the old file), and every other
command on that world is refused with one line while it is mounted."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import umount as kumount
from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]

WORKLOAD = ("echo hi > {m}/tmp/hi; echo more >> {m}/hello.sh; rm {m}/etc/hostname 2>/dev/null;"
            " mkdir -p {m}/srv/data/sub; echo x > {m}/srv/data/sub/x; rm -r {m}/home;"
            " mv {m}/srv/data {m}/srv/moved; ln {m}/tmp/hi {m}/tmp/hi2")  # fmt: skip


def cmd(w: SimpleNamespace, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = fh.env(w.run)
    env["OVERLAYSIM_WORLD"] = str(w.world)
    return subprocess.run([fh.OVERLAYSIM, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=w.base)  # fmt: skip


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout


def one_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world with the demo image, ``web`` (created) and ``up`` (running), made once."""
    from overlaysim.demo_image import write_demo_archive

    base = tmp_path_factory.mktemp("made")
    tar = base / "demo.tar"
    with open(tar, "wb") as f:
        write_demo_archive(f)
    w = SimpleNamespace(base=base, world=base / "made.world", run=base / "run")
    ok(cmd(w, "docker", "load", "-i", str(tar)))
    ok(cmd(w, "docker", "create", "--name", "web", "demo", "sh"))
    ok(cmd(w, "docker", "run", "-d", "--name", "up", "demo", "sleep", "infinity"))
    return w.world


@pytest.fixture
def w(tmp_path: Path, made: Path) -> Iterator[SimpleNamespace]:
    ns = SimpleNamespace(base=tmp_path, world=tmp_path / "test.world", mnt=tmp_path / "mnt",
                         run=tmp_path / "run")  # fmt: skip
    shutil.copy(made, ns.world)
    ns.mnt.mkdir()
    yield ns
    rec = fh.record(ns.mnt, ns.run)
    if fh.fstype(ns.mnt):
        kumount(str(ns.mnt), 2)  # MNT_DETACH: never leave a mount behind a failed test
    if rec is not None and rec.alive():
        os.kill(rec.pid, signal.SIGKILL)


def test_docker_mount_writes_land_in_the_container_and_docker_diff_shows_them(
    w: SimpleNamespace,
) -> None:
    assert ok(cmd(w, "docker", "diff", "web")) == ""
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    assert fh.fstype(w.mnt) == "fuse.overlaysim"
    assert (w.mnt / ".dockerenv").exists() and (w.mnt / "etc/hostname").exists()  # init layer
    saved = digest(w.world)
    subprocess.run(["sh", "-c", WORKLOAD.format(m=w.mnt)], check=True, timeout=60)
    assert (w.mnt / "hello.sh").read_text().endswith("more\n")
    assert os.stat(w.mnt / "tmp/hi").st_nlink == 2
    # the world is saved at unmount, not before; meanwhile other commands refuse at once
    assert digest(w.world) == saved
    for args in (("docker", "ps"), ("docker", "rm", "-f", "up"), ("docker", "diff", "web")):
        line = one_line(cmd(w, *args, timeout=10))
        assert f"container web is mounted at {w.mnt}" in line, line
        assert f"overlaysim umount {w.mnt} first" in line
    assert "world:" in ok(cmd(w, "world", "info"))  # a reader sees the world as saved
    (w.base / "m2").mkdir()
    again = one_line(cmd(w, "docker", "mount", "up", str(w.base / "m2")))
    assert "container web is mounted" in again
    ok(cmd(w, "umount", str(w.mnt)))
    assert fh.fstype(w.mnt) is None and fh.record(w.mnt, w.run) is None
    assert fh.fstype(w.base / "m2") is None and digest(w.world) != saved
    changes = ok(cmd(w, "docker", "diff", "web")).splitlines()
    assert sorted(changes) == sorted([
        "C /tmp", "A /tmp/hi", "A /tmp/hi2", "C /hello.sh", "D /home", "C /srv",
        "A /srv/moved", "A /srv/moved/sub", "A /srv/moved/sub/x", "C /etc", "D /etc/hostname",
    ])  # fmt: skip
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))  # the writes are in the world
    assert (w.mnt / "tmp/hi").read_text() == "hi\n" and not (w.mnt / "home").exists()
    assert not (w.mnt / "etc/hostname").exists()
    ok(cmd(w, "umount", str(w.mnt)))


def test_a_running_container_keeps_its_rootfs_and_sees_the_writes(w: SimpleNamespace) -> None:
    ok(cmd(w, "mount", "--world", str(w.world), "--container", "up", str(w.mnt)))
    (w.mnt / "tmp/note").write_text("written through FUSE\n")
    ok(cmd(w, "umount", str(w.mnt)))
    assert ok(cmd(w, "docker", "exec", "up", "cat", "/tmp/note")) == "written through FUSE\n"
    assert "Up " in ok(cmd(w, "docker", "ps", "--format", "{{.Names}} {{.Status}}"))
    ok(cmd(w, "docker", "stop", "up"))  # dockerd's own mount of the rootfs is still counted
    assert ok(cmd(w, "docker", "diff", "up")).splitlines() == ["C /tmp", "A /tmp/note"]


def test_mount_world_with_the_usual_world_file(w: SimpleNamespace) -> None:
    """``--world`` alone: $OVERLAYSIM_WORLD (as every world command)."""
    ok(cmd(w, "mount", "--world", "--container", "web", "-o", "ro", str(w.mnt)))
    res = subprocess.run(["touch", str(w.mnt / "x")], capture_output=True, text=True, check=False)
    assert os.strerror(errno.EROFS) in res.stderr
    ok(cmd(w, "umount", str(w.mnt)))
    assert ok(cmd(w, "docker", "diff", "web")) == ""


def test_fusermount_u_then_umount_wait_returns_after_the_world_is_saved(w: SimpleNamespace) -> None:
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    (w.mnt / "tmp/big").write_bytes(os.urandom(8 << 20))
    subprocess.run(["fusermount3", "-u", str(w.mnt)], check=True, timeout=30)
    ok(cmd(w, "umount", "--wait", str(w.mnt)))
    assert fh.record(w.mnt, w.run) is None  # done, not merely unmounted
    assert "A /tmp/big" in ok(cmd(w, "docker", "diff", "web")).splitlines()
    assert ok(cmd(w, "umount", "--wait", str(w.mnt))) == ""  # nothing to wait for


def test_a_killed_daemon_leaves_the_world_as_it_was(w: SimpleNamespace) -> None:
    saved = digest(w.world)
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    (w.mnt / "tmp/lost").write_text("lost\n")
    pid = fh.kill_daemon(w.mnt, w.run, w.mnt / "tmp")
    assert digest(w.world) == saved
    assert ok(cmd(w, "docker", "diff", "web", timeout=20)) == ""  # no lock left behind
    line = one_line(cmd(w, "umount", str(w.mnt), timeout=30))
    assert f"(pid {pid}) died" in line and f"the world file {w.world} was left as it was" in line
    assert fh.fstype(w.mnt) is None and fh.record(w.mnt, w.run) is None


def test_a_full_disk_at_save_leaves_the_old_world_file(w: SimpleNamespace) -> None:
    small = w.base / "small"
    small.mkdir()
    kmount("tmpfs", str(small), "tmpfs", f"size={w.world.stat().st_size * 2 + 65536}")
    try:
        w.world = small / "test.world"
        shutil.copy(w.base / "test.world", w.world)
        saved = digest(w.world)
        ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
        (w.mnt / "tmp/big").write_bytes(os.urandom(1 << 20))  # fits in memory, not on disk
        line = one_line(cmd(w, "umount", str(w.mnt)))
        assert "saving the world at unmount" in line and "full" in line, line
        assert f"{w.world} was left as it was" in line
        assert digest(w.world) == saved and sorted(os.listdir(small)) == ["test.world"]
        assert fh.fstype(w.mnt) is None and fh.record(w.mnt, w.run) is None
        assert ok(cmd(w, "docker", "diff", "web")) == ""
    finally:
        kumount(str(small), 2)


BAD = {
    "no such container": (["docker", "mount", "nope", "{mnt}"],
                          "Error response from daemon: No such container: nope"),
    "no world file": (["mount", "--world", "{base}/none.world", "--container", "web", "{mnt}"],
                      "no world file there"),
    "no container": (["mount", "--world", "{world}", "{mnt}"], "which container?"),
    "world and layers": (["mount", "--world", "{world}", "--container", "web", "--lowerdir",
                          "{base}", "{mnt}"], "drop --lowerdir"),
    "world and live": (["mount", "--world", "{world}", "--container", "web", "--live", "{mnt}"],
                       "--workdir and --live"),
    "overlay option": (["docker", "mount", "-o", "redirect_dir=on", "web", "{mnt}"],
                       "only mount flags"),
    "missing mount point": (["docker", "mount", "web", "{base}/nodir"], "no such directory"),
    "world inside": (["docker", "mount", "web", "{base}"], "inside the mount point"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_are_one_line_and_mount_nothing(w: SimpleNamespace, case: str) -> None:
    args, expected = BAD[case]
    saved = digest(w.world)
    argv = [a.format(base=w.base, mnt=w.mnt, world=w.world) for a in args]
    line = one_line(cmd(w, *argv))
    assert expected.format(base=w.base) in line, line
    assert fh.fstype(w.mnt) is None and fh.fstype(w.base) is None
    assert digest(w.world) == saved


def _export(world: Path, sim_dir: str, real: Path) -> None:
    from overlaysim.world import load_world

    load_world(world).fs.export_tree(sim_dir, real, exact=True)


def test_the_container_upper_dir_is_the_one_a_kernel_overlay_leaves(w: SimpleNamespace) -> None:
    """The same program through ``docker mount`` and on a kernel overlay of the container's
    own layers (exported from the world): the upper dirs compare equal (fharness rules)."""
    from overlaysim.docker.daemon import Daemon
    from overlaysim.world import load_world

    world = load_world(w.world)
    docker = Daemon(world.fs, world.meta, world.seed)
    mount_id = docker.layers.get_mount_id(docker.container("web").id)
    md = docker.driver.mount_data(mount_id)
    home = docker.driver.home
    real_home = w.base / "overlay2"
    world.fs.export_tree(home, real_home, exact=True)
    kmnt = w.base / "kmnt"
    kmnt.mkdir()
    data = md.data.replace(home, str(real_home))
    cwd = os.getcwd()
    os.chdir(real_home if md.relative else "/")
    try:
        kmount("overlay", str(kmnt), "overlay", data)
    finally:
        os.chdir(cwd)
    try:
        subprocess.run(["sh", "-c", WORKLOAD.format(m=kmnt)], check=True, timeout=60)
    finally:
        kumount(str(kmnt))
    kernel = fh.upper_view(real_home / mount_id / "diff")

    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    subprocess.run(["sh", "-c", WORKLOAD.format(m=w.mnt)], check=True, timeout=60)
    ok(cmd(w, "umount", str(w.mnt)))
    _export(w.world, f"{home}/{mount_id}/diff", w.base / "fuse-diff")
    assert fh.diff(kernel, fh.upper_view(w.base / "fuse-diff")) == []
    assert len(kernel.entries) > 8  # the workload did reach the upper dir


def test_a_world_replaced_while_mounted_is_not_written_into(w: SimpleNamespace) -> None:
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    (w.mnt / "tmp/x").write_text("x\n")
    assert "container web is mounted" in one_line(cmd(w, "world", "reset"))
    ok(cmd(w, "world", "reset", "--force"))  # the user insists: a fresh machine
    fresh = digest(w.world)
    line = one_line(cmd(w, "umount", str(w.mnt)))
    assert "was replaced while mounted" in line and "writes were dropped" in line
    assert digest(w.world) == fresh and fh.fstype(w.mnt) is None


def test_lazy_umount_under_load_saves_the_world_when_the_writer_closes(w: SimpleNamespace) -> None:
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    log = w.mnt / "tmp/log"
    writer = subprocess.Popen(["sh", "-c", f"exec 3>>{log}; for i in $(seq 1 30); do "
                               "echo line $i >&3; sleep 0.03; done"])  # fmt: skip
    try:
        fh.wait_for(lambda: log.exists() and log.stat().st_size > 0, what="the writer")
        assert "target is busy" in one_line(cmd(w, "umount", str(w.mnt)))
        ok(cmd(w, "umount", "--lazy", str(w.mnt)))
        assert fh.fstype(w.mnt) is None
        assert writer.wait(timeout=60) == 0
    finally:
        writer.kill()
    ok(cmd(w, "umount", "--wait", str(w.mnt)))
    ok(cmd(w, "docker", "mount", "web", str(w.mnt)))
    assert log.read_text() == "".join(f"line {i}\n" for i in range(1, 31))
    ok(cmd(w, "umount", str(w.mnt)))
