"""Reading the mount request (no FUSE needed): layer lists, option bins, mount(8)'s helper
arguments, utimensat times."""

from __future__ import annotations

from pathlib import Path

import pytest

from overlaysim.fuse import options
from overlaysim.fuse.attrs import resolve_times
from overlaysim.fuse.binding import UTIME_NOW, UTIME_OMIT
from overlaysim.fuse.errors import MountError
from overlaysim.fuse.helper import _Usage, parse_argv


def test_lowerdir_splitting_follows_the_kernel() -> None:
    assert options.split_lowerdir("/a:/b") == (["/a", "/b"], [])
    assert options.split_lowerdir("/a:/b::/d1::/d2") == (["/a", "/b"], ["/d1", "/d2"])
    assert options.split_lowerdir(r"/with\:colon:/b") == (["/with:colon", "/b"], [])
    for bad in ("", "/a:", ":/a", "/a::/d:/b"):
        with pytest.raises(MountError):
            options.split_lowerdir(bad)


def test_options_fall_in_their_bins(tmp_path: Path) -> None:
    for d in ("l1", "l2", "u", "w", "m"):
        (tmp_path / d).mkdir()
    spec = options.parse(
        str(tmp_path / "m"),
        options=f"rw,nosuid,lowerdir={tmp_path}/l1:{tmp_path}/l2,upperdir={tmp_path}/u,"
        f"workdir={tmp_path}/w,redirect_dir=on,defaults,x-systemd.requires=foo,noatime,"
        f"explain={tmp_path}/log,metacopy=on",
    )
    assert spec.lowers == [f"{tmp_path}/l1", f"{tmp_path}/l2"]
    assert (spec.upperdir, spec.workdir) == (f"{tmp_path}/u", f"{tmp_path}/w")
    assert spec.overlay_options == ["redirect_dir=on", "metacopy=on"]
    assert spec.vfs_flags == ["rw", "nosuid", "noatime"] and not spec.read_only
    assert spec.explain == f"{tmp_path}/log"


def test_relative_layers_are_resolved_from_the_callers_cwd(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for d in ("l", "m"):
        (tmp_path / d).mkdir()
    monkeypatch.chdir(tmp_path)
    spec = options.parse("m", lowerdir="l", options="ro")
    assert spec.lowers == [str(tmp_path / "l")] and spec.read_only
    assert spec.mountpoint == str(tmp_path.resolve() / "m")


def test_workdir_without_upperdir_is_ignored_as_the_kernel_does(tmp_path: Path) -> None:
    for d in ("l", "w", "m"):
        (tmp_path / d).mkdir()
    spec = options.parse(str(tmp_path / "m"), lowerdir=str(tmp_path / "l"),
                         workdir=str(tmp_path / "w"))  # fmt: skip
    assert spec.workdir is None and spec.upperdir is None


def test_helper_arguments_as_mount8_passes_them() -> None:
    assert parse_argv(["overlay", "/mnt", "-n", "-o", "lowerdir=/l"]) == (
        "overlay", "/mnt", "lowerdir=/l", False)  # fmt: skip
    assert parse_argv(["-sv", "src", "/mnt", "-olowerdir=/l", "-o", "ro", "-t", "fuse.overlaysim"]) == (
        "src", "/mnt", "lowerdir=/l,ro", False)  # fmt: skip
    assert parse_argv(["overlay", "/mnt", "-f", "-r"])[2:] == ("ro", True)
    for bad in (["overlay"], ["a", "b", "c"], ["a", "b", "-N", "ns"], ["a", "b", "-x"], ["a", "b", "-o"]):
        with pytest.raises(_Usage):
            parse_argv(bad)


def test_utimensat_times() -> None:
    class Cur:
        st_atime_ns, st_mtime_ns = 111, 222

    cur: object = Cur()
    assert resolve_times(None, None, 5) is None
    assert resolve_times(((0, UTIME_NOW), (0, UTIME_NOW)), None, 5) is None
    assert resolve_times(((1, 2), (3, 4)), None, 5) == (1_000_000_002, 3_000_000_004)
    assert resolve_times(((0, UTIME_OMIT), (3, 0)), cur, 5) == (111, 3_000_000_000)  # type: ignore[arg-type]
    assert resolve_times(((0, UTIME_NOW), (0, UTIME_OMIT)), cur, 5) == (5, 222)  # type: ignore[arg-type]
