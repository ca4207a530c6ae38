"""A container's life on both machines, step by step: create, start, exec, diff, inspect,
commit, export, save, stop, rm, rmi; the overlay2 tree and the overlay mounts compared after
each step that changes them."""

from __future__ import annotations

import pytest

from overlaysim.testing.dockerd.compare import CONTAINER_FIELDS, IMAGE_FIELDS, Pair
from tests.docker_oracle.conftest import fixture_path

pytestmark = pytest.mark.dockerd

SCRIPT = (
    "echo hi > /root/x; rm /somefile.txt; mkdir -p /a/b/c; chmod 700 /root; "
    "mv /root/saved.txt /tmp/moved; ln -s /tmp/moved /a/link; rm -rf /root/.data; "
    "mkdir /root/.data; echo new > /root/.data/f; touch /etc/passwd; ln /root/x /a/hard"
)


def test_lifecycle_matches_dockerd(pair: Pair) -> None:
    pair.run("load", "-i", fixture_path("dive/test-docker-image.tar"))
    pair.run("create", "--name", "c1", "--network", "none", "dive-test", "sleep", "1000",
             how="ignore")  # fmt: skip
    pair.check_tree("after create")
    pair.run("inspect", "c1", how="json", fields=CONTAINER_FIELDS)
    pair.run("ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.Status}}")
    pair.run("start", "c1")
    pair.check_tree("after start")
    pair.run("exec", "c1", "sh", "-c", SCRIPT)
    pair.run("diff", "c1", how="lines")
    pair.run("inspect", "c1", how="json", fields=CONTAINER_FIELDS)
    pair.check_tree("after exec")
    pair.run("commit", "c1", "snap:1")
    pair.run("image", "inspect", "snap:1", how="json",
             fields=tuple(f for f in IMAGE_FIELDS if f not in ("Id", "Container")))
    pair.run("history", "--format", "{{.CreatedBy}} {{.Size}} {{.Comment}}", "snap:1")
    pair.run("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}")
    pair.check_tree("after commit")
    pair.run("export", "c1", how="tar")
    pair.run("save", "snap:1", how="save")
    pair.run("stop", "-t", "1", "c1")
    pair.check_tree("after stop")
    pair.run("start", "c1")
    pair.run("diff", "c1", how="lines")
    pair.run("kill", "c1")
    pair.run("rm", "c1")
    pair.run("rmi", "snap:1")
    pair.run("rmi", "dive-test")
    pair.check_tree("at the end")
    pair.assert_same()


def test_run_to_completion_matches_dockerd(pair: Pair) -> None:
    pair.run("load", "-i", fixture_path("dive/test-docker-image.tar"))
    pair.run("run", "--name", "once", "--network", "none", "dive-test", "sh", "-c",
             "echo out; echo err >&2; mkdir /made; exit 3")  # fmt: skip
    pair.run("logs", "once")
    pair.run("inspect", "once", how="json", fields=CONTAINER_FIELDS)
    pair.run("diff", "once", how="lines")
    pair.check_tree("after run")
    pair.run("rm", "once")
    pair.assert_same()
