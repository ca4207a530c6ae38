"""explain's "what would happen" checked against a real ``mount -t overlay``.

The same layers are built in a world and on a kernel tmpfs; explain says what an operation
would leave in the upper dir; the kernel then does that operation and its upper dir is
described with the very same function, so the two descriptions must be equal.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest

from overlaysim.explain import explain
from overlaysim.explain.whatif import _state
from overlaysim.world import World
from tests.overlay.oharness import can_mount, kernel_side

WHY = can_mount()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")
PREFIX = "trusted.overlay."


def _build(o: Any, base: str) -> None:
    for d in ("l2/d/sub", "l1/d", "u", "w", "m"):
        o.makedirs(f"{base}/{d}", exist_ok=True)
    for rel, data in (("l2/d/f", b"0123456789" * 10), ("l1/d/g", b"abc"), ("l2/d/sub/h", b"h")):
        fd = o.open(f"{base}/{rel}", os.O_WRONLY | os.O_CREAT, 0o644)
        o.write(fd, data)
        o.close(fd)


def _opts(base: str, extra: str) -> str:
    return f"lowerdir={base}/l1:{base}/l2,upperdir={base}/u,workdir={base}/w" + extra


def _do(o: Any, op: str, path: str) -> str:
    try:
        if op == "write":
            o.close(o.open(path, os.O_WRONLY))
        elif op == "chmod":
            o.chmod(path, 0o644)
        elif op == "rename":
            o.rename(path, path + ".explain")
        elif op == "unlink":
            o.unlink(path)
        elif op == "rmdir":
            o.rmdir(path)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno or 0]


@pytest.mark.parametrize("extra,rel,op", [
    ("", "/d/f", "write"),
    ("", "/d/f", "unlink"),
    ("", "/d/g", "rename"),
    ("", "/d", "rename"),  # EXDEV without redirect_dir
    (",redirect_dir=on", "/d", "rename"),  # a redirect xattr instead
    (",metacopy=on,redirect_dir=on", "/d/f", "chmod"),  # metadata-only copy-up
    (",metacopy=on,redirect_dir=on", "/d/f", "write"),  # full data copy-up
])  # fmt: skip
def test_what_if_matches_the_kernel(extra: str, rel: str, op: str) -> None:
    w = World.new()
    base = "/k"
    _build(w.fs.os, base)
    w.fs.mount("overlay", f"{base}/m", "overlay", _opts(base, extra))
    report = explain(w, f"{base}/m{rel}")
    [said] = [x for x in report["what_if"] if x["op"] == op]
    with kernel_side() as k:
        _build(os, k.base)
        k.mount(_opts(k.base, extra))
        result = _do(os, op, k.mnt + rel)
        assert said["result"].split()[0] == result
        touched = [rel.rsplit("/", 1)[0] or "/", rel] + ([rel + ".explain"] if op == "rename" else [])
        for t in touched:
            if t == "/":
                continue
            kernel = _state(os, f"{k.base}/u{t}", PREFIX)
            claims = [c for c in said["upper"] if c.startswith(f"{t}: ")]
            if kernel is None:
                assert not claims or "removed from upper" in claims[0]
            else:
                assert claims, (t, kernel, said["upper"])
                assert claims[0].endswith(kernel), (claims[0], kernel)
        k.umount()
    if op == "chmod" and "metacopy" in extra:
        [up] = [e for e in said["events"] if e["kind"] == "copy_up" and e["path"].endswith(rel)]
        assert up["detail"]["metadata_only"] and "metacopy" in said["upper"][-1]


def test_provenance_of_a_merged_dir_and_opaque() -> None:
    w = World.new()
    _build(w.fs.os, "/k")
    w.fs.os.makedirs("/k/u/d")
    w.fs.os.setxattr("/k/u/d", PREFIX + "opaque", b"y")
    w.fs.mount("overlay", "/k/m", "overlay", _opts("/k", ""))
    r = explain(w, "/k/m/d/f")
    assert r["merged"] is None
    [hidden] = r["layers_with_path"]
    assert hidden["layer"]["role"] == "lower2" and "opaque directory /d in upper" in hidden["hidden_by"]
    with kernel_side() as k:
        _build(os, k.base)
        os.makedirs(f"{k.base}/u/d")
        os.setxattr(f"{k.base}/u/d", PREFIX + "opaque", b"y")
        k.mount(_opts(k.base, ""))
        assert not os.path.lexists(f"{k.mnt}/d/f")  # the kernel agrees: hidden
        k.umount()
