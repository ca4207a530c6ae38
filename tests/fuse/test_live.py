"""``overlaysim mount --live``: the simulation writes the real upper and work dirs as it goes.

The same operations run on a kernel overlay and on the live FUSE mount of the same lowers;
the real upper and work dirs are compared while both are still mounted (types, modes,
owners, sizes, content, xattrs including ``trusted.overlay.*``, whiteouts; see fharness for
what FUSE cannot express). The ``origin`` handles are compared byte for byte as well: both
sides encode the same real lower inodes with the real filesystem's handle and uuid.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from overlaysim.fuse import options
from overlaysim.fuse.errors import MountError
from overlaysim.testing.kernel import mount as kmount
from tests.fuse import fharness as fh

WHY = fh.skip_reason()
KERNEL = pytest.mark.skipif(WHY is not None, reason=WHY or "")


def _lowers(base: Path) -> list[str]:
    top, bottom = base / "l1", base / "l2"
    for d in (top / "dir/sub", top / "tree/inner", bottom / "etc", bottom / "tree/low"):
        d.mkdir(parents=True)
    (top / "a").write_text("aaa\n")
    (top / "b").write_text("bbb\n")
    (top / "dir/x").write_text("x\n")
    (top / "dir/sub/y").write_text("y\n")
    (top / "tree/inner/f").write_text("f\n")
    (top / "tree/t").write_text("t\n")
    (bottom / "tree/low/g").write_text("g\n")
    (bottom / "etc/conf").write_text("conf\n")
    os.chmod(bottom / "etc/conf", 0o640)
    os.chown(bottom / "etc/conf", 0, 4)
    os.setxattr(bottom / "etc/conf", "user.tag", b"lower")
    os.symlink("a", top / "link")
    return ["l1", "l2"]


def _ops(m: Path) -> None:
    with open(m / "a", "a") as f:  # write to a lower file: data copy-up
        f.write("more\n")
    os.unlink(m / "b")  # rm a lower file: whiteout
    shutil.rmtree(m / "dir")  # rm -rf a lower dir, then mkdir it again: opaque
    (m / "dir").mkdir()
    (m / "dir/new").write_text("new\n")
    os.rename(m / "tree", m / "moved")  # mv of a merged dir: redirect_dir=on
    os.chmod(m / "etc/conf", 0o600)  # metadata copy-up keeps the user xattr
    os.rename(m / "link", m / "link2")  # a lower symlink moved: copy-up, whiteout
    os.mkfifo(m / "fifo")


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs for every layer of both sides (one real filesystem, whose handles both use)."""
    with fh.tmpfs_top(tmp_path) as top:
        yield top


def _origins(upper: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in ["", *dirnames, *filenames]:
            p = os.path.join(dirpath, name) if name else dirpath
            try:
                out[os.path.relpath(p, upper)] = os.getxattr(p, fh.PREFIX + "origin",
                                                             follow_symlinks=False)  # fmt: skip
            except OSError:
                continue
    return out


def _both(base: Path, ops: Callable[[Path], None], opts: str) -> tuple[Path, Path, Path, Path]:
    layers = fh.Layers(base, _lowers)
    k_upper, k_work, _ = layers.sides("kernel")
    f_upper, f_work, mnt = layers.sides("live")
    kmnt = base / "kmnt"
    kmnt.mkdir()
    data = f"lowerdir={':'.join(layers.lowers)},upperdir={k_upper},workdir={k_work},{opts}"
    kmount("overlay", str(kmnt), "overlay", data)
    res = fh.run([fh.OVERLAYSIM, "mount", "--live", "--lowerdir", ":".join(layers.lowers),
                  "--upperdir", str(f_upper), "--workdir", str(f_work), "-o", opts, str(mnt)],
                 base / "run")  # fmt: skip
    assert res.returncode == 0, res.stderr
    ops(kmnt)
    ops(mnt)
    return k_upper, k_work, f_upper, f_work


@pytest.mark.kernel
@KERNEL
def test_live_upper_is_the_kernels_while_mounted(base: Path) -> None:
    k_upper, k_work, f_upper, f_work = _both(base, _ops, "redirect_dir=on")
    kernel, live = fh.upper_view(k_upper), fh.upper_view(f_upper)
    assert len(kernel.entries) > 10, "the operations changed too little"
    assert fh.diff(kernel, live) == []
    assert fh.diff(fh.work_view(k_work, k_upper), fh.work_view(f_work, f_upper)) == []
    assert _origins(k_upper) == _origins(f_upper) and _origins(f_upper)
    # what the brief asks a tool to see while mounted, spelled out
    assert stat.S_ISCHR(os.lstat(f_upper / "b").st_mode) and os.lstat(f_upper / "b").st_rdev == 0
    assert os.getxattr(f_upper / "dir", fh.PREFIX + "opaque") == b"y"
    assert os.getxattr(f_upper / "moved", fh.PREFIX + "redirect") == b"tree"
    assert (f_upper / "a").read_text() == "aaa\nmore\n"
    res = fh.run([fh.OVERLAYSIM, "umount", str(base / "mnt")], base / "run")
    assert res.returncode == 0, res.stderr
    assert fh.diff(kernel, fh.upper_view(f_upper)) == [], "the unmount changed the upper dir"


def _on_live(layers: fh.Layers, workload: Callable[[Path], None], runtime: Path,
             opts: str = "") -> tuple[Path, Path]:  # fmt: skip
    upper, work, mnt = layers.sides("live")
    cmd = [fh.OVERLAYSIM, "mount", "--live", "--lowerdir", ":".join(layers.lowers), "--upperdir",
           str(upper), "--workdir", str(work), *(["-o", opts] if opts else []), str(mnt)]  # fmt: skip
    res = fh.run(cmd, runtime)
    assert res.returncode == 0, res.stderr
    try:
        workload(mnt)
    finally:
        res = fh.run([fh.OVERLAYSIM, "umount", str(mnt)], runtime)
    assert res.returncode == 0, res.stderr
    return upper, work


@pytest.mark.kernel
@KERNEL
def test_syscalls_through_a_live_mount_answer_as_the_kernel_overlay(tmp_path: Path) -> None:
    """test_semantics' probe (renameat2 flags, xattrs, hard links and st_ino, d_ino, other
    users, UTIME_OMIT, unlinked open files...) on a live mount: layers on the real disk."""
    from tests.fuse.test_semantics import _layers, probe

    layers = fh.Layers(tmp_path, _layers)
    box: dict[str, dict[str, object]] = {}
    k_upper, k_work = fh.on_kernel(layers, lambda m: box.setdefault("kernel", probe(m)))
    f_upper, f_work = _on_live(layers, lambda m: box.setdefault("live", probe(m)), tmp_path / "run")
    kernel, live = box["kernel"], box["live"]
    # FUSE_TMPFILE: libfuse's high-level API has no tmpfile (as in test_semantics)
    assert (kernel.pop("O_TMPFILE"), live.pop("O_TMPFILE")) == (None, fh.errno_name(OSError(errno.EOPNOTSUPP, "")))
    assert {k: v for k, v in live.items() if v != kernel.get(k)} == {}
    assert fh.diff(fh.upper_view(k_upper), fh.upper_view(f_upper)) == []
    # Recorded divergence: a rename over an open lower file reaches us as libfuse's "hide"
    # (the open target renamed away first), which the simulation does as an unlink: a
    # whiteout through the mount's shared master, left in work/work; the kernel's rename
    # needs no whiteout. The upper dirs are the same.
    k_view, f_view = fh.work_view(k_work, k_upper), fh.work_view(f_work, f_upper)
    assert set(f_view.entries) - set(k_view.entries) == {"work/#"}
    assert f_view.entries["work/#"].type == "whiteout"
    assert {k: e for k, e in f_view.entries.items() if k != "work" and k != "work/#"} == {
        k: e for k, e in k_view.entries.items() if k != "work"}


def test_live_is_a_flag_and_an_o_option_and_needs_upper_and_work(tmp_path: Path) -> None:
    for d in ("l", "u", "w", "m", "u/m"):
        (tmp_path / d).mkdir()
    t = {d: str(tmp_path / d) for d in ("l", "u", "w", "m")}
    by_o = options.parse(t["m"], options=f"lowerdir={t['l']},upperdir={t['u']},workdir={t['w']},live")
    by_flag = options.parse(t["m"], lowerdir=t["l"], upperdir=t["u"], workdir=t["w"], live=True)
    assert by_o.live and by_flag.live and "live" not in by_o.overlay_options
    assert not options.parse(t["m"], lowerdir=t["l"]).live
    with pytest.raises(MountError, match="--live writes the real upper dir"):
        options.parse(t["m"], lowerdir=t["l"], live=True)
    with pytest.raises(MountError, match="serve its own requests"):  # FUSE serving itself
        options.parse(t["u"] + "/m", lowerdir=t["l"], upperdir=t["u"], workdir=t["w"], live=True)


@pytest.mark.kernel
@KERNEL
def test_helper_with_o_live_writes_the_upper_while_mounted(tmp_path: Path) -> None:
    """mount(8)'s way (``-o ...,live``): the real upper changes while mounted."""
    lower, upper, work, mnt = (tmp_path / n for n in ("l", "u", "w", "m"))
    for p in (lower, upper, work, mnt):
        p.mkdir()
    (lower / "f").write_text("low\n")
    (lower / "g").write_text("gone\n")
    opts = f"lowerdir={lower},upperdir={upper},workdir={work},live"
    res = fh.run([fh.HELPER, "overlay", str(mnt), "-o", opts], tmp_path / "run")
    assert (res.returncode, res.stderr) == (0, "")
    try:
        (mnt / "f").write_text("changed\n")
        os.unlink(mnt / "g")
        assert (upper / "f").read_text() == "changed\n"  # while mounted
        assert os.getxattr(upper / "f", fh.PREFIX + "origin")
        assert os.lstat(upper / "g").st_rdev == 0 and stat.S_ISCHR(os.lstat(upper / "g").st_mode)
    finally:
        res = fh.run([fh.OVERLAYSIM, "umount", str(mnt)], tmp_path / "run")
    assert res.returncode == 0, res.stderr
    assert (upper / "f").read_text() == "changed\n" and (lower / "f").read_text() == "low\n"
