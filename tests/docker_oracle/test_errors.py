"""Common mistakes: the real daemon's error text and exit code are the specification."""

from __future__ import annotations

import pytest

from overlaysim.testing.dockerd.compare import Pair
from tests.docker_oracle.conftest import fixture_path

pytestmark = pytest.mark.dockerd


def test_errors_match_dockerd(pair: Pair) -> None:
    for argv in (["start", "nosuch"], ["stop", "nosuch"], ["rm", "nosuch"], ["exec", "nosuch", "ls"],
                 ["inspect", "nosuch"], ["diff", "nosuch"], ["logs", "nosuch"], ["rmi", "nosuch"],
                 ["image", "inspect", "nosuch"], ["history", "nosuch"], ["kill", "nosuch"],
                 ["export", "nosuch"], ["commit", "nosuch"], ["save", "nosuch"],
                 ["run", "--network", "none", "nosuch"], ["load", "-i", "/nonexistent.tar"]):
        pair.run(*argv, how="code" if argv[0] == "run" else "text")
    pair.run("load", "-i", fixture_path("dive/test-docker-image.tar"))
    pair.run("create", "--name", "c1", "--network", "none", "dive-test", "sleep", "1000", how="ignore")
    pair.run("create", "--name", "c1", "--network", "none", "dive-test", "true")  # name conflict
    pair.run("exec", "c1", "ls")  # exec in a container that is not running
    pair.run("rmi", "dive-test")  # image in use by a container
    pair.run("start", "c1")
    pair.run("rm", "c1")  # removing a running container
    pair.run("rm", "-f", "c1")
    pair.run("rmi", "dive-test")
    pair.check_tree()
    pair.assert_same()
