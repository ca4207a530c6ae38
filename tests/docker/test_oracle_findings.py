"""What the real dockerd (tests/docker_oracle) showed the simulated machine got wrong, pinned
here so that the regressions are caught where no daemon can run. Values observed on dockerd
20.10.24 (Debian 12) on kernel 6.18."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from overlaysim.world import load_world
from tests.docker.conftest import Result

Cli = Callable[..., Result]


pytestmark = pytest.mark.usefixtures("as_dockerd_20_10")



def test_create_mounts_the_rootfs_once(dive: Cli, world: str) -> None:
    # dockerd mounts and unmounts a new container's rootfs at create: before the first start
    # its upper dir already has the kernel's uuid xattr and its work dir work/work (mode 0)
    assert dive("docker", "create", "--name", "c1", "--network", "none", "dive-test", "true").code == 0
    data = json.loads(dive("docker", "inspect", "c1").out)[0]["GraphDriver"]["Data"]
    o = load_world(world).fs.os
    assert "trusted.overlay.uuid" in o.listxattr(data["UpperDir"], follow_symlinks=False)
    assert o.stat(data["WorkDir"] + "/work").st_mode & 0o7777 == 0
    assert not o.path.exists(data["MergedDir"])  # removed again at unmount


def test_create_attaches_stdout_and_stderr(dive: Cli) -> None:
    dive("docker", "create", "--name", "c1", "--network", "none", "dive-test", "true")
    dive("docker", "run", "-d", "--name", "c2", "--network", "none", "dive-test", "true")
    cfg = [json.loads(dive("docker", "inspect", n).out)[0]["Config"] for n in ("c1", "c2")]
    assert [(c["AttachStdout"], c["AttachStderr"]) for c in cfg] == [(True, True), (False, False)]


def test_container_error_texts_of_20_10(dive: Cli) -> None:
    cases = {
        ("rm", "nosuch"): (1, "Error: No such container: nosuch\n"),
        ("rm", "-f", "nosuch"): (0, "Error: No such container: nosuch\n"),
        ("exec", "nosuch", "ls"): (1, "Error: No such container: nosuch\n"),
        ("logs", "nosuch"): (1, "Error: No such container: nosuch\n"),
        ("kill", "nosuch"): (1, "Error response from daemon: Cannot kill container: nosuch: "
                                "No such container: nosuch\n"),
        ("stop", "nosuch"): (1, "Error response from daemon: No such container: nosuch\n"),
    }  # fmt: skip
    for argv, want in cases.items():
        r = dive("docker", *argv)
        assert (r.code, r.err) == want, argv
    cid = dive("docker", "create", "--name", "c1", "--network", "none", "dive-test",
               "sleep", "100").out.strip()  # fmt: skip
    r = dive("docker", "create", "--name", "c1", "--network", "none", "dive-test", "true")
    assert r.code == 1 and r.err.startswith('Error response from daemon: Conflict. The container '
                                            'name "/c1" is already in use')  # fmt: skip
    r = dive("docker", "exec", "c1", "ls")
    assert (r.code, r.err) == (1, f"Error response from daemon: Container {cid} is not running\n")
    dive("docker", "start", "c1")
    r = dive("docker", "rm", "c1")
    assert (r.code, r.err) == (1, "Error response from daemon: You cannot remove a running "
                                  f"container {cid}. Stop the container before attempting "
                                  "removal or force remove\n")  # fmt: skip


def test_diff_of_a_dir_replaced_by_a_file_is_one_change(dive: Cli) -> None:
    # dockerd 20.10 (naive ChangesDirs): the old directory's children are not listed when the
    # new path is a file; an emptied, re-created directory lists each old child as deleted
    dive("docker", "run", "-d", "--name", "c1", "--network", "none", "dive-test", "sleep", "100")
    assert dive("docker", "exec", "c1", "sh", "-c", "rm -rf /root && echo a > /root").code == 0
    assert dive("docker", "diff", "c1").out.split("\n") == ["C /root", ""]
    dive("docker", "run", "-d", "--name", "c2", "--network", "none", "dive-test", "sleep", "100")
    dive("docker", "exec", "c2", "sh", "-c", "rm -rf /root/.data && mkdir /root/.data")
    lines = set(dive("docker", "diff", "c2").out.splitlines())
    assert {"C /root", "C /root/.data", "D /root/.data/tag.sh", "D /root/.data/test.sh",
            "D /root/.data/saved.again2.txt"} == lines  # fmt: skip
