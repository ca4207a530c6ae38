"""The engine's events carry the facts reports are built from (bytes copied, reason)."""

from __future__ import annotations

import os

from overlaysim import HostFS


def _fs() -> HostFS:
    fs = HostFS()
    o = fs.os
    for d in ("/l", "/u", "/w", "/m"):
        o.mkdir(d)
    for name in ("a", "b", "c"):
        with fs.open(f"/l/{name}", "wb") as f:
            f.write(b"x" * 5000)
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    return fs


def test_copy_up_for_o_trunc_copies_no_data() -> None:
    # ovl_copy_up_one sets the size to 0 for O_TRUNC: measured on 6.18, a 400 MiB lower
    # file opens O_WRONLY|O_TRUNC in 0.3 ms and O_WRONLY|O_APPEND in 1.6 s.
    fs = _fs()
    o = fs.os
    o.close(o.open("/m/a", os.O_WRONLY | os.O_TRUNC))
    o.close(o.open("/m/b", os.O_WRONLY | os.O_APPEND))
    ups = {e.path: e for e in fs.events.of("copy_up")}
    assert ups["/m/a"].detail["bytes"] == 0
    assert ups["/m/a"].reason == "open(O_WRONLY|O_TRUNC)"
    assert ups["/m/b"].detail["bytes"] == 5000
    assert o.stat("/u/a").st_size == 0 and o.stat("/u/b").st_size == 5000
    assert o.stat("/m/a").st_size == 0


def test_truncate_by_path_copies_the_data_first() -> None:
    fs = _fs()
    fs.os.truncate("/m/c", 10)
    (ev,) = fs.events.of("copy_up")
    assert ev.detail["bytes"] == 5000
    assert fs.os.stat("/u/c").st_size == 10


def _metacopy_fs() -> HostFS:
    fs = HostFS()
    o = fs.os
    for d in ("/l", "/u", "/w", "/m"):
        o.mkdir(d)
    for name in ("a", "b", "c", "d"):
        with fs.open(f"/l/{name}", "wb") as f:
            f.write(b"x" * 5000)
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w,metacopy=on")
    return fs


def test_metacopy_copy_up_events() -> None:
    fs = _metacopy_fs()
    o = fs.os
    o.chmod("/m/a", 0o600)
    o.rename("/m/b", "/m/b2")
    o.close(o.open("/m/c", os.O_WRONLY))  # no metacopy for an open for writing
    (meta_a, meta_b, full_c) = fs.events.of("copy_up")
    for ev in (meta_a, meta_b):
        assert (ev.detail["bytes"], ev.detail["metadata_only"]) == (0, True)
    assert (full_c.detail["bytes"], full_c.detail["metadata_only"]) == (5000, False)
    assert o.stat("/u/a").st_size == 5000 and o.stat("/u/a").st_blocks == 0
    assert o.getxattr("/u/a", "trusted.overlay.metacopy") == b""
    assert o.stat("/m/a").st_blocks == o.stat("/l/a").st_blocks  # from the data, not the hole
    (redirect,) = fs.events.of("redirect")
    assert (redirect.path, redirect.detail["redirect"]) == ("/m/b2", "b")


def test_data_copy_up_of_a_metacopy_file_is_its_own_event() -> None:
    fs = _metacopy_fs()
    o = fs.os
    o.chown("/m/a", 1, 1)
    o.chown("/m/d", 1, 1)
    mark = len(fs.events)
    o.close(o.open("/m/a", os.O_WRONLY))
    o.close(o.open("/m/d", os.O_RDONLY | os.O_TRUNC))
    data_a, data_d = (e for e in fs.events.since(mark) if e.kind == "copy_up")
    assert data_a.reason == "data copy-up of a metacopy file (open(O_WRONLY))"
    assert (data_a.detail["bytes"], data_a.detail["metadata_only"]) == (5000, False)
    assert data_d.reason == "data copy-up of a metacopy file (open(O_RDONLY|O_TRUNC))"
    assert data_d.detail["bytes"] == 0
    assert "trusted.overlay.metacopy" not in o.listxattr("/u/a")
    with fs.open("/u/a", "rb") as f:
        assert f.read() == b"x" * 5000
    assert o.stat("/m/d").st_size == 0
