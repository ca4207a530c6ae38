"""manifest(): the same tree read through the real ``os`` and through a HostFS's ``fs.os``
gives the same manifest; hard-link groups, whiteouts, presence-only xattrs, diffs."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from overlaysim import HostFS
from overlaysim.replay.manifest import diff_manifests, encode_value, manifest

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: char 0/0 whiteouts (mknod), "
                                "trusted.* xattrs and chown to other users")  # fmt: skip


def _user_xattrs_work(path: Path) -> bool:
    probe = path / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise
    finally:
        probe.unlink()
    return True


def build_plain(root: Path) -> None:
    """Files, dirs, a symlink, hard links, a fifo, special mode bits: no privileges needed."""
    (root / "d/sub").mkdir(parents=True)
    (root / "d/a.txt").write_bytes(b"alpha\n")
    (root / "d/empty").write_bytes(b"")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "bin/tool", 0o4755)
    (root / "shared").mkdir()
    os.chmod(root / "shared", 0o1777)
    (root / "g").mkdir()
    os.chmod(root / "g", 0o2750)
    os.symlink("d/a.txt", root / "link")
    os.symlink("/nowhere", root / "dangling")
    os.link(root / "d/a.txt", root / "z-hard")
    os.link(root / "d/a.txt", root / "d/sub/b-hard")
    os.mkfifo(root / "fifo", 0o640)
    (root / "big").write_bytes(bytes(range(256)) * 5000)


def build_privileged(root: Path) -> None:
    (root / "w").mkdir()
    os.mknod(root / "w/gone", stat.S_IFCHR | 0, os.makedev(0, 0))
    os.mknod(root / "w/gone2", stat.S_IFCHR | 0, os.makedev(0, 0))
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 1))
    os.setxattr(root / "w", "trusted.overlay.opaque", b"y")
    os.setxattr(root / "w", "trusted.overlay.origin", b"\x00\xfb\x21" + os.urandom(8))
    os.setxattr(root / "w", "trusted.overlay.redirect", b"/top/a")
    os.setxattr(root, "trusted.overlay.uuid", os.urandom(16))
    (root / "owned").write_bytes(b"x")
    os.chown(root / "owned", 1000, 1001)
    os.setxattr(root / "owned", "trusted.overlay.metacopy", b"")


def imported(real: Path) -> tuple[Any, str]:
    fs = HostFS()
    fs.import_tree(str(real), "/x")
    return fs.os, "/x"


def test_real_tree_and_hostfs_import_agree(tmp_path: Path) -> None:
    build_plain(tmp_path)
    if _user_xattrs_work(tmp_path):
        os.setxattr(tmp_path / "d/a.txt", "user.note", b"hello")
        os.setxattr(tmp_path / "d", "user.overlay.origin", b"\x01\x02")
        os.setxattr(tmp_path / "d", "user.overlay.opaque", b"y")
    real = manifest(os, str(tmp_path))
    o, root = imported(tmp_path)
    sim = manifest(o, root)
    assert diff_manifests(real, sim, ("real", "hostfs")) == []
    assert real == sim
    assert list(real) == sorted(real, key=lambda p: () if p == "." else tuple(p.split("/")))
    assert real["."]["type"] == "dir"
    assert real["bin/tool"]["mode"] == "4755"
    assert real["shared"]["mode"] == "1777"
    assert real["g"]["mode"] == "2750"
    assert real["fifo"] == {"type": "fifo", "mode": "0640", "uid": os.geteuid(),
                            "gid": os.getegid(), "nlink": 1}  # fmt: skip
    assert real["link"]["target"] == "d/a.txt"
    assert real["dangling"]["target"] == "/nowhere"
    assert "size" not in real["d"] and "nlink" not in real["d"]
    assert real["big"]["size"] == 256 * 5000
    assert json.loads(json.dumps(real)) == real


@needs_root
def test_privileged_tree_real_vs_hostfs(tmp_path: Path) -> None:
    build_plain(tmp_path)
    build_privileged(tmp_path)
    real = manifest(os, str(tmp_path))
    o, root = imported(tmp_path)
    assert diff_manifests(real, manifest(o, root)) == []
    assert real["w/gone"] == {"type": "chr", "mode": "0000", "uid": 0, "gid": 0,
                              "rdev": [0, 0], "whiteout": True}  # fmt: skip
    assert real["null"]["rdev"] == [1, 3] and "whiteout" not in real["null"]
    assert real["blk"]["type"] == "blk" and real["blk"]["rdev"] == [7, 1]
    assert real["w"]["xattrs"] == {
        "trusted.overlay.opaque": "text:y",
        "trusted.overlay.origin": "present",
        "trusted.overlay.redirect": "text:/top/a",
    }
    assert real["."]["xattrs"] == {"trusted.overlay.uuid": "present"}
    assert real["owned"]["uid"] == 1000 and real["owned"]["gid"] == 1001
    assert real["owned"]["xattrs"] == {"trusted.overlay.metacopy": "text:"}


def test_hostfs_tree_with_whiteouts_and_overlay_xattrs() -> None:
    """The simulator runs as its own root: whiteouts and trusted.* need no real privileges."""
    fs = HostFS()
    o = fs.os
    o.makedirs("/t/a/b")
    o.mknod("/t/a/wh", stat.S_IFCHR | 0, o.makedev(0, 0))
    o.mknod("/t/a/wh2", stat.S_IFCHR | 0, o.makedev(0, 0))
    o.link("/t/a/wh", "/t/a/wh-link")
    o.setxattr("/t/a", "trusted.overlay.opaque", b"y")
    o.setxattr("/t/a/b", "trusted.overlay.origin", b"\x00\xfb")
    o.setxattr("/t/a/b", "trusted.overlay.upper", b"\x00\xfb")
    o.setxattr("/t/a/b", "trusted.overlay.impure", b"y")
    m = manifest(o, "/t")
    assert m["a/wh"] == {"type": "chr", "mode": "0000", "uid": 0, "gid": 0, "rdev": [0, 0],
                         "whiteout": True}  # fmt: skip
    # whiteouts sharing an inode (as the kernel's do) get no link group and no nlink
    assert m["a/wh-link"] == m["a/wh"] == m["a/wh2"]
    assert m["a"]["xattrs"] == {"trusted.overlay.opaque": "text:y"}
    assert m["a/b"]["xattrs"] == {"trusted.overlay.impure": "text:y",
                                  "trusted.overlay.origin": "present",
                                  "trusted.overlay.upper": "present"}  # fmt: skip


def test_hard_link_groups(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/z").write_bytes(b"1")
    os.link(tmp_path / "m/z", tmp_path / "b")
    os.link(tmp_path / "m/z", tmp_path / "m/a")
    (tmp_path / "solo").write_bytes(b"1")
    (tmp_path / "p").write_bytes(b"2")
    os.link(tmp_path / "p", tmp_path / "q")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    (tmp_path / "half").write_bytes(b"3")
    os.link(tmp_path / "half", outside)
    try:
        m = manifest(os, str(tmp_path))
    finally:
        outside.unlink()
    assert {p: m[p].get("link_group") for p in ("b", "m/a", "m/z")} == dict.fromkeys(
        ("b", "m/a", "m/z"), "b")
    assert m["b"]["nlink"] == 3
    assert m["p"]["link_group"] == m["q"]["link_group"] == "p"
    assert "link_group" not in m["solo"] and m["solo"]["nlink"] == 1
    # a link whose other name lies outside the tree: a group of one, nlink tells the rest
    assert m["half"]["link_group"] == "half" and m["half"]["nlink"] == 2
    o, root = imported(tmp_path)
    assert manifest(o, root)["m/z"]["link_group"] == "b"


def test_presence_only_and_value_encoding(tmp_path: Path) -> None:
    fs = HostFS()
    o = fs.os
    o.makedirs("/t/d")
    o.setxattr("/t/d", "user.overlay.origin", b"\x00\x01")
    o.setxattr("/t/d", "user.overlay.uuid", b"\x02" * 16)
    o.setxattr("/t/d", "user.overlay.redirect", b"/a/b")
    o.setxattr("/t/d", "user.overlay.metacopy", b"\x00\x04\x00\x00")
    o.setxattr("/t/d", "user.origin", b"not an overlay one")
    o.setxattr("/t/d", "trusted.overlayfoo.origin", b"\x00")
    m = manifest(o, "/t")["d"]["xattrs"]
    assert m == {
        "trusted.overlayfoo.origin": "hex:00",
        "user.origin": "text:not an overlay one",
        "user.overlay.metacopy": "hex:00040000",
        "user.overlay.origin": "present",
        "user.overlay.redirect": "text:/a/b",
        "user.overlay.uuid": "present",
    }
    # two trees that differ only in a file handle's value are equal
    o.setxattr("/t/d", "user.overlay.origin", b"\x09\x09\x09")
    assert manifest(o, "/t")["d"]["xattrs"] == m
    assert encode_value(b"y") == "text:y"
    assert encode_value(b"") == "text:"
    assert encode_value(b"a\nb") == "hex:610a62"
    assert encode_value(b"\xff") == "hex:ff"


def test_skip_content(tmp_path: Path) -> None:
    (tmp_path / "known").write_bytes(b"k")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/unknown").write_bytes(b"u")
    m = manifest(os, str(tmp_path), skip_content={"d/unknown"})
    assert "sha256" in m["known"]
    assert "sha256" not in m["d/unknown"] and m["d/unknown"]["size"] == 1


def test_diff_manifests_lines(tmp_path: Path) -> None:
    fs = HostFS()
    o = fs.os
    for root in ("/a", "/b"):
        o.makedirs(f"{root}/d")
        with o.fdopen(o.open(f"{root}/d/f", os.O_WRONLY | os.O_CREAT, 0o644), "wb") as f:
            f.write(b"same")
        o.setxattr(f"{root}/d", "trusted.overlay.opaque", b"y")
    a0, b0 = manifest(o, "/a"), manifest(o, "/b")
    assert a0 == b0 and diff_manifests(a0, b0) == []
    o.chmod("/b/d/f", 0o600)
    with o.fdopen(o.open("/b/d/f", os.O_WRONLY | os.O_APPEND), "ab") as f:
        f.write(b"!")
    o.mknod("/a/d/wh", stat.S_IFCHR | 0, o.makedev(0, 0))
    o.symlink("t", "/b/s")
    o.setxattr("/b/d", "trusted.overlay.opaque", b"x")
    o.setxattr("/b/d", "trusted.overlay.redirect", b"/r")
    lines = diff_manifests(manifest(o, "/a"), manifest(o, "/b"), ("kernel", "replay"))
    assert lines[0] == "d: xattr trusted.overlay.opaque kernel=text:y replay=text:x"
    assert lines[1] == "d: xattr trusted.overlay.redirect kernel=(none) replay=text:/r"
    assert lines[2] == "d/f: mode kernel=0644 replay=0600"
    assert lines[3] == "d/f: size kernel=4 replay=5"
    assert lines[4].startswith("d/f: sha256 kernel=")
    assert lines[5] == "d/wh: only in kernel (whiteout)"
    assert lines[6] == "s: only in replay (symlink 0777 -> t)"
    assert len(lines) == 7
