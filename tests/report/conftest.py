"""A world holding dive's test image, a created container and one that ran a command."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from overlaysim.cli import main
from overlaysim.cli.world_opt import ENVVAR

FIXTURE = "/work/shared/fixtures/dive/test-docker-image.tar"


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not os.path.exists(FIXTURE):
        pytest.skip(f"dive's test image is not present ({FIXTURE})")
    path = str(tmp_path_factory.mktemp("w") / "w.world")
    r = CliRunner(env={ENVVAR: path})
    for args in (["docker", "load", "-i", FIXTURE], ["docker", "create", "--name", "web",
                 "dive-test", "sh"], ["docker", "run", "--name", "ran", "dive-test", "sh", "-c",
                 "echo hi >> /root/saved.txt; rm /somefile.txt"]):  # fmt: skip
        res = r.invoke(main, args)
        assert res.exit_code == 0, res.output
    return path
