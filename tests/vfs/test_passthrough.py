"""The passthrough type ``hostdir``: real directories mapped into HostFS, as a bind mount.

Two parts. The conformance suite (tests/conformance, the scenarios every implementation must
answer as the kernel's tmpfs does) runs on a HostFS whose base dir is a ``hostdir`` mapping
of a real tmpfs: all 68 scenarios agree with the kernel. Then what is particular to a mapping:
one object per real inode, names that follow renames, real whiteouts and trusted xattrs,
read-only mappings, the bounded descriptor pool, and copy-up across filesystem types.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overlaysim import HostFS
from overlaysim.vfs.passthrough import PassNode
from overlaysim.vfs.passthrough_sys import FD_POOL
from tests.conformance import harness as H
from tests.conformance.catalog import all_scenarios
from tests.conformance.recorder import Recorder

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mknod 0/0, trusted.* xattrs")


@functools.cache
def _kernel_reason() -> str | None:
    return H.kernel_unavailable()


def run_passthrough(sc: H.Scenario) -> dict[str, Any]:
    """``sc`` on a HostFS whose base dir lives on a fresh real tmpfs mapped with ``hostdir``
    (its parent is the mapping, so the base is a plain dir as on the kernel side)."""
    top = tempfile.mkdtemp(prefix="osim-pconf-")
    H.mount_tmpfs(top)
    try:
        os.chmod(top, 0o755)
        fs = HostFS()
        base = H.HOSTFS_BASE
        fs.os.umask(H.UMASK)
        fs.os.makedirs(os.path.dirname(base))
        fs.mount(top, os.path.dirname(base), "hostdir", "rw")
        fs.os.mkdir(base)
        fs.os.chmod(base, 0o755)
        for rel in sc.mounts:
            fs.os.makedirs(base + "/" + rel)
            fs.mount("tmpfs", base + "/" + rel, "tmpfs")
        rec = Recorder(base)
        if sc.setup is not None:
            sc.setup(fs.os, base, rec)
        o = fs.os
        if sc.user:
            o = fs.as_user(uid=H.USER_UID, gid=H.USER_GID, groups=H.USER_GROUPS).os
            o.umask(H.UMASK)
        sc.fn(o, base, rec)
        obs: dict[str, Any] = H.json.loads(H.json.dumps(rec.obs))
        return obs
    finally:
        FD_POOL.clear()
        H.umount(top)
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.kernel
@pytest.mark.parametrize("name", [sc.name for sc in all_scenarios()])
def test_conformance_scenario_on_a_mapped_tmpfs(name: str) -> None:
    why = _kernel_reason()
    if why is not None:
        pytest.skip(why)
    sc = H.SCENARIOS[name]
    d = H.diff(H.run_kernel(sc), run_passthrough(sc))
    assert not d, f"scenario {name} differs on hostdir:\n{d}"


# --- what is particular to a mapping -------------------------------------------------------
@pytest.fixture
def real(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "real"
    (d / "dir/sub").mkdir(parents=True)
    (d / "f").write_bytes(b"data")
    (d / "dir/sub/g").write_bytes(b"g")
    yield d
    FD_POOL.clear()


def _mapped(real: Path, opts: str = "rw") -> HostFS:
    fs = HostFS()
    fs.os.mkdir("/m")
    fs.mount(str(real), "/m", "hostdir", opts)
    return fs


def _node(fs: HostFS, path: str) -> PassNode:
    node = fs.os._resolve(path)[1]
    assert isinstance(node, PassNode)
    return node


def test_one_object_per_real_inode_with_real_numbers(real: Path) -> None:
    fs = _mapped(real)
    os.link(real / "f", real / "dir/hard")
    a, b = _node(fs, "/m/f"), _node(fs, "/m/dir/hard")
    assert a is b and a is _node(fs, "/m/f")
    s = fs.os.stat("/m/f")
    assert s.st_ino == os.stat(real / "f").st_ino and s.st_nlink == 2
    assert s.st_dev == a.sb.dev != os.stat(real).st_dev  # the simulation's device numbering
    fs.os.unlink("/m/f")  # the other name still reaches the inode
    assert fs.os.stat("/m/dir/hard").st_nlink == 1 and _node(fs, "/m/dir/hard") is a
    with fs.open("/m/dir/hard", "rb") as f:
        assert f.read() == b"data"


def test_names_follow_renames_and_changes_reach_the_disk(real: Path) -> None:
    fs = _mapped(real)
    o = fs.os
    g = _node(fs, "/m/dir/sub/g")
    o.rename("/m/dir", "/m/moved")
    assert g.path() == str(real / "moved/sub/g")
    with fs.open("/m/moved/sub/g", "ab") as f:
        f.write(b"+")
    assert (real / "moved/sub/g").read_bytes() == b"g+"
    o.mkdir("/m/new", 0o750)
    o.symlink("moved", "/m/link")
    assert stat.S_IMODE(os.stat(real / "new").st_mode) == 0o750
    assert os.readlink(real / "link") == "moved" and o.readlink("/m/link") == "moved"
    assert sorted(o.listdir("/m")) == sorted(os.listdir(real))


def test_errors_are_the_real_kernels(real: Path) -> None:
    o = _mapped(real).os
    for call, code in ((lambda: o.mkdir("/m/dir"), errno.EEXIST),
                       (lambda: o.rmdir("/m/dir"), errno.ENOTEMPTY),
                       (lambda: o.unlink("/m/nothing"), errno.ENOENT),
                       (lambda: o.listdir("/m/f"), errno.ENOTDIR)):  # fmt: skip
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == code


@ROOT_ONLY
def test_whiteouts_and_trusted_xattrs_are_real(real: Path) -> None:
    fs = _mapped(real)
    o = fs.os
    o.renameat2("/m/f", "/m/f2", 4)  # RENAME_WHITEOUT
    s = os.lstat(real / "f")
    assert stat.S_ISCHR(s.st_mode) and s.st_rdev == 0
    o.symlink("f2", "/m/l")
    o.setxattr("/m/l", "trusted.overlay.redirect", b"/x", follow_symlinks=False)
    assert os.getxattr(real / "l", "trusted.overlay.redirect", follow_symlinks=False) == b"/x"
    o.mknod("/m/c", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert os.lstat(real / "c").st_rdev == os.makedev(1, 3)


def test_a_read_only_mapping_refuses_changes(real: Path) -> None:
    o = _mapped(real, "ro").os
    before = sorted(os.listdir(real))
    for call in (lambda: o.mkdir("/m/x"), lambda: o.unlink("/m/f"),
                 lambda: o.open("/m/f", os.O_WRONLY)):  # fmt: skip
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EROFS
    assert sorted(os.listdir(real)) == before and (real / "f").read_bytes() == b"data"


@pytest.mark.parametrize(("source", "opts", "code"), [
    ("relative/dir", "", errno.EINVAL), ("/nonexistent/osim", "", errno.ENOENT),
    ("FILE", "", errno.ENOTDIR), ("DIR", "bogus", errno.EINVAL),
])  # fmt: skip
def test_mount_refusals(real: Path, source: str, opts: str, code: int) -> None:
    fs = HostFS()
    fs.os.mkdir("/m")
    src = {"FILE": str(real / "f"), "DIR": str(real)}.get(source, source)
    with pytest.raises(OSError) as e:
        fs.mount(src, "/m", "hostdir", opts)
    assert e.value.errno == code


def test_descriptors_stay_bounded_and_unlinked_open_files_keep_their_data(real: Path) -> None:
    fs = _mapped(real)
    o = fs.os
    for i in range(FD_POOL.cap + 50):
        (real / f"n{i}").write_bytes(b"%d" % i)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(FD_POOL.cap + 50):
        fd = o.open(f"/m/n{i}", os.O_RDONLY)
        assert o.read(fd, 10) == b"%d" % i
        o.close(fd)
    assert len(FD_POOL.fds) <= FD_POOL.cap
    assert len(os.listdir("/proc/self/fd")) <= before + FD_POOL.cap
    fd = o.open("/m/tmp", os.O_CREAT | os.O_RDWR, 0o600)
    o.unlink("/m/tmp")
    o.write(fd, b"still here")
    assert o.pread(fd, 20, 0) == b"still here" and o.fstat(fd).st_nlink == 0
    o.close(fd)


def test_o_tmpfile_is_a_real_unnamed_file(real: Path) -> None:
    o = _mapped(real).os
    fd = o.open("/m/dir", os.O_TMPFILE | os.O_RDWR, 0o640)
    o.write(fd, b"anon")
    assert os.listdir(real / "dir") == ["sub"]
    s = o.fstat(fd)
    assert (s.st_nlink, s.st_size, stat.S_IMODE(s.st_mode)) == (0, 4, 0o640)
    assert o.pread(fd, 10, 0) == b"anon"
    o.close(fd)


@ROOT_ONLY
@pytest.mark.parametrize("upper_on", ["hostdir", "tmpfs", "both"])
def test_copy_up_across_filesystem_types_copies_the_bytes(real: Path, upper_on: str) -> None:
    """Lower on the real disk, upper in memory (or the reverse): no blob can be shared, the
    bytes are copied (in chunks), and the lower file is never written. Both on the real
    disk: the real kernel copies them (copy_file_range)."""
    fs = HostFS()
    o = fs.os
    for d in ("/l", "/uw", "/m"):
        o.mkdir(d)
    (real.parent / "uw").mkdir()
    if upper_on == "hostdir":  # lower in memory, upper on the real disk
        with fs.open("/l/f", "wb") as f:
            f.write(b"x" * 3_000_000)
        fs.mount(str(real.parent / "uw"), "/uw", "hostdir", "rw")
    else:  # lower on the real disk, upper in memory (or on the disk too)
        (real / "f").write_bytes(b"x" * 3_000_000)
        atime = (real / "f").stat().st_atime_ns
        fs.mount(str(real), "/l", "hostdir", "ro")
        if upper_on == "both":
            fs.mount(str(real.parent / "uw"), "/uw", "hostdir", "rw")
        else:
            fs.mount("tmpfs", "/uw", "tmpfs")
    o.mkdir("/uw/u")
    o.mkdir("/uw/w")
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/uw/u,workdir=/uw/w")
    with fs.open("/m/f", "ab") as f:
        f.write(b"!")
    with fs.open("/uw/u/f", "rb") as f:
        assert f.read() == b"x" * 3_000_000 + b"!"
    with fs.open("/l/f", "rb") as f:
        assert len(f.read()) == 3_000_000
    ev = [e for e in fs.events if e.kind == "copy_up"][-1]
    assert ev.detail["bytes"] == 3_000_000
    if upper_on != "tmpfs":
        assert (real.parent / "uw/u/f").read_bytes() == b"x" * 3_000_000 + b"!"
    if upper_on != "hostdir":  # the real lower file is untouched, atime included (O_NOATIME)
        s = (real / "f").stat()
        assert (s.st_size, s.st_atime_ns) == (3_000_000, atime)
