"""import_tree / export_tree: pyfakefs stands in for the real disk where no root power is needed;
devices, owners and trusted xattrs need a real directory as root."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator

import pytest

from overlaysim import HostFS

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="devices, chown and trusted.* xattrs need root")


def test_import_from_fake_disk(fs: object) -> None:  # pyfakefs's `fs` fixture patches os
    os.makedirs("/src/d/e")
    with open("/src/d/f", "wb") as f:
        f.write(b"payload")
    os.link("/src/d/f", "/src/h")
    os.symlink("../nowhere", "/src/d/s")
    os.chmod("/src/d/f", 0o640)
    os.utime("/src/d/f", ns=(1_000_000_123, 2_000_000_456))
    os.utime("/src/d", ns=(5_000_000_000, 6_000_000_000))
    hfs = HostFS()
    hfs.import_tree("/src", "/dst")
    o = hfs.os
    assert sorted(o.listdir("/dst")) == ["d", "h"]
    assert sorted(o.listdir("/dst/d")) == ["e", "f", "s"]
    st_f = o.lstat("/dst/d/f")
    assert stat.S_IMODE(st_f.st_mode) == 0o640
    assert (st_f.st_atime_ns, st_f.st_mtime_ns) == (1_000_000_123, 2_000_000_456)
    assert st_f.st_nlink == 2 and o.lstat("/dst/h").st_ino == st_f.st_ino
    assert hfs.open("/dst/h", "rb").read() == b"payload"
    assert o.readlink("/dst/d/s") == "../nowhere"
    assert o.lstat("/dst/d").st_mtime_ns == 6_000_000_000  # set after the children


def test_import_rejects_a_file(fs: object) -> None:
    with open("/plain", "w") as f:
        f.write("x")
    with pytest.raises(NotADirectoryError):
        HostFS().import_tree("/plain", "/dst")


@pytest.fixture
def realdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield d


def _sample(hfs: HostFS) -> None:
    o = hfs.os
    o.makedirs("/src/d/e")
    with hfs.open("/src/d/f", "w") as f:
        f.write("data")
    o.link("/src/d/f", "/src/h")
    o.symlink("/etc/passwd", "/src/d/abs")  # must never be followed on export
    o.mknod("/src/wh", stat.S_IFCHR, 0)
    o.mknod("/src/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    o.setxattr("/src/d", "trusted.overlay.opaque", b"y")
    o.setxattr("/src/d/f", "user.note", b"hi")
    o.chmod("/src/d/f", 0o4755)
    o.chown("/src/d/e", 1234, 5678)
    o.utime("/src/d/f", ns=(1, 2_000_000_000))


@needs_root
def test_export_is_hardened_by_default(realdir: str) -> None:
    hfs = HostFS()
    _sample(hfs)
    out = os.path.join(realdir, "x")
    report = hfs.export_tree("/src", out)
    assert stat.S_IMODE(os.lstat(out).st_mode) == 0o700
    assert os.readlink(f"{out}/d/abs") == "/etc/passwd"
    assert stat.S_ISCHR(os.lstat(f"{out}/wh").st_mode) and os.lstat(f"{out}/wh").st_rdev == 0
    assert not os.path.lexists(f"{out}/null")  # device nodes need devices=True
    assert stat.S_IMODE(os.lstat(f"{out}/d/f").st_mode) == 0o755  # setuid dropped
    assert any("setuid" in f for f in report.findings)
    assert any("null" in f for f in report.findings)
    assert os.getxattr(f"{out}/d", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(f"{out}/d/f", "user.note") == b"hi"
    assert os.lstat(f"{out}/h").st_ino == os.lstat(f"{out}/d/f").st_ino
    assert os.lstat(f"{out}/d/e").st_uid == 1234
    assert os.lstat(f"{out}/d/f").st_mtime_ns == 2_000_000_000


@needs_root
def test_export_refuses_an_existing_directory(realdir: str) -> None:
    hfs = HostFS()
    _sample(hfs)
    with pytest.raises(FileExistsError):
        hfs.export_tree("/src", realdir)


@needs_root
def test_exact_round_trip(realdir: str) -> None:
    hfs = HostFS()
    _sample(hfs)
    hfs.os.chmod("/src", 0o751)
    out = os.path.join(realdir, "x")
    hfs.export_tree("/src", out, exact=True)
    assert stat.S_IMODE(os.lstat(out).st_mode) == 0o751
    assert os.lstat(f"{out}/null").st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(os.lstat(f"{out}/d/f").st_mode) == 0o4755
    back = HostFS()
    back.import_tree(out, "/back")

    def tree(h: HostFS, top: str) -> list[tuple[object, ...]]:
        rows = []
        for dirpath, dirs, files in h.os.walk(top):
            for name in sorted(dirs + files):
                p = f"{dirpath}/{name}"
                s = h.os.lstat(p)
                xs = sorted(h.os.listxattr(p, follow_symlinks=False))
                rows.append((p[len(top):], s.st_mode, s.st_uid, s.st_gid, s.st_size, s.st_rdev,
                             s.st_nlink, s.st_mtime_ns if not stat.S_ISDIR(s.st_mode) else 0, xs))
        return sorted(rows)

    assert tree(hfs, "/src") == tree(back, "/back")
