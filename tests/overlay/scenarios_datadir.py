"""Data-only lower layers (``lowerdir=l1::d1``, ``datadir+=``), run on the kernel and on the
simulator. Registered in the same table as tests/overlay/scenarios.py.

What they pin down, measured on Linux 6.18 (tmpfs layers, as the harness builds them):

* mount: data-only layers need neither metacopy=on nor a read-only mount (6.16 dropped that
  rule); at least one regular layer comes first, ``::`` may repeat between data layers but no
  regular layer may follow one (EINVAL), the same dir twice is ELOOP, 500 layers in all.
  /proc/mounts shows the layers as given (``l1::d1``, or ``lowerdir+=``/``datadir+=``).
* a data-only layer is never merged: its names are not found, not listed. Its files hold the
  data of metacopy files whose last redirect is absolute, found lazily (on open or copy-up)
  by that path beneath each data layer's root in turn: the first regular file wins, else the
  last layer's error (ENOENT for a missing file, a dir or a symlink's target; ELOOP, ENOTDIR,
  EXDEV for "..": they show only with one data layer). A data file that is itself a metacopy
  file is used as it is.
* stat before the data is found guesses st_blocks from the size (round up to st_blksize);
  after, the data file's st_blocks. A relative redirect or none is EIO (metacopy=on) or EPERM
  (metacopy=off: only the lowest regular layer may redirect to a data layer).
* any copy-up (chmod, setxattr, rename, link, truncate, open for write) looks the data up
  first, so a missing data file makes it fail (ENOENT); unlink does not need it. metacopy=on
  copies metadata only (metacopy + origin, no redirect), metacopy=off the data.
"""

from __future__ import annotations

import os
from typing import Any

from overlaysim.testing.kernel import fsconfig_mount
from tests.overlay.oharness import KernelSide, Rec, Side
from tests.overlay.scenarios import scenario

MC = "metacopy=on"


def _meta(s: Side, rel: str, size: int, redirect: bytes | None = None, value: bytes = b"") -> None:
    """A metacopy file as a composefs-like image leaves it: a hole of the full size."""
    s.write(rel, "")
    s.o.truncate(s.p(rel), size)
    s.o.setxattr(s.p(rel), "trusted.overlay.metacopy", value)
    if redirect is not None:
        s.o.setxattr(s.p(rel), "trusted.overlay.redirect", redirect)


def _mount_pairs(s: Side, pairs: list[tuple[str, str | None]]) -> None:
    """The new mount API: one fsconfig() call per pair."""
    if isinstance(s, KernelSide):
        fsconfig_mount(s.mnt, "overlay", pairs)
    else:
        s.fs.mount("overlay", s.mnt, "overlay", pairs)  # type: ignore[attr-defined]


def _try(s: Side, r: Rec, key: str, mount: Any) -> None:
    try:
        mount()
    except OSError as e:
        r.record(key, ["errno", e.errno])
        return
    r.record(key, s.mount_options())
    s.umount()


def _stat(s: Side, rel: str) -> list[object]:
    st = s.o.lstat(s.p(rel))
    return [oct(st.st_mode), st.st_size, st.st_blocks, st.st_nlink]


def _append(s: Side, rel: str) -> None:
    fd = s.o.open(s.p(rel), os.O_WRONLY | os.O_APPEND)
    s.o.write(fd, b"+")
    s.o.close(fd)


@scenario
def sc_datadir_mount_options(s: Side, r: Rec) -> None:
    s.dirs("l1", "l2", "d1", "d2", "u", "w", "m")
    p = s.p
    rw = f"upperdir={p('u')},workdir={p('w')}"
    for i, opts in enumerate([
        f"lowerdir={p('l1')}::{p('d1')}", f"lowerdir={p('l1')}::{p('d1')},{MC}",
        f"lowerdir={p('l1')}::{p('d1')},{rw}", f"lowerdir={p('l1')}::{p('d1')},{rw},{MC}",
        f"lowerdir={p('l1')}:{p('l2')}::{p('d1')}::{p('d2')}",
        f"lowerdir={p('l1')}::{p('d1')}:{p('d2')}", f"lowerdir={p('l1')}::{p('d1')}::{p('l2')},{rw}",
        f"lowerdir=::{p('d1')}", f"lowerdir={p('l1')}::", f"lowerdir={p('l1')}:::{p('d1')}",
        f"lowerdir={p('l1')}::{p('d1')},{rw},userxattr",
        f"lowerdir={p('l1')}::{p('d1')},{rw},redirect_dir=nofollow",
        f"lowerdir={p('l1')}::{p('d1')},{rw},redirect_dir=off",
        f"lowerdir={p('l1')}::{p('d1')},{rw},metacopy=off",
        f"lowerdir={p('l1')}::{p('l1')}", f"lowerdir={p('l1')}::{p('d1')}::{p('d1')}",
        f"lowerdir={p('l1')}::{p('u')},{rw}", f"lowerdir={p('l1')}::{p('d1')},xino=on",
    ]):  # fmt: skip
        _try(s, r, f"mount_{i}", lambda opts=opts: s.mount(opts))
    for i, pairs in enumerate([
        [("lowerdir+", p("l1")), ("datadir+", p("d1"))],
        [("datadir+", p("d1"))],
        [("datadir+", p("d1")), ("upperdir", p("u")), ("workdir", p("w"))],
        [("lowerdir+", p("l1")), ("datadir+", p("d1")), ("lowerdir+", p("l2"))],
        [("lowerdir+", p("l1")), ("datadir+", p("d1")), ("datadir+", p("d2")), ("metacopy", "on")],
        [("lowerdir+", p("l1")), ("datadir+", p("d1")), ("upperdir", p("u")), ("workdir", p("w"))],
        [("lowerdir", p("l1")), ("datadir+", p("d1"))],
        [("lowerdir+", p("l1")), ("datadir+", p("d1")), ("lowerdir", f"{p('l2')}::{p('d2')}")],
    ]):  # fmt: skip
        _try(s, r, f"fsconfig_{i}", lambda pairs=pairs: _mount_pairs(s, pairs))
    # OVL_MAX_STACK (500) counts the data layers too
    names = [f"x{i}" for i in range(500)]
    s.dirs(*names)
    for n_data in (498, 499):
        pairs: list[tuple[str, str | None]] = [("lowerdir+", p("l1"))]
        pairs += [("datadir+", p(n)) for n in names[:n_data]]
        _try(s, r, f"stack_{n_data}", lambda pairs=pairs: _mount_pairs(s, pairs))
    _try(s, r, "stack_501", lambda: _mount_pairs(
        s, [("lowerdir+", p("l1"))] + [("datadir+", p(n)) for n in names]))


def _data_fixture(s: Side) -> None:
    s.write("d1/blob", "BLOB" * 1000)
    s.write("d1/dir/f", "DIRF")
    s.dirs("d1/adir")
    s.o.symlink("blob", s.p("d1/sym"))
    s.o.symlink("dir", s.p("d1/symdir"))
    _meta(s, "d1/metadata", 10)  # a data file that is itself a metacopy file
    s.write("d1/visible", "a data layer's name")
    s.write("d1/both", "D1BOTH")
    s.write("d2/both", "D2BOTH")
    s.write("d2/only2", "ONLY2")
    _meta(s, "l1/ok", 4000, b"/blob")
    _meta(s, "l1/sub/ok", 4000, b"/dir/f")
    _meta(s, "l1/dotted", 4000, b"/dir/./../blob")
    _meta(s, "l1/small", 10, b"/blob")  # smaller than its data
    _meta(s, "l1/big", 10000, b"/blob")  # bigger than its data
    _meta(s, "l1/empty", 0, b"/blob")
    _meta(s, "l1/missing", 10, b"/nothere")
    _meta(s, "l1/todir", 10, b"/adir")
    _meta(s, "l1/tosym", 10, b"/sym")
    _meta(s, "l1/viasymdir", 10, b"/symdir/f")
    _meta(s, "l1/thrufile", 10, b"/blob/x")
    _meta(s, "l1/dotdot", 10, b"/../blob")
    _meta(s, "l1/tometa", 10, b"/metadata")
    _meta(s, "l1/rel", 10, b"blob")
    _meta(s, "l1/noredir", 10)
    _meta(s, "l1/badmc", 10, b"/blob", b"y")
    _meta(s, "l1/only2", 10, b"/only2")
    _meta(s, "l1/both", 10, b"/both")
    s.write("l1/plain", "plain")
    s.dirs("l1/visible")


LAZY = ["ok", "sub/ok", "dotted", "small", "big", "empty", "missing", "todir", "tosym",
        "viasymdir", "thrufile", "dotdot", "tometa", "rel", "noredir", "badmc", "only2", "both"]  # fmt: skip


@scenario
def sc_datadir_lazy_lookup(s: Side, r: Rec) -> None:
    """stat before and after the data is found, reads, and each error, with one data layer
    and with two (the last one's error wins), under metacopy on/off and nofollow."""
    _data_fixture(s)
    s.dirs("u", "w", "m")
    p = s.p
    one, two = f"{p('l1')}::{p('d1')}", f"{p('l1')}::{p('d1')}::{p('d2')}"
    rw = f"upperdir={p('u')},workdir={p('w')}"
    for tag, opts in (("mc", f"lowerdir={one},{rw},{MC}"), ("two", f"lowerdir={two},{rw},{MC}"),
                      ("off", f"lowerdir={two},{rw}"), ("ro", f"lowerdir={one}"),
                      ("nofollow", f"lowerdir={two},{rw},redirect_dir=nofollow")):  # fmt: skip
        s.mount(opts)
        r.ls(f"ls_root_{tag}", "m")
        r.ls(f"ls_visible_{tag}", "m/visible")
        r.call(f"stat_blob_{tag}", lambda: _stat(s, "m/blob"))
        for n in LAZY:
            r.call(f"stat_{n}_{tag}", lambda n=n: _stat(s, f"m/{n}"))
            r.read(f"read_{n}_{tag}", f"m/{n}")
            r.call(f"stat_after_{n}_{tag}", lambda n=n: _stat(s, f"m/{n}"))
        if tag == "mc":
            r.ino("ino_ok", "m/ok")
            r.ino("ino_l1_ok", "l1/ok")
            r.ino("ino_d1_blob", "d1/blob")
            r.call("xattrs_ok", s.o.listxattr, p("m/ok"))
        s.umount()
    r.tree("upper", "u", upper=True)


@scenario
def sc_datadir_copy_up(s: Side, r: Rec) -> None:
    """Copy-up of files whose data is in a data-only layer, with the data there or missing."""
    ops = ["chmod", "append", "rename", "link", "truncate", "trunc_open", "setx", "utime",
           "unlink", "ro_open", "rename2"]  # fmt: skip
    s.write("d1/blob", "BLOB" * 1000)
    for mc in ("on", "off"):
        for n in ops:
            _meta(s, f"{mc}/l1/{n}", 4000, b"/blob")
            _meta(s, f"{mc}/l1/gone_{n}", 10, b"/gone")
        s.dirs(f"{mc}/l1/sub", f"{mc}/l1/fresh", f"{mc}/l1/gone_fresh", f"{mc}/u", f"{mc}/w")
    s.dirs("m")
    for mc in ("on", "off"):
        p = s.p
        opts = (f"lowerdir={p(mc + '/l1')}::{p('d1')},upperdir={p(mc + '/u')},"
                f"workdir={p(mc + '/w')},metacopy={mc}")  # fmt: skip
        s.mount(opts)
        m = s.mnt
        for pre in ("", "gone_"):
            k = f"{mc}_{pre}"
            r.call(f"{k}chmod", s.o.chmod, f"{m}/{pre}chmod", 0o600)
            r.call(f"{k}append", _append, s, f"m/{pre}append")
            r.call(f"{k}rename", s.o.rename, f"{m}/{pre}rename", f"{m}/sub/{pre}renamed")
            r.call(f"{k}link", s.o.link, f"{m}/{pre}link", f"{m}/sub/{pre}linked")
            # into a lower dir: with the data missing, not even that dir is copied up
            r.call(f"{k}rename2", s.o.rename, f"{m}/{pre}rename2", f"{m}/{pre}fresh/x")
            r.call(f"{k}truncate", s.o.truncate, f"{m}/{pre}truncate", 3)
            r.call(f"{k}trunc_open", lambda pre=pre: s.o.close(
                s.o.open(f"{s.mnt}/{pre}trunc_open", os.O_WRONLY | os.O_TRUNC)))
            r.call(f"{k}setx", s.o.setxattr, f"{m}/{pre}setx", "user.k", b"v")
            r.call(f"{k}utime", s.o.utime, f"{m}/{pre}utime", ns=(10**9, 2 * 10**9))
            r.call(f"{k}unlink", s.o.unlink, f"{m}/{pre}unlink")
            r.call(f"{k}ro_open", lambda pre=pre: s.o.close(s.o.open(f"{s.mnt}/{pre}ro_open", 0)))
            r.call(f"{k}stat_ro_open", lambda pre=pre: _stat(s, f"m/{pre}ro_open"))
        for n in ("chmod", "append", "sub/renamed", "sub/linked", "link", "truncate",
                  "trunc_open", "setx"):  # fmt: skip
            r.call(f"{mc}_stat_{n}", lambda n=n: _stat(s, f"m/{n}"))
            r.read(f"{mc}_read_{n}", f"m/{n}")
        r.ino(f"{mc}_ino_chmod", "m/chmod")
        r.ino(f"{mc}_ino_l1_chmod", f"{mc}/l1/chmod")
        r.tree(f"{mc}_upper", f"{mc}/u", upper=True)
        s.umount()
        s.mount(opts)
        r.ls(f"{mc}_ls_remount", "m")
        for n in ("chmod", "sub/renamed", "link", "gone_chmod", "gone_ro_open"):
            r.call(f"{mc}_stat_remount_{n}", lambda n=n: _stat(s, f"m/{n}"))
            r.read(f"{mc}_read_remount_{n}", f"m/{n}")
        s.umount()


@scenario
def sc_datadir_layers_above(s: Side, r: Rec) -> None:
    """Metacopy files in the layers above the lowest regular one, and in the upper layer."""
    s.write("d1/blob", "BLOB" * 1000)
    s.write("d1/b2", "B2" * 100)
    _meta(s, "l2/x", 4000, b"/blob")
    _meta(s, "l1/x", 4000)  # no redirect: the one below has it
    _meta(s, "l1/y", 4000, b"/blob")  # nothing at /blob in l2: the data layer has it
    _meta(s, "l1/z", 4000, b"/b2")
    s.write("l2/b2", "L2B2")  # a regular layer's file wins over the data layer
    _meta(s, "l1/w", 10, b"/q")
    _meta(s, "l2/q", 10, b"r")  # the last redirect is relative: EIO
    _meta(s, "u/ua", 10, b"/blob")  # an upper file cannot point into a data layer directly
    _meta(s, "u/ub", 10)
    _meta(s, "l2/ub", 10, b"/blob")
    _meta(s, "u/uc", 10, b"/gone2")
    _meta(s, "l2/uc", 10, b"/blob")
    s.dirs("w", "m", "l2/dx", "u/pure/pd")
    s.o.setxattr(s.p("l2/dx"), "trusted.overlay.redirect", b"nothere")
    s.o.setxattr(s.p("u/pure/pd"), "trusted.overlay.redirect", b"/nothere")
    p = s.p
    low = f"lowerdir={p('l1')}:{p('l2')}::{p('d1')}"
    rw = f"upperdir={p('u')},workdir={p('w')}"
    for tag, opts in (("mc", f"{low},{rw},{MC}"), ("off", f"{low},{rw}"),
                      ("nofollow", f"{low},{rw},redirect_dir=nofollow"),
                      ("nodata", f"lowerdir={p('l1')}:{p('l2')}:{p('d1')},{rw},redirect_dir=nofollow"),
                      ("ro", low)):  # fmt: skip
        s.mount(opts)
        for n in ("x", "y", "z", "w", "ua", "ub", "uc", "dx", "pure/pd"):
            r.call(f"stat_{n}_{tag}", lambda n=n: _stat(s, f"m/{n}"))
            r.read(f"read_{n}_{tag}", f"m/{n}")
        if tag == "mc":
            r.call("chmod_x", s.o.chmod, p("m/x"), 0o600)
            r.call("append_y", _append, s, "m/y")
            r.call("rename_ub", s.o.rename, p("m/ub"), p("m/ub2"))
            r.tree("upper_mid", "u", upper=True)
        s.umount()
    s.mount(f"{low},{rw},{MC}")
    r.tree("merged_remount", "m")
    s.umount()
