"""Fixtures for overlay2 tests: a fresh HostFS with a driver and layer store, demo layer tars."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from overlaysim import HostFS, demo_layers
from overlaysim.image.export import layer_tar
from overlaysim.overlay2 import IdGen, LayerStore, Overlay2Driver
from tests.image import tarbuild as tb

HOME = "/var/lib/docker/overlay2"


@dataclass
class Docker:
    fs: HostFS
    drv: Overlay2Driver
    store: LayerStore

    def again(self) -> Docker:
        """New driver and store objects on the same machine: the next command's process."""
        drv = Overlay2Driver(self.fs, ids=IdGen(999))
        return Docker(self.fs, drv, LayerStore(self.fs, drv))


def new_docker(seed: int = 1) -> Docker:
    fs = HostFS()
    drv = Overlay2Driver(fs, ids=IdGen(seed))
    return Docker(fs, drv, LayerStore(fs, drv))


@pytest.fixture
def dk() -> Docker:
    return new_docker()


def demo_tars() -> tuple[bytes, bytes]:
    """The embedded ubuntu-like base layer and the app layer, as Docker would tar them."""
    scratch = HostFS()
    demo_layers.build_base(scratch.os, "/base")
    demo_layers.build_app(scratch.os, "/app")
    base, app = io.BytesIO(), io.BytesIO()
    layer_tar(scratch.os, "/base", base)
    layer_tar(scratch.os, "/app", app)
    return base.getvalue(), app.getvalue()


def whiteout_tar() -> bytes:
    """A layer deleting /etc/motd and /var/log, replacing /usr/share, adding /srv/new."""
    return tb.tar(
        tb.dir_("etc/"),
        tb.member("etc/.wh.motd", mode=0o600),
        tb.dir_("var/"),
        tb.member("var/.wh.log", mode=0o600),
        tb.dir_("usr/"),
        tb.dir_("usr/share/", mode=0o750),
        tb.member("usr/share/.wh..wh..opq", mode=0o750),
        tb.member("usr/share/only", b"only me\n"),
        tb.dir_("srv/"),
        tb.member("srv/new", b"new file\n", mode=0o640, uid=1000, gid=1000),
    )


def read(fs: HostFS, path: str) -> bytes:
    with fs.open(path, "rb") as f:
        data: bytes = f.read()
    return data
