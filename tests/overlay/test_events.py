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
