"""Overlay option parsing (overlaysim.overlay.params) against its rules and the real kernel.

The kernel tests mount every option string of a table with mount(2) on real temp dirs and
compare errno, the kernel log line and the mountinfo options with what params.py predicts.
Surprises found on 6.18 while writing them are noted next to the cases.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from overlaysim.overlay import params as P
from overlaysim.overlay.layers import parse_options, validate_mount
from overlaysim.testing import kernel as K
from overlaysim.testing.resolver import RealResolver


def err_of(data: str, **kw: int) -> tuple[int, str]:
    with pytest.raises(OSError) as info:
        parse_options(data, **kw)
    assert info.value.errno is not None
    return info.value.errno, str(info.value.strerror)


# -- pure rules -------------------------------------------------------------------------------


def test_lowerdir_order_escapes_and_data_layers() -> None:
    p = parse_options(r"lowerdir=top:a\:b:c\,d::data1::data2,upperdir=u,workdir=w")
    assert p.lower_paths == ("top", "a:b", "c,d", "data1", "data2")
    assert [layer.is_data_only for layer in p.lowers] == [False, False, False, True, True]
    assert p.lowers[1].spelled == r"a\:b"
    assert p.lowerdir_all == r"top:a\:b:c\,d::data1::data2"


def test_lowerdir_plus_is_literal_and_cannot_follow_lowerdir() -> None:
    p = parse_options(r"lowerdir+=x:y,lowerdir+=a\b,datadir+=d")
    assert p.lower_paths == ("x:y", r"a\b", "d") and p.lowerdir_all is None
    assert err_of("lowerdir=a,lowerdir+=b")[1] == P._MSG["after_lowerdir"]
    assert err_of("datadir+=a,lowerdir+=b")[1] == P._MSG["data_follow+"]
    # lowerdir= after lowerdir+ replaces the whole list; an empty lowerdir= clears it
    assert parse_options("lowerdir+=a,lowerdir+=b,lowerdir=c,upperdir=u,workdir=w").lower_paths == ("c",)
    assert err_of("lowerdir=a:b,lowerdir=")[1] == P._MSG["no_lower"]


@pytest.mark.parametrize(
    ("value", "key"),
    [("a:", "trailing"), ("a::", "trailing"), (":a", "append"), ("::a", "append"),
     ("a:::b", "colons"), ("a::b:c", "data_follow")],
)  # fmt: skip
def test_colon_syntax_errors(value: str, key: str) -> None:
    assert err_of(f"lowerdir={value},upperdir=u,workdir=w") == (errno.EINVAL, P._MSG[key])


def test_last_option_wins_and_sb_flags() -> None:
    p = parse_options("lowerdir=a,upperdir=u,upperdir=v,workdir=w,index=on,index=off,ro=1")
    assert (p.upper, p.index, p.read_only) == ("v", False, True)
    assert parse_options("lowerdir=a,upperdir=u,workdir=w,ro,rw").read_only is False
    assert parse_options("lowerdir=a:b").read_only  # no upper: always read-only
    assert parse_options("lowerdir=a,upperdir=u,workdir=w", flags=P.MS_RDONLY).read_only


def test_bad_keys_and_values() -> None:
    assert err_of("lowerdir=a:b,bogus")[1] == "overlay: Unknown parameter 'bogus'"
    assert err_of("lowerdir=a:b,index=ON")[1] == "overlay: Bad value for 'index'"
    assert err_of("lowerdir=a:b,index")[1] == "overlay: Bad value for 'index'"
    assert err_of("lowerdir=a:b,userxattr=on")[1] == "overlay: Unexpected value for 'userxattr'"
    assert err_of("lowerdir=a,upperdir=,workdir=w")[1] == "overlay: Bad value for 'upperdir'"
    assert err_of("lowerdir=a:b,source=x")[1] == "Multiple sources"
    assert parse_options("lowerdir=a:b,,=ignored,,").lower_paths == ("a", "b")


def test_implied_settings() -> None:
    assert parse_options("lowerdir=a,upperdir=u,workdir=w,metacopy=on").redirect_dir == "on"
    p = parse_options("lowerdir=a,upperdir=u,workdir=w,nfs_export=on")
    assert p.index and p.nfs_export
    p = parse_options("lowerdir=a,upperdir=u,workdir=w,userxattr")
    assert (p.redirect_dir, p.metacopy, p.xattr_prefix) == ("nofollow", False, "user.overlay.")
    p = parse_options("lowerdir=a:b,redirect_dir=off,index=on,workdir=w,volatile,uuid=on")
    assert (p.redirect_dir, p.index, p.volatile, p.uuid, p.work) == ("on", False, False, "null", None)
    assert len(p.notes) == 4  # workdir, index, volatile and uuid ignored, each logged


@pytest.mark.parametrize(
    ("extra", "message"),
    [("metacopy=on,redirect_dir=off", "metacopy=on,redirect_dir=follow"),
     ("redirect_dir=nofollow,metacopy=on", "metacopy=on,redirect_dir=nofollow"),
     ("userxattr,redirect_dir=on", "userxattr,redirect_dir=on"),
     ("userxattr,metacopy=on", "userxattr,metacopy=on"),
     ("index=off,nfs_export=on", "nfs_export=on,index=off"),
     ("nfs_export=on,metacopy=on", "nfs_export=on,metacopy=on")],
)  # fmt: skip
def test_explicit_conflicts(extra: str, message: str) -> None:
    code, text = err_of(f"lowerdir=a,upperdir=u,workdir=w,{extra}")
    assert (code, text) == (errno.EINVAL, "overlayfs: conflicting options: " + message)


def test_limits_and_required_layers() -> None:
    ok = "lowerdir=" + ":".join(str(i) for i in range(500))
    assert len(parse_options(ok).lowers) == 500
    assert err_of(ok + ":x")[1] == P._MSG["too_many"]
    plus = [("lowerdir+", str(i)) for i in range(501)]
    assert parse_options(plus[:500]).lowers[-1].path == "499"
    with pytest.raises(OSError, match="limit is 500"):
        parse_options(plus)
    assert err_of("lowerdir=a")[1] == P._MSG["two_lowers"]
    assert parse_options("lowerdir=a::d").lowers[1].is_data_only
    assert err_of("datadir+=a,datadir+=b")[1] == P._MSG["non_data"]
    assert err_of("lowerdir=a,upperdir=u")[1] == P._MSG["no_work"]


def test_mount_data_is_cut_at_4095_bytes() -> None:
    body = "lowerdir=a:b" + "," * 4000
    tail = ",upperdir=u,workdir=ww"
    data = body + "," * (4096 - len(body) - len(tail)) + tail  # 4096 bytes: the last 'w' is cut
    assert len(data) == 4096 and parse_options(data).work == "w"
    longer = body + "," * (4097 - len(body) - len(tail)) + tail  # cut right after "workdir="
    assert err_of(longer)[1] == "overlay: Bad value for 'workdir'"


def test_mount_options_rendering() -> None:
    p = parse_options(r"lowerdir=a\:b:c\,d:e f:g\\h,upperdir=u,workdir=w,metacopy=on,fsync=strict")
    assert p.mount_options(upper_has_uuid=True) == (
        r"rw,lowerdir=a\134:b:c\134\054d:e\040f:g\134\134h,upperdir=u,workdir=w,"
        "redirect_dir=on,metacopy=on,fsync=strict"
    )
    assert parse_options("lowerdir=a:b").mount_options() == "ro,lowerdir=a:b,redirect_dir=on"
    fresh = parse_options("lowerdir=a,upperdir=u,workdir=w,volatile,sync")
    assert fresh.mount_options() == "rw,sync,lowerdir=a,upperdir=u,workdir=w,uuid=on,fsync=volatile"
    assert fresh.mount_options(upper_impure=True).endswith("uuid=null,fsync=volatile")
    x = parse_options("lowerdir=a,upperdir=u,workdir=w,xino=on,uuid=off")
    assert x.mount_options(same_fs=True) == "rw,lowerdir=a,upperdir=u,workdir=w,uuid=off"
    assert x.mount_options(same_fs=False).endswith(",uuid=null,xino=on")


# -- against the kernel -----------------------------------------------------------------------

def _skip_without_mount() -> None:
    ok, why = K.can_mount()
    if not ok:
        pytest.skip(why)


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory of layers; the cwd is set there so option strings use relative paths."""
    _skip_without_mount()
    for d in ("l1", "l2", "l3", "u", "w", "u2", "w2", "u3", "w3", "m", "u/sub", "l1/sub",
              "w/sub", "l2/sub", "a:b", "c,d", "e f", "g\\h", "tm"):  # fmt: skip
        (tmp_path / d).mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "fi:le").write_text("x")
    (tmp_path / "link1").symlink_to("l1")
    K.mount("tmpfs", str(tmp_path / "tm"), "tmpfs", "size=1m")
    for d in ("l", "u", "w"):
        (tmp_path / "tm" / d).mkdir()
    monkeypatch.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        for target in (tmp_path / "m", tmp_path / "tm"):
            while K.mount_info(str(target)) is not None:
                K.umount(str(target), K.MNT_DETACH)


def _log_lines() -> list[str] | None:
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [line.split("] ", 1)[-1] for line in out.splitlines()]


def _xattr(path: str, name: str) -> bool:
    try:
        os.getxattr(path, name)
        return True
    except OSError:
        return False


def predict(data: str, flags: int = 0) -> tuple[str, str]:
    """("OK", mountinfo options) or (errno name, kernel log line) according to params.py."""
    try:
        plan = validate_mount(data, RealResolver(), flags=flags)
    except OSError as e:
        assert e.errno is not None
        return errno.errorcode[e.errno], str(e.strerror)
    up, prefix = plan.params.upper, plan.params.xattr_prefix
    has_uuid = up is not None and _xattr(up, prefix + "uuid")
    impure = up is not None and _xattr(up, prefix + "impure")
    return "OK", plan.mount_options(upper_has_uuid=has_uuid, upper_impure=impure)


def _mark() -> str | None:
    """A unique line written to the kernel log, so that the lines after it are ours and
    later ones, whatever else logs meanwhile or rotates out of the ring buffer."""
    marker = f"overlaysim-test-{uuid.uuid4().hex}"
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(marker + "\n")
    except OSError:
        return None
    return marker


def _since(marker: str | None) -> list[str]:
    lines = _log_lines()
    if marker is None or lines is None or marker not in lines:
        return []
    return lines[len(lines) - 1 - lines[::-1].index(marker) + 1 :]


def actual(layout: Path, data: str, flags: int = 0) -> tuple[str, list[str]]:
    target = str(layout / "m")
    marker = _mark()
    try:
        K.mount("overlay", target, "overlay", data, flags)
    except OSError as e:
        return errno.errorcode[e.errno or 0], _since(marker)
    try:
        info = K.mount_info(target)
        assert info is not None
        return "OK " + info.super_options, []
    finally:
        K.umount(target)


def check(layout: Path, data: str, flags: int = 0) -> None:
    outcome, detail = predict(data, flags)
    got, log = actual(layout, data, flags)
    if outcome == "OK":
        assert got == "OK " + detail, data
    else:
        assert got == outcome, (data, detail, log)
        if log:  # other processes may log too: ours must be among the new lines
            assert detail in log, (data, log)


CASES = [
    # layer syntax, escapes, relative paths kept as given
    "lowerdir=l1:l2",
    "lowerdir=l1,upperdir=u,workdir=w",
    "lowerdir=l1,upperdir=u,workdir=w",  # second mount: uuid xattr present -> no uuid= shown
    r"lowerdir=a\:b:c\,d:e f:g\\h,upperdir=u,workdir=w",  # ':' is NOT escaped in mountinfo
    r"lowerdir=\l1:l2", r"lowerdir=l1\,upperdir=u,workdir=w",
    "lowerdir=l1:l2,workdir=w", "lowerdir=l1:l2,workdir=nonexist",
    "lowerdir+=a:b,lowerdir+=l2", r"lowerdir+=a\:b,lowerdir+=l2",
    "lowerdir+=l1,lowerdir+=l2,datadir+=l3", "lowerdir+=l1,datadir+=l3,datadir+=l2,upperdir=u,workdir=w",
    "lowerdir=l1,lowerdir+=l2", "lowerdir+=l2,lowerdir=l1,upperdir=u,workdir=w",
    "lowerdir=l1,lowerdir+=nonexist", "datadir+=l3,lowerdir+=l1", "datadir+=l3", "datadir+=l3,datadir+=l2",
    "lowerdir=l1::l2", "lowerdir=l1::l2,metacopy=off,upperdir=u,workdir=w", "lowerdir=l1::l2::l3,upperdir=u,workdir=w",
    "lowerdir=l1::l2:l3", "lowerdir=l1::nonexist:l3", "lowerdir=l1::l2:nonexist", "lowerdir=l1:::l2",
    "lowerdir=l1:", "lowerdir=l1::", "lowerdir=:l1", "lowerdir=::l1", "lowerdir=l1:\\",
    "lowerdir=nonexist,lowerdir=l1:l2", "lowerdir=l1:l2,lowerdir=", "lowerdir=", "", "upperdir=u,workdir=w",
    "lowerdir=file:l1", "lowerdir=file/x:l1", r"lowerdir=fi\:le:l1", "lowerdir+=fi:le,lowerdir+=l1",
    "lowerdir=l1,upperdir=file,workdir=w", "lowerdir=l1,upperdir=u,workdir=file", "lowerdir=l1,upperdir=u",
    "lowerdir=l1,upperdir=u,workdir=w,upperdir=nonexist", "lowerdir=l1,upperdir=,workdir=w",
    # options, values, flags
    "lowerdir=l1,upperdir=u,workdir=w,redirect_dir=off", "lowerdir=l1,upperdir=u,workdir=w,redirect_dir=nofollow",
    "lowerdir=l1,upperdir=u,workdir=w,redirect_dir=on", "lowerdir=l1,upperdir=u,workdir=w,metacopy=on",
    "lowerdir=l1,upperdir=u,workdir=w,nfs_export=on", "lowerdir=l1,upperdir=u,workdir=w,userxattr",
    "lowerdir=l1,upperdir=u,workdir=w,index=on,metacopy=on", "lowerdir=l1,upperdir=u,workdir=w,nfs_export=on,userxattr",
    "lowerdir=l1,upperdir=u,workdir=w,default_permissions,fsync=strict,verity=on,uuid=null",
    "lowerdir=l1,upperdir=u,workdir=w,verity=require,metacopy=off",  # 6.18: verity no longer needs metacopy
    "lowerdir=l1,upperdir=u,workdir=w,fsync=volatile,fsync=auto",
    "lowerdir=l1,upperdir=u,workdir=w,override_creds", "lowerdir=l1,upperdir=u,workdir=w,nooverride_creds",
    "lowerdir=l1,upperdir=u,workdir=w,override_creds=on", "lowerdir=l1,upperdir=u,workdir=w,fsync=ordered",
    "lowerdir=l1,upperdir=u,workdir=w,xino=on,uuid=off", "lowerdir=l1:l2,uuid=off", "lowerdir=l1:l2,uuid=on",
    "lowerdir=l1:l2,index=on,nfs_export=on", "lowerdir=l1:l2,nfs_export=on,redirect_dir=nofollow",
    "lowerdir=l1:l2,volatile", "lowerdir=l1:l2,userxattr", "lowerdir=l1:l2,metacopy=on",
    "lowerdir=l1,upperdir=u,workdir=w,sync,dirsync,lazytime,mand", "ro=1,lowerdir=l1,upperdir=u,workdir=w",
    "lowerdir=l1,upperdir=u,workdir=w,silent", "lowerdir=l1,upperdir=u,workdir=w,noatime",
    "lowerdir=l1,upperdir=u,workdir=w,LOWERDIR=x", "lowerdir=l1,upperdir=u,workdir=w,source=x",
    "lowerdir=l1,upperdir=u,workdir=w,=x,,", "lowerdir=l1,upperdir=u,workdir=w,index",
    # conflicts
    "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,redirect_dir=off", "lowerdir=l1,upperdir=u,workdir=w,userxattr,redirect_dir=follow",
    "lowerdir=l1,upperdir=u,workdir=w,userxattr,metacopy=on", "lowerdir=l1,upperdir=u,workdir=w,index=off,nfs_export=on",
    "lowerdir=l1,upperdir=u,workdir=w,nfs_export=on,metacopy=on", "nonexist=1,lowerdir=nonexist,metacopy=on,redirect_dir=off",
    "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,redirect_dir=follow", "lowerdir=l1,upperdir=u,workdir=w,redirect_dir=nofollow,metacopy=on",
    "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,userxattr", "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,nfs_export=on",
    "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,redirect_dir=on", "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,metacopy=off",
    "lowerdir=l1,upperdir=u,workdir=w,redirect_dir=off,metacopy=on,redirect_dir=on", "lowerdir=l1,upperdir=u,workdir=w,metacopy=on,verity=on",
    "lowerdir=nonexist,metacopy=on,redirect_dir=off,upperdir=u,workdir=w",  # ENOENT: paths resolve first
    # layer overlaps: ELOOP, EINVAL, allowed
    "lowerdir=l1,upperdir=u,workdir=u", "lowerdir=l1,upperdir=u,workdir=u/sub", "lowerdir=l1,upperdir=w/sub,workdir=w",
    "lowerdir=u,upperdir=u,workdir=w", "lowerdir=w,upperdir=u,workdir=w", "lowerdir=w/work,upperdir=u,workdir=w",
    "lowerdir=l1:l1,upperdir=u,workdir=w", "lowerdir=l1:link1,upperdir=u,workdir=w", "lowerdir=u/sub,upperdir=u,workdir=w",
    "lowerdir=w/sub,upperdir=u,workdir=w", "lowerdir=l1:l1/sub", "lowerdir=l1/sub:l1", "lowerdir=.:l1", "lowerdir=l1::l1,upperdir=u,workdir=w",
    "lowerdir=l2,upperdir=l2/sub,workdir=w", "lowerdir=l2,upperdir=u,workdir=l2/sub",  # upper/work inside a lower: allowed
    # filesystems and mounts
    "lowerdir=tm/l,upperdir=u,workdir=w", "lowerdir=tm/l,upperdir=u,workdir=w,xino=on", "lowerdir=tm/l:l1,xino=auto",
    "lowerdir=tm/l:l1,uuid=off", "lowerdir=l1,upperdir=tm/u,workdir=tm/w,xino=auto", "lowerdir=l1,upperdir=tm/u,workdir=w",
    "lowerdir=tm:l1", "lowerdir=tm/l:l1,upperdir=tm/u,workdir=tm/w",
]  # fmt: skip


@pytest.mark.kernel
def test_option_table_matches_kernel(layout: Path) -> None:
    for data in CASES:
        check(layout, data)
    check(layout, "lowerdir=l1,upperdir=u2,workdir=w2", flags=P.MS_RDONLY)


@pytest.mark.kernel
def test_five_hundred_layers_and_data_cut(layout: Path) -> None:
    many = layout / "many"
    many.mkdir()
    for i in range(502):
        (many / str(i)).mkdir()
    os.chdir(many)
    names = [str(i) for i in range(502)]
    for data in ("lowerdir=" + ":".join(names[:500]), "lowerdir=" + ":".join(names[:501]),
                 "lowerdir=" + ":".join(names[:499]) + "::499", "lowerdir=" + ":".join(names[:500]) + "::500"):  # fmt: skip
        check(layout, data)
    os.chdir(layout)
    pad = "lowerdir=l1:l2" + "," * 4061
    for tail in (",upperdir=u,workdir=ww", ",upperdir=u,workdir=w"):  # 4096 / 4095 bytes
        check(layout, pad[: 4096 - len(tail)] + tail)


@pytest.mark.kernel
def test_lowerdir_plus_limit_with_fsconfig(layout: Path) -> None:
    """500 ``lowerdir+`` only fit through fsconfig(2); the 501st is refused."""
    for i in range(501):
        (layout / f"p{i}").mkdir()
    for n in (500, 501):
        pairs: list[tuple[str, str | None]] = [("lowerdir+", str(layout / f"p{i}")) for i in range(n)]
        try:
            parse_options(pairs)
            predicted = "OK"
        except OSError as e:
            predicted = errno.errorcode[e.errno or 0]
        try:
            K.fsconfig_mount(str(layout / "m"), "overlay", pairs)
            got = "OK"
            K.umount(str(layout / "m"))
        except OSError as e:
            got = errno.errorcode[e.errno or 0]
            assert "limit is 500" in str(e.strerror)
        assert got == predicted == ("OK" if n == 500 else "EINVAL")


@pytest.mark.kernel
def test_in_use_and_volatile_and_read_only_upper(layout: Path) -> None:
    second = layout / "m2"
    second.mkdir()
    K.mount("overlay", str(second), "overlay", f"lowerdir={layout}/l1,upperdir={layout}/u,workdir={layout}/w")
    try:
        for data in ("lowerdir=l2,upperdir=u,workdir=w2", "lowerdir=l2,upperdir=u,workdir=w2,index=on",
                     "lowerdir=l2,upperdir=u2,workdir=w,index=on", "lowerdir=u:l2,upperdir=u2,workdir=w2,index=on",
                     "lowerdir=u/sub:l2,upperdir=u2,workdir=w2,index=on", "lowerdir=u:l2,upperdir=u2,workdir=w2"):  # fmt: skip
            check(layout, data)
    finally:
        K.umount(str(second))
    check(layout, "lowerdir=l2,upperdir=u3,workdir=w3,volatile")
    check(layout, "lowerdir=l2,upperdir=u3,workdir=w3")  # incompat volatile left in w3/work
    ro = layout / "rb"
    ro.mkdir()
    K.mount(str(layout / "u2"), str(ro), "", "", 4096)  # MS_BIND
    try:
        K.mount("none", str(ro), "", "", 4096 | 32 | 1)  # remount the bind read-only
        check(layout, "lowerdir=l1,upperdir=rb,workdir=w")  # EINVAL: read-only upper
        check(layout, "lowerdir=rb:l1,upperdir=u,workdir=w")
    finally:
        K.umount(str(ro))
    bind = layout / "bind"
    bind.mkdir()
    K.mount(str(layout / "u"), str(bind), "", "", 4096)
    try:
        check(layout, "lowerdir=l1,upperdir=bind,workdir=w")  # different mount: EINVAL
        check(layout, "lowerdir=bind,upperdir=u,workdir=w")  # same inode via a bind: ELOOP
        check(layout, "lowerdir=bind/sub,upperdir=u,workdir=w")  # below upper via a bind: ELOOP
    finally:
        K.umount(str(bind))
