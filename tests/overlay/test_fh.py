"""Overlay file handles (overlaysim/overlay/fh.py) and the index=on refusals they drive.

The shapes asserted here are those measured on Linux 6.18 (see scenarios_index.py, which
compares them with a real mount): a tmpfs handle in ``trusted.overlay.origin`` is 33 bytes,
``00 fb 21 <flags> 01 <uuid:16> <generation:4> <ino low:4> <ino high:4>``.
"""

from __future__ import annotations

import errno
import struct

import pytest

from overlaysim import HostFS
from overlaysim.overlay import fh
from overlaysim.overlay.super import OvlFS
from overlaysim.vfs.memfs import MemInode, new_tmpfs
from overlaysim.vfs.superblock import StepClock, SuperBlock


def _fs() -> tuple[HostFS, str]:
    fs = HostFS(clock=StepClock())
    for d in ("l", "l2", "u", "w", "m"):
        fs.os.makedirs(f"/t/{d}")
    with fs.open("/t/l/f", "w") as f:
        f.write("data")
    fs.os.link("/t/l/f", "/t/l/g")
    return fs, "lowerdir=/t/l,upperdir=/t/u,workdir=/t/w,index=on"


def _node(fs: HostFS, path: str) -> MemInode:
    node = fs.os._resolve(path)[1]
    assert isinstance(node, MemInode)
    return node


def test_superblock_uuid_is_v4_shaped_unique_and_kept_by_a_reload() -> None:
    a, b = SuperBlock("tmpfs", StepClock()), SuperBlock("tmpfs", StepClock())
    assert a.uuid != b.uuid and len(a.uuid) == 16
    assert a.uuid[6] >> 4 == 4 and a.uuid[8] >> 6 == 2  # version 4, RFC 4122 variant
    assert SuperBlock("tmpfs", StepClock(), dev=a.dev).uuid == a.uuid  # as a world load makes it
    assert a.generation(7) == a.generation(7)
    assert a.generation(7) != a.generation(8) or a.generation(7) != b.generation(7)
    assert 0 <= a.generation(2**40) < 2**32


def test_encode_has_the_tmpfs_shape() -> None:
    sb = SuperBlock("tmpfs", StepClock())
    root = new_tmpfs(sb)
    f = root.create("f", 0o100644, 0, 0, 0)
    h = fh.encode(f)
    assert h is not None
    raw = h.to_bytes()
    assert raw[:5] == bytes([0, 0xFB, 33, 0, 1]) and len(raw) == 33
    assert raw[5:21] == sb.uuid
    assert struct.unpack("<III", raw[21:]) == (sb.generation(f.ino), f.ino, 0)
    assert h.index_name() == raw.hex() and len(h.index_name()) == 66
    up = fh.encode(root, upper=True, with_uuid=False)
    assert up is not None and up.upper and up.flags == fh.FLAG_PATH_UPPER
    assert up.uuid == bytes(16)


def test_check_fb_errors_as_the_kernel() -> None:
    good = bytes([0, 0xFB, 33, 0, 1]) + bytes(28)
    assert fh.check_fb(good).raw == good
    assert fh.check_fb(good + b"\0\0").raw == good  # bytes past its length are ignored
    cases = {
        good[:20]: errno.EINVAL,  # shorter than the header
        good[:32]: errno.EINVAL,  # shorter than its own length
        bytes([0, 0xFA]) + good[2:]: errno.EINVAL,  # magic
        bytes([1]) + good[1:]: errno.ENODATA,  # a later version
        good[:3] + bytes([8]) + good[4:]: errno.ENODATA,  # unknown flag
        good[:3] + bytes([1]) + good[4:]: errno.ENODATA,  # big endian on a little-endian host
    }
    for data, code in cases.items():
        with pytest.raises(fh.HandleError) as info:
            fh.check_fb(data)
        assert info.value.errno == code, data.hex()
    assert fh.check_fb(good[:3] + bytes([2]) + good[4:]).flags == 2  # any endian
    with pytest.raises(fh.HandleError) as info:
        fh.from_index_name("zz" * 40)
    assert info.value.errno == errno.EINVAL
    assert fh.from_index_name(good.hex() + "0").raw == good  # odd length: last digit unused


def test_get_fh_takes_unknown_and_empty_as_no_origin() -> None:
    sb = SuperBlock("tmpfs", StepClock())
    f = new_tmpfs(sb).create("f", 0o100644, 0, 0, 0)
    assert fh.get_fh(f, "trusted.overlay.origin") is None
    for value in (b"", b"junk", bytes([1, 0xFB, 21, 0, 1]) + bytes(16)):
        f.setxattr("trusted.overlay.origin", value, 0)
        assert fh.get_fh(f, "trusted.overlay.origin") is None


def test_decoder_finds_inodes_of_the_layers_and_rejects_others() -> None:
    fs, _ = _fs()
    f = _node(fs, "/t/l/f")
    elsewhere = fs.os
    elsewhere.makedirs("/far/away")
    with fs.open("/far/away/x", "w") as out:
        out.write("x")
    x = _node(fs, "/far/away/x")
    root = _node(fs, "/t/l")
    dec = fh.Decoder()
    hf, hx = fh.encode(f), fh.encode(x)
    assert hf is not None and hx is not None
    assert dec.decode(hf, root) is f
    assert dec.decode(hx, root) is None  # outside every layer: Linux only (an offline move)
    assert dec.decode(hx, root, near=[_node(fs, "/far")]) is x
    assert dec.decode(hf, root, with_uuid=False) is None  # uuid=off wants a null uuid
    other = new_tmpfs(SuperBlock("tmpfs", StepClock()))
    assert dec.decode(hf, other) is None  # another fs: stale
    bad_gen = fh.FileHandle(hf.raw[:21] + struct.pack("<III", 0, f.ino, 0))
    if f.sb.generation(f.ino) != 0:
        assert dec.decode(bad_gen, root) is None
    fs.os.unlink("/far/away/x")
    assert dec.decode(hx, root) is None  # unlinked: stale
    with fs.open("/t/l/y", "w") as out:
        out.write("y")
    hy = fh.encode(_node(fs, "/t/l/y"))
    assert hy is not None and dec.decode(hy, root) is not None  # made after the first walk


def test_origin_value_is_empty_for_a_lower_without_handles() -> None:
    fs, _ = _fs()
    fs.os.makedirs("/t/inner")
    fs.mount("overlay", "/t/inner", "overlay", "lowerdir=/t/l:/t/l2")
    ovl = fs.mounts()[-1]
    assert ovl.fstype == "overlay"
    inner_f = fs.os._resolve("/t/inner/f")[1]
    mnt = fs.mount_table.order[-1]
    assert isinstance(mnt.private, OvlFS)
    assert not fh.can_encode(inner_f) and fh.encode(inner_f) is None
    assert fh.origin_value(mnt.private, inner_f) == b""


def test_index_mount_refusals_carry_the_kernel_log_lines() -> None:
    fs, opts = _fs()
    fs.mount("overlay", "/t/m", "overlay", opts)
    fs.os.chmod("/t/m/f", 0o600)
    fs.umount("/t/m")
    with pytest.raises(OSError) as info:
        fs.mount("overlay", "/t/m", "overlay", opts.replace("/t/l,", "/t/l2,"))
    assert info.value.errno == errno.ESTALE
    assert "overlayfs: failed to verify upper root origin" in str(info.value)
    fs.os.makedirs("/t/u2")
    with pytest.raises(OSError) as info:
        fs.mount("overlay", "/t/m", "overlay", opts.replace("/t/u,", "/t/u2,"))
    assert info.value.errno == errno.ESTALE
    assert "failed to verify index dir 'upper' xattr" in str(info.value)
    assert "mounting with '-o index=off'" in str(info.value)
    with fs.open("/t/w/index/zz", "w"):
        pass
    with pytest.raises(OSError) as info:
        fs.mount("overlay", "/t/m", "overlay", opts)
    assert info.value.errno == errno.EINVAL
    assert "failed to verify index (index/zz, ftype=8000, err=-22)" in str(info.value)
    assert "failed index dir cleanup (-22)" in str(info.value)
    fs.os.unlink("/t/w/index/zz")
    fs.mount("overlay", "/t/m", "overlay", opts)
    assert fs.os.stat("/t/m/g").st_mode & 0o777 == 0o600  # g finds f's copy in the index


def test_nested_lower_falls_back_to_index_off_with_the_kernel_note() -> None:
    fs, _ = _fs()
    fs.os.makedirs("/t/inner")
    fs.mount("overlay", "/t/inner", "overlay", "lowerdir=/t/l:/t/l2")
    fs.mount("overlay", "/t/m", "overlay", "lowerdir=/t/inner,upperdir=/t/u,workdir=/t/w,index=on")
    mnt = fs.mount_table.order[-1]
    assert isinstance(mnt.private, OvlFS)
    assert mnt.private.index is None and "index=on" not in mnt.options
    note = ("overlayfs: fs on '/t/inner' does not support file handles, falling back to "
            "index=off,nfs_export=off.")  # fmt: skip
    assert note in mnt.private.params.notes
    assert fs.os.listdir("/t/w") == ["work"]
