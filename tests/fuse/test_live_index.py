"""``overlaysim mount --live -o index=on``: the inodes index on real layer dirs, as the kernel's.

A kernel overlay and a live mount run the same operations on the same real lowers (one tmpfs
holds every layer of both sides, as unionmount-testsuite lays them out): lower hard links
copied up through one name then another, unlink, rename, link, a remount, an index cleaned
at mount, layers swapped (refused), and the upper rotated into the lowers (the --ov cycle of
rename-mass-5). Compared: each operation's result, st_ino and st_nlink of every name (lower
inode numbers as they are, new ones by equality) and the real upper and work dirs: names
(index entries are the hex of the origin handle), types, modes, owners, link counts, data
and every overlay xattr byte for byte. What differs by nature is normalised: "#" temp names
(a counter on Linux), the ``uuid`` xattr (random per new overlay), and handles of upper
inodes (the index dir's ``upper``; nfs_export's dir entries), which name each side's own
upper dir: compared by the path they name there.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from overlaysim import HostFS
from overlaysim.overlay import fh as ofh
from overlaysim.testing.kernel import mount as kmount
from overlaysim.testing.kernel import umount as kumount
from overlaysim.vfs.passthrough_mount import real_uuid
from overlaysim.vfs.passthrough_sys import FD_POOL, name_to_handle
from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]
SIDES = ("kernel", "live")


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs for every layer of both sides (one real filesystem, whose handles both use)."""
    try:
        with fh.tmpfs_top(tmp_path) as top:
            yield top
    finally:
        FD_POOL.clear()  # descriptors an in-process mapping kept into the tmpfs


def _lowers(base: Path) -> list[str]:
    l1, l2 = base / "l1", base / "l2"
    for d in (l1 / "d/deep", l2 / "d", l2 / "e"):
        d.mkdir(parents=True)
    (l1 / "a").write_text("aaa\n")
    os.link(l1 / "a", l1 / "b")
    os.link(l1 / "a", l1 / "c")
    (l1 / "s").write_text("solo\n")
    (l1 / "d/x").write_text("x\n")
    os.link(l1 / "d/x", l1 / "d/y")
    (l1 / "d/deep/q").write_text("q\n")
    (l2 / "z").write_text("z\n")
    os.link(l2 / "z", l2 / "e/z2")
    (l2 / "d/w").write_text("w\n")
    return [str(l1), str(l2)]


class Side:
    """One side's upper, work and mount point under ``base/NAME``; mounts the overlay."""

    def __init__(self, base: Path, kind: str, name: str) -> None:
        self.kind, self.base = kind, base
        self.upper, self.work = base / name / "u", base / name / "w"
        self.mnt = base / f"mnt-{name}"
        self.runtime = base.parent / "run"  # beside the tmpfs: the daemon's log outlives it
        for d in (self.upper, self.work, self.mnt):
            d.mkdir(parents=True, exist_ok=True)

    def mount(self, lowers: list[str], opts: str) -> None:
        """Mount; a refusal is an OSError carrying what the side says (kernel: the errno)."""
        if self.kind == "kernel":
            kmount("overlay", str(self.mnt), "overlay", f"lowerdir={':'.join(lowers)},"
                   f"upperdir={self.upper},workdir={self.work},{opts}")  # fmt: skip
            return
        res = fh.run([fh.OVERLAYSIM, "mount", "--live", "--lowerdir", ":".join(lowers),
                      "--upperdir", str(self.upper), "--workdir", str(self.work), "-o", opts,
                      str(self.mnt)], self.runtime)  # fmt: skip
        if res.returncode != 0:
            raise OSError(0, res.stderr.strip())

    def umount(self) -> None:
        if self.kind == "kernel":
            kumount(str(self.mnt))
            return
        res = fh.run([fh.OVERLAYSIM, "umount", str(self.mnt)], self.runtime)
        assert res.returncode == 0, res.stderr


def _call(fn: Callable[[], Any]) -> Any:
    try:
        out = fn()
    except OSError as e:
        return fh.errno_name(e)
    return "ok" if out is None else out


def _names(mnt: Path, lower_inos: set[int]) -> dict[str, Any]:
    """Every name under the mount: (st_ino, st_nlink, mode), st_ino as the lower inode's
    number when it is one, else "new" with its order of first appearance (equality kept)."""
    new: dict[int, int] = {}
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in sorted(os.walk(mnt)):
        for name in ["", *sorted(dirnames + filenames)]:
            p = os.path.join(dirpath, name) if name else dirpath
            if not name and dirpath != str(mnt):
                continue
            s = os.lstat(p)
            ino = s.st_ino if s.st_ino in lower_inos else ("new", new.setdefault(s.st_ino, len(new)))
            out[os.path.relpath(p, mnt)] = (ino, s.st_nlink, oct(s.st_mode))
    return out


def _inos_of(*dirs: str | Path) -> set[int]:
    return {os.lstat(os.path.join(dp, n)).st_ino for top in dirs
            for dp, dn, fn in os.walk(top) for n in [".", *dn, *fn]}  # fmt: skip


def _raw(side: Side) -> list[tuple[Any, ...]]:
    """The real upper and work dirs, entry by entry (times left out: the kernel's instants)."""
    uppers: dict[bytes, str] = {}  # a real handle's fid -> its path in this side's upper dir
    for dp, dn, fn in os.walk(side.upper):
        for n in [".", *dn, *fn]:
            got = name_to_handle(os.path.join(dp, n))
            if got is not None:
                uppers[got[1]] = os.path.normpath(os.path.relpath(os.path.join(dp, n), side.upper))
    out = []
    for label, top in (("u", side.upper), ("w", side.work)):
        for dp, dn, fn in os.walk(top):
            for n in [".", *dn, *fn]:
                p = os.path.join(dp, n)
                s = os.lstat(p)
                rel = os.path.normpath(os.path.join(label, os.path.relpath(p, top)))
                if n.startswith("#"):
                    rel = os.path.join(os.path.dirname(rel), "#")  # a temp name: its counter
                if stat.S_ISREG(s.st_mode):
                    data: Any = hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]
                elif stat.S_ISLNK(s.st_mode):
                    data = os.readlink(p)
                else:
                    data = s.st_rdev
                xattrs = sorted((x, _xval(x, os.getxattr(p, x, follow_symlinks=False), uppers))
                                for x in os.listxattr(p, follow_symlinks=False))  # fmt: skip
                out.append((rel, stat.filemode(s.st_mode), s.st_uid, s.st_gid, s.st_nlink,
                            s.st_size, data, xattrs))  # fmt: skip
    return sorted(out)


def _xval(name: str, value: bytes, uppers: dict[bytes, str]) -> Any:
    if name == fh.PREFIX + "uuid":
        return ("random uuid", len(value))
    if name in (fh.PREFIX + "origin", fh.PREFIX + "upper") and value:
        handle = ofh.check_fb(value)
        if handle.upper:  # names an inode of this side's upper dir
            return ("upper handle", value[:5].hex(), value[5:21].hex(), uppers.get(handle.fid))
    return value.hex()


def _both(base: Path, name: str, lowers: list[str], opts: str,
          ops: Callable[[Path], Any]) -> dict[str, tuple[Any, Side]]:  # fmt: skip
    """``ops`` on a kernel overlay and on a live mount (each on its own upper and work)."""
    out = {}
    for kind in SIDES:
        side = Side(base, kind, f"{name}-{kind}")
        side.mount(lowers, opts)
        try:
            out[kind] = (ops(side.mnt), side)
        finally:
            side.umount()
    return out


def _same(got: dict[str, tuple[Any, Side]], what: str) -> None:
    (k, ks), (f, fs) = got["kernel"], got["live"]
    assert f == k, f"{what}: results differ"
    kraw, fraw = _raw(ks), _raw(fs)
    assert [e for e in fraw if e not in kraw] == [] and [e for e in kraw if e not in fraw] == [], what


def _ops(lower_inos: set[int]) -> Callable[[Path], Any]:
    def ops(m: Path) -> Any:
        r: dict[str, Any] = {}
        r["chmod_a"] = _call(lambda: os.chmod(m / "a", 0o600))  # copy-up via W/index
        r["after_a"] = _names(m, lower_inos)
        r["append_b"] = _call(lambda: (m / "b").open("a").write("b\n"))  # the same inode
        r["read_c"] = _call(lambda: (m / "c").read_text())
        r["unlink_c"] = _call(lambda: os.unlink(m / "c"))
        r["rename_b"] = _call(lambda: os.rename(m / "b", m / "d/b2"))
        r["link_x"] = _call(lambda: os.link(m / "d/x", m / "d/x3"))
        r["unlink_y"] = _call(lambda: os.unlink(m / "d/y"))
        r["rename_z_over_s"] = _call(lambda: os.rename(m / "z", m / "s"))
        r["touch_z2"] = _call(lambda: os.utime(m / "e/z2", (1, 2)))
        r["names"] = _names(m, lower_inos)
        return r

    return ops


@pytest.mark.parametrize("opts", ["index=on,redirect_dir=on", "index=on,nfs_export=on"])
def test_live_index_is_the_kernels(base: Path, opts: str) -> None:
    lowers = _lowers(base)
    lower_inos = _inos_of(*lowers)
    got = _both(base, "one", lowers, opts, _ops(lower_inos))
    _same(got, "first mount")
    res, live = got["live"]
    names = res["names"]
    # spelled out: the links keep the lower inode, counted by the index entry's nlink
    a = os.lstat(Path(lowers[0]) / "a")
    assert names["a"][:2] == names["d/b2"][:2] == (a.st_ino, 2)
    assert names["d/x"][:2] == names["d/x3"][:2] == (os.lstat(Path(lowers[0]) / "d/x").st_ino, 2)
    ofs_index = live.work / "index"
    entries = sorted(n for n in os.listdir(ofs_index) if not n.startswith("#"))
    assert len(entries) >= 3, entries
    kinds = set()
    for n in entries:  # a file's entry holds its origin; with nfs_export a dir's names its
        mode = os.lstat(ofs_index / n).st_mode  # upper dir, and a removed object's is a whiteout
        kinds.add(stat.S_IFMT(mode))
        if stat.S_ISDIR(mode):
            assert ofh.check_fb(os.getxattr(ofs_index / n, fh.PREFIX + "upper")).upper
        elif not stat.S_ISCHR(mode):
            assert os.getxattr(ofs_index / n, fh.PREFIX + "origin").hex() == n
    nfs = "nfs_export=on" in opts
    assert kinds == ({stat.S_IFREG, stat.S_IFDIR, stat.S_IFCHR} if nfs else {stat.S_IFREG})
    assert os.getxattr(live.upper / "a", fh.PREFIX + "nlink") == b"U-1"  # a, d/b2 + index link
    # a remount finds the same inodes through the index
    for kind, (_r, side) in got.items():
        side.mount(lowers, opts)
        try:
            assert _names(side.mnt, lower_inos) == names, kind
        finally:
            side.umount()
    _same(got, "after a remount")


def test_live_index_cleanup_and_refusals_at_mount(base: Path) -> None:
    lowers = _lowers(base)
    lower_inos = _inos_of(*lowers)
    opts = "index=on"
    got = _both(base, "one", lowers, opts, lambda m: os.chmod(m / "a", 0o600))
    # Made offline, the same on both sides: a temp name and a stale entry (named by the
    # handle of a file deleted since), which ovl_indexdir_cleanup removes, and an entry whose
    # upper name went (it stays: its lower still has links; 'a' finds it by the index).
    gone = base / "gone"
    gone.write_text("g")
    htype, fid = name_to_handle(str(gone)) or (0, b"")
    stale = ofh.FileHandle.make(htype, real_uuid(str(base)), fid).to_bytes()
    gone.unlink()
    for _r, side in got.values():
        ix = side.work / "index"
        (ix / "#7f").write_text("")
        (ix / stale.hex()).write_text("")
        os.setxattr(ix / stale.hex(), fh.PREFIX + "origin", stale)
        os.unlink(side.upper / "a")
    seen = {}
    for kind, (_r, side) in got.items():
        side.mount(lowers, opts)
        try:
            seen[kind] = (sorted(os.listdir(side.work / "index")), _names(side.mnt, lower_inos))
        finally:
            side.umount()
    assert seen["live"] == seen["kernel"]
    assert "#7f" not in seen["live"][0] and stale.hex() not in seen["live"][0]
    assert len(seen["live"][0]) == 1
    _same(got, "index cleaned at mount")
    # Swapped lowers: the upper root's origin is another dir's; a work dir paired with
    # another upper: W/index's 'upper' is another dir's. The kernel says ESTALE for both.
    k, f = got["kernel"][1], got["live"][1]
    for lows, swap_work, line in ((lowers[::-1], False, "failed to verify upper root origin"),
                                  (lowers, True, "failed to verify index dir 'upper' xattr")):
        if swap_work:
            k.work, f.work = f.work, k.work
        for side in (k, f):
            with pytest.raises(OSError) as e:
                side.mount(lows, opts)
            if side.kind == "kernel":
                assert e.value.errno == errno.ESTALE
            else:
                assert line in str(e.value), e.value
        if swap_work:
            k.work, f.work = f.work, k.work
    # the errno behind the live refusal: the engine on the same real dirs, in process
    fs = HostFS()
    for i, real in enumerate([*lowers, str(base)]):
        fs.os.makedirs(f"/r{i}")
        fs.mount(real, f"/r{i}", "hostdir", "ro" if i < len(lowers) else "rw")
    fs.os.makedirs("/m")
    rel = os.path.relpath(f.upper, base), os.path.relpath(f.work, base)
    n = len(lowers)
    with pytest.raises(OSError) as e:
        fs.mount("overlay", "/m", "overlay", f"lowerdir=/r1:/r0,upperdir=/r{n}/{rel[0]},"
                 f"workdir=/r{n}/{rel[1]},{opts}")  # fmt: skip
    assert e.value.errno == errno.ESTALE


def test_live_index_keeps_hard_links_of_a_rotated_upper(base: Path) -> None:
    """unionmount-testsuite's --ov cycle: the upper dir (with indexed hard links, so lower
    files with several links) becomes the top lower of a new overlay; a copy-up through
    one name keeps st_ino for all (rename-mass-5 fails on st_ino without the index)."""
    lowers = _lowers(base)
    opts = "index=on,redirect_dir=on"
    first = _both(base, "one", lowers, opts, _ops(_inos_of(*lowers)))
    rotated = [str(first["kernel"][1].upper), *lowers]  # the same real lowers for both sides
    lower_inos = _inos_of(*rotated)

    def ops(m: Path) -> Any:
        r: dict[str, Any] = {"before": _names(m, lower_inos)}
        r["rename_a"] = _call(lambda: os.rename(m / "a", m / "a2"))
        r["append_b2"] = _call(lambda: (m / "d/b2").open("a").write("+\n"))
        r["rename_x"] = _call(lambda: os.rename(m / "d/x", m / "x"))
        r["after"] = _names(m, lower_inos)
        return r

    got = _both(base, "two", rotated, opts, ops)
    _same(got, "rotated upper")
    res = got["live"][0]
    up = first["kernel"][1].upper
    assert res["after"]["a2"][0] == res["after"]["d/b2"][0] == os.lstat(up / "a").st_ino
    assert res["after"]["x"][0] == os.lstat(up / "d/x").st_ino
    for kind, (_r, side) in got.items():  # and after a mount cycle
        side.mount(rotated, opts)
        try:
            assert _names(side.mnt, lower_inos) == res["after"], kind
        finally:
            side.umount()
