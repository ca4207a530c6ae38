"""nfs_export=on on the simulator alone (no kernel needed): the rules the kernel scenarios of
scenarios_nfs_export.py measured on Linux 6.18, so that they hold where mounting is refused."""

from __future__ import annotations

import errno
import os
import struct

import pytest

from overlaysim import HostFS

AT_HANDLE_FID = 0x200
OPTS = "lowerdir=/t/l1:/t/l2,upperdir=/t/u,workdir=/t/w,nfs_export=on"


def _setup(extra: str = "nfs_export=on") -> HostFS:
    fs = HostFS()
    o = fs.os
    for d in ("l1/a/b", "l1/e", "l2", "u", "w", "m"):
        o.makedirs(f"/t/{d}")
    with fs.open("/t/l1/a/b/f", "w") as f:
        f.write("x")
    with fs.open("/t/l1/k", "w") as f:
        f.write("k")
    fs.mount("overlay", "/t/m", "overlay",
             f"lowerdir=/t/l1:/t/l2,upperdir=/t/u,workdir=/t/w,{extra}")  # fmt: skip
    return fs


def _decode(fs: HostFS, handle: bytes, flags: int = os.O_RDONLY) -> bytes:
    o = fs.os
    mfd = o.open("/t/m", os.O_RDONLY)
    try:
        fd = o.open_by_handle_at(mfd, handle, flags)
    finally:
        o.close(mfd)
    try:
        return o.read(fd, 100)
    finally:
        o.close(fd)


def test_handle_layout_upper_and_lower() -> None:
    fs = _setup()
    root, mnt_id = fs.os.name_to_handle_at(None, "/t/m")
    low, _ = fs.os.name_to_handle_at(None, "/t/m/a/b/f")
    nbytes, htype = struct.unpack_from("<Ii", root)
    assert (nbytes, htype) == (36, 0xF8)
    assert root[8:16] == bytes([0, 0, 0, 0, 0xFB, 33, 4, 1])  # padding, ovl_fb, flag 4: upper
    assert low[8 + 6] == 0  # a lower handle
    assert mnt_id == next(m for m in fs.mount_table.order if m.fstype == "overlay").id


def test_decode_survives_copy_up_and_remount_and_goes_stale_on_unlink() -> None:
    fs = _setup()
    o = fs.os
    hk, _ = o.name_to_handle_at(None, "/t/m/k")
    o.chmod("/t/m/k", 0o600)  # indexed copy-up: same (lower) handle
    assert o.name_to_handle_at(None, "/t/m/k")[0] == hk
    assert o.stat("/t/m/k").st_nlink == 1  # the index link is not counted in this mount
    fs.umount("/t/m")
    fs.mount("overlay", "/t/m", "overlay", OPTS)
    assert _decode(fs, hk) == b"k"
    assert o.stat("/t/m/k").st_nlink == 2  # after a remount: the upper inode's count
    he, _ = o.name_to_handle_at(None, "/t/m/e")
    o.rmdir("/t/m/e")
    with pytest.raises(OSError) as exc:
        _decode(fs, he)
    assert exc.value.errno == errno.ESTALE
    entries = [o.lstat(f"/t/w/index/{n}") for n in o.listdir("/t/w/index")]
    assert any(st.st_mode == 0o20000 and st.st_rdev == 0 for st in entries)  # whiteout left


def test_disconnected_write_goes_to_the_index_only() -> None:
    fs = _setup()
    o = fs.os
    hf, _ = o.name_to_handle_at(None, "/t/m/a/b/f")
    fs.umount("/t/m")
    fs.mount("overlay", "/t/m", "overlay", OPTS)
    mfd = o.open("/t/m", os.O_RDONLY)
    fd = o.open_by_handle_at(mfd, hf, os.O_WRONLY)
    o.write(fd, b"F")
    o.close(fd)
    o.close(mfd)
    assert o.listdir("/t/u") == []
    with fs.open("/t/m/a/b/f") as f:
        assert f.read() == "F"


def test_refusals() -> None:
    fs = _setup("index=on")
    o = fs.os
    with pytest.raises(OSError) as exc:
        o.name_to_handle_at(None, "/t/m/k")
    assert exc.value.errno == errno.EOPNOTSUPP
    fid, _ = o.name_to_handle_at(None, "/t/m/k", AT_HANDLE_FID)
    with pytest.raises(OSError) as exc:
        _decode(fs, fid)
    assert exc.value.errno == errno.ESTALE
    fs2 = _setup()
    h, _ = fs2.os.name_to_handle_at(None, "/t/m/k")
    with pytest.raises(OSError) as exc:
        fs2.os.name_to_handle_at(None, "/t/m/k", 0, 32)
    assert exc.value.errno == errno.EOVERFLOW
    user = fs2.as_user(1000, 1000).os
    mfd = user.open("/t/m", os.O_RDONLY)
    with pytest.raises(OSError) as exc:
        user.open_by_handle_at(mfd, h, os.O_RDONLY)
    assert exc.value.errno == errno.EPERM
    user.close(mfd)


def test_tmpfs_handles() -> None:
    fs = _setup()
    o = fs.os
    h, _ = o.name_to_handle_at(None, "/t/l1/k")
    assert struct.unpack_from("<Ii", h) == (12, 1)
    mfd = o.open("/t", os.O_RDONLY)
    fd = o.open_by_handle_at(mfd, h, os.O_RDONLY)
    assert o.read(fd, 10) == b"k"
    o.close(fd)
    o.close(mfd)
    with pytest.raises(OSError) as exc:
        _decode(fs, h)  # a tmpfs handle given to the overlay
    assert exc.value.errno == errno.ESTALE
