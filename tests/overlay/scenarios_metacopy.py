"""metacopy=on scenarios (metadata-only copy-up), run on the kernel and on the simulator.

Registered in the same table as tests/overlay/scenarios.py. What they pin down, measured on
Linux 6.18 (tmpfs layers, as the harness builds them):

* options: ``metacopy=on`` alone adds ``redirect_dir=on``; with ``redirect_dir=off/follow/
  nofollow``, ``userxattr`` or ``nfs_export=on`` it is EINVAL ("conflicting options").
* chmod, chown, utimes, setxattr, removexattr, rename and link of a lower regular file copy
  up its metadata only: a sparse upper file of the full size (0 blocks on tmpfs) with an empty
  ``metacopy`` xattr and ``origin``; opening for writing or with O_TRUNC and truncate copy the
  data (a metacopy upper gets it then, and loses the xattr); a lower hard link gets no origin.
* rename/link give a metacopy file a ``redirect``: relative in the same dir, absolute across
  dirs or for a lower hard link (an existing relative one is made absolute when needed).
* lookup goes on below a metacopy file for its data, by name or redirect, through metacopy
  files of lower layers; none found is EIO, ``metacopy=off`` is EPERM.
"""

from __future__ import annotations

import os
import stat

from tests.overlay.oharness import Rec, Side
from tests.overlay.scenarios import _ra2, finish, scenario

MC = "metacopy=on"


def _meta(s: Side, rel: str, size: int, redirect: bytes | None = None, value: bytes = b"") -> None:
    """A hand-made metacopy file (as another metacopy mount leaves in its upper layer)."""
    s.write(rel, "")
    s.o.truncate(s.p(rel), size)
    s.o.setxattr(s.p(rel), "trusted.overlay.metacopy", value)
    if redirect is not None:
        s.o.setxattr(s.p(rel), "trusted.overlay.redirect", redirect)


def _blocks(s: Side, r: Rec, key: str, rels: list[str]) -> None:
    r.call(key, lambda: [s.o.lstat(s.p(x)).st_blocks for x in rels])


def _append(s: Side, rel: str, data: bytes = b"+") -> None:
    fd = s.o.open(s.p(rel), os.O_WRONLY | os.O_APPEND)
    s.o.write(fd, data)
    s.o.close(fd)


@scenario
def sc_metacopy_options(s: Side, r: Rec) -> None:
    s.write("l1/f", "x")
    for i, extra in enumerate([
        MC, f"{MC},redirect_dir=on", f"{MC},redirect_dir=follow", f"{MC},redirect_dir=off",
        f"{MC},redirect_dir=nofollow", f"redirect_dir=off,{MC}", f"userxattr,{MC}",
        f"{MC},userxattr", f"nfs_export=on,{MC}", f"{MC},metacopy=off", f"{MC},xino=on",
    ]):  # fmt: skip
        opts = s.std("l1:l2", extra)
        try:
            s.mount(opts)
        except OSError as e:
            r.record(f"mount_{i}", ["errno", e.errno])
            continue
        r.record(f"mount_{i}", s.mount_options())
        s.umount()
    s.mount(f"lowerdir={s.p('l1')}:{s.p('l2')},{MC}")
    r.record("read_only", s.mount_options())
    s.umount()


@scenario
def sc_metacopy_copy_up_triggers(s: Side, r: Rec) -> None:
    names = ["chmod", "chown", "utime", "setx", "remx", "ren", "renx", "link", "ro", "wo", "rw",
             "trunc", "rotrunc", "truncate", "append", "h1"]  # fmt: skip
    for n in names:
        s.write(f"l1/{n}", n * 1000)
        s.o.utime(s.p(f"l1/{n}"), ns=(10**9, 2 * 10**9))
    s.write("l1/empty", "")
    s.o.setxattr(s.p("l1/remx"), "user.a", b"1")
    s.o.setxattr(s.p("l1/setx"), "user.keep", b"k")
    s.o.link(s.p("l1/h1"), s.p("l1/h2"))
    s.o.symlink("chmod", s.p("l1/sym"))
    s.o.mkfifo(s.p("l1/fifo"))
    s.dirs("l1/sub", "l2")
    s.mount(s.std(extra=MC))
    m = s.p("m")
    for n in [*names, "empty", "h2"]:
        r.ino(f"ino_{n}", f"m/{n}")
    r.call("chmod", s.o.chmod, f"{m}/chmod", 0o600)
    r.call("chown", s.o.chown, f"{m}/chown", 7, 8)
    r.call("utime", s.o.utime, f"{m}/utime", ns=(5 * 10**9, 6 * 10**9))
    r.call("setx", s.o.setxattr, f"{m}/setx", "user.k", b"v")
    r.call("remx", s.o.removexattr, f"{m}/remx", "user.a")
    r.call("remx_missing", s.o.removexattr, f"{m}/ro", "user.none")
    r.call("ren", s.o.rename, f"{m}/ren", f"{m}/ren2")
    r.call("renx", s.o.rename, f"{m}/renx", f"{m}/sub/renx2")
    r.call("link", s.o.link, f"{m}/link", f"{m}/sub/link2")
    r.call("stat_ro", lambda: s.o.stat(f"{m}/ro").st_size)
    r.read("read_ro", "m/ro")
    for n, flags in (("ro", os.O_RDONLY), ("wo", os.O_WRONLY), ("rw", os.O_RDWR),
                     ("trunc", os.O_WRONLY | os.O_TRUNC), ("rotrunc", os.O_RDONLY | os.O_TRUNC)):  # fmt: skip
        r.call(f"open_{n}", lambda n=n, flags=flags: s.o.close(s.o.open(f"{m}/{n}", flags)))
    r.call("truncate", s.o.truncate, f"{m}/truncate", 3)
    r.call("append", _append, s, "m/append")
    r.call("empty", s.o.chmod, f"{m}/empty", 0o600)
    r.call("h1", s.o.chmod, f"{m}/h1", 0o600)
    r.call("lchown_sym", s.o.lchown, f"{m}/sym", 3, 3)
    r.call("chmod_fifo", s.o.chmod, f"{m}/fifo", 0o600)
    moved = {"ren": "ren2", "renx": "sub/renx2"}
    for n in [*names, "empty", "h2"]:
        r.ino(f"ino_after_{n}", f"m/{moved.get(n, n)}")
    r.ino("ino_link2", "m/sub/link2")
    r.call("nlink_link2", lambda: s.o.lstat(f"{m}/sub/link2").st_nlink)
    _blocks(s, r, "merged_blocks", [f"m/{moved.get(n, n)}" for n in [*names, "empty"]])
    _blocks(s, r, "upper_blocks", ["u/chmod", "u/setx", "u/ren2", "u/sub/renx2", "u/h1", "u/wo"])
    r.call("listxattr_setx", s.o.listxattr, f"{m}/setx")
    r.tree("upper_mid", "u", upper=True)
    s.umount()
    s.mount(s.std(extra=MC))
    r.tree("merged_remount", "m")
    r.ino("ino_remount_chmod", "m/chmod")
    r.ino("ino_remount_renx", "m/sub/renx2")
    _blocks(s, r, "merged_blocks_remount", ["m/chmod", "m/sub/renx2", "m/h1"])
    finish(s, r)


@scenario
def sc_metacopy_data_copy_up(s: Side, r: Rec) -> None:
    names = ["wo", "pw", "rt", "tr", "ap", "lk", "fd", "z"]
    for n in names:
        s.write(f"l1/{n}", "" if n == "z" else n * 3000)
        s.o.utime(s.p(f"l1/{n}"), ns=(10**9, 2 * 10**9))
    s.dirs("l2")
    s.mount(s.std(extra=MC))
    m = s.p("m")
    for n in names:
        s.o.chmod(f"{m}/{n}", 0o640)
    r.call("link", s.o.link, f"{m}/lk", f"{m}/lk2")
    r.tree("upper_metacopy", "u", upper=True)
    before = {n: s.o.lstat(s.p(f"u/{n}")).st_mtime_ns for n in names}
    ro = s.o.open(f"{m}/fd", os.O_RDONLY)
    r.call("open_wo", lambda: s.o.close(s.o.open(f"{m}/wo", os.O_WRONLY)))

    def pwrite() -> int:
        fd = s.o.open(f"{m}/pw", os.O_RDWR)
        try:
            return int(s.o.pwrite(fd, b"ZZ", 10))
        finally:
            s.o.close(fd)

    r.call("pwrite", pwrite)
    r.call("open_ro_trunc", lambda: s.o.close(s.o.open(f"{m}/rt", os.O_RDONLY | os.O_TRUNC)))
    r.call("truncate", s.o.truncate, f"{m}/tr", 4)
    r.call("append", _append, s, "m/ap")
    r.call("write_via_link", _append, s, "m/lk2", b"LL")
    r.call("write_fd", _append, s, "m/fd", b"NEW")
    r.call("pread_old_ro_fd", s.o.pread, ro, 12, 5995)
    s.o.close(ro)
    r.call("open_wo_empty", lambda: s.o.close(s.o.open(f"{m}/z", os.O_WRONLY)))
    r.record("mtime_changed", {n: s.o.lstat(s.p(f"u/{n}")).st_mtime_ns != before[n] for n in names})
    r.call("merged_mtime_is_upper",
           lambda: [s.o.lstat(f"{m}/{n}").st_mtime_ns == s.o.lstat(s.p(f"u/{n}")).st_mtime_ns
                    for n in names])  # fmt: skip
    _blocks(s, r, "upper_blocks", [f"u/{n}" for n in names])
    r.read("lk", "m/lk")
    finish(s, r)


@scenario
def sc_metacopy_rename_redirects(s: Side, r: Rec) -> None:
    for n in ["a", "b", "c", "e", "h1", "x", "y", "z", "d/f", "d/g", "d/k", "p/q/w"]:
        s.write(f"l1/{n}", n * 300)
    s.o.link(s.p("l1/h1"), s.p("l1/h2"))
    s.dirs("l1/s", "l1/t", "l2")
    s.mount(s.std(extra=MC))
    m = s.p("m")
    r.call("a_a2", s.o.rename, f"{m}/a", f"{m}/a2")
    r.call("a2_a3", s.o.rename, f"{m}/a2", f"{m}/a3")
    r.call("a3_s_a4", s.o.rename, f"{m}/a3", f"{m}/s/a4")
    r.call("s_a4_t_a5", s.o.rename, f"{m}/s/a4", f"{m}/t/a5")
    r.call("b_b2", s.o.rename, f"{m}/b", f"{m}/b2")
    r.call("b2_b", s.o.rename, f"{m}/b2", f"{m}/b")
    r.call("h1_h3", s.o.rename, f"{m}/h1", f"{m}/h3")
    r.call("chmod_c", s.o.chmod, f"{m}/c", 0o600)
    r.call("c_c2", s.o.rename, f"{m}/c", f"{m}/c2")
    r.call("d_f_s_f", s.o.rename, f"{m}/d/f", f"{m}/s/f")
    r.call("d_g_d_g2", s.o.rename, f"{m}/d/g", f"{m}/d/g2")
    r.call("d_g2_g3", s.o.rename, f"{m}/d/g2", f"{m}/g3")
    r.call("x_over_y", s.o.rename, f"{m}/x", f"{m}/y")
    r.call("exchange_z_e", _exchange(s), f"{m}/z", f"{m}/e")
    r.call("dir_d_d2", s.o.rename, f"{m}/d", f"{m}/d2")
    r.call("d2_k_k2", s.o.rename, f"{m}/d2/k", f"{m}/k2")
    r.call("dir_p_q_q2", s.o.rename, f"{m}/p/q", f"{m}/p/q2")  # relative dir redirect...
    r.call("dir_p_q2_s_q3", s.o.rename, f"{m}/p/q2", f"{m}/s/q3")  # ...made absolute
    r.call("w_out", s.o.rename, f"{m}/s/q3/w", f"{m}/w2")
    r.tree("upper_mid", "u", upper=True)
    r.tree("merged_mid", "m")
    s.umount()
    s.mount(s.std(extra=MC))
    r.tree("merged_remount", "m")
    r.ino("ino_a5", "m/t/a5")
    r.ino("ino_l_a", "l1/a")
    finish(s, r)


def _exchange(s: Side) -> object:
    ra2 = getattr(s.o, "renameat2", None)
    if ra2 is not None:
        return lambda a, b: ra2(a, b, 2)
    return lambda a, b: _ra2(a, b, 2)


@scenario
def sc_metacopy_link_and_hardlinks(s: Side, r: Rec) -> None:
    s.write("l1/h1", "hard" * 500)
    s.o.link(s.p("l1/h1"), s.p("l1/h2"))
    s.o.link(s.p("l1/h1"), s.p("l1/h3"))
    s.write("l1/one", "one" * 500)
    s.dirs("l1/d", "l2")
    s.mount(s.std(extra=MC))
    m = s.p("m")
    for n in ("h1", "h2", "h3"):
        r.ino(f"ino_{n}", f"m/{n}")
    r.call("chmod_h1", s.o.chmod, f"{m}/h1", 0o600)
    r.call("write_h2", _append, s, "m/h2")
    r.call("rename_h3", s.o.rename, f"{m}/h3", f"{m}/h4")
    r.call("link_h1", s.o.link, f"{m}/h1", f"{m}/d/h1b")
    r.call("link_one", s.o.link, f"{m}/one", f"{m}/one2")
    r.call("link_one_again", s.o.link, f"{m}/one2", f"{m}/d/one3")
    for n in ("h1", "h2", "h4", "d/h1b", "one", "one2", "d/one3"):
        r.ino(f"ino_after_{n}", f"m/{n}")
    r.call("nlinks", lambda: [s.o.lstat(f"{m}/{n}").st_nlink for n in ("h1", "h2", "h4", "one")])
    r.call("write_one3", _append, s, "m/d/one3")
    r.read("one", "m/one")
    r.read("one2", "m/one2")
    r.tree("upper_mid", "u", upper=True)
    s.umount()
    s.mount(s.std(extra=MC))
    r.tree("merged_remount", "m")
    finish(s, r)


@scenario
def sc_metacopy_lower_layers(s: Side, r: Rec) -> None:
    """Layers holding metacopy files (left by another metacopy mount): followed down to the
    data with metacopy=on, EIO where no data is found, EPERM with metacopy=off."""
    _meta(s, "l1/m1", 500)
    s.write("l2/m1", "L2data" * 10)
    _meta(s, "l1/m2", 500, b"/data/blob")
    s.write("l2/data/blob", "BLOB" * 10)
    _meta(s, "l1/m3", 500, b"other")
    s.write("l2/other", "OTHER" * 10)
    _meta(s, "l3/m4", 500)  # the lowest layer: nothing below
    _meta(s, "l1/m5", 500)
    s.dirs("l2/m5")  # a directory below
    _meta(s, "l1/m6", 500)
    s.o.mknod(s.p("l2/m6"), stat.S_IFCHR, 0)  # a whiteout below
    _meta(s, "l1/m7", 500)  # nothing below
    _meta(s, "l1/m8", 500, value=b"y")  # 1..3 bytes: "too small xattr"
    s.write("l2/m8", "d8")
    _meta(s, "l1/m9", 500, value=b"\0\4\0\0")
    s.write("l2/m9", "d9")
    s.o.symlink("m1", s.p("l1/sl"))
    s.o.setxattr(s.p("l1/sl"), "trusted.overlay.metacopy", b"", follow_symlinks=False)
    s.dirs("l1/dd")
    s.o.setxattr(s.p("l1/dd"), "trusted.overlay.metacopy", b"")
    s.write("l2/dd/x", "x")
    _meta(s, "l1/c1", 500)
    _meta(s, "l2/c1", 500)
    s.write("l3/c1", "L3c1")
    _meta(s, "l1/ms", 500)
    s.o.symlink("m1", s.p("l2/ms"))
    _meta(s, "l1/c2", 500)
    _meta(s, "l2/c2", 500, b"c2data")
    s.write("l3/c2data", "C2DATA")
    s.write("l3/c2", "WRONG")
    s.write("l2/p/f", "pf")
    s.o.setxattr(s.p("l2/p"), "trusted.overlay.opaque", b"y")
    s.write("l3/p/f", "hidden")
    _meta(s, "l1/via_opaque", 10, b"/p/f")
    s.write("l2/q", "q is a file")
    s.write("l3/q/f", "below a file")
    _meta(s, "l1/via_file", 10, b"/q/f")
    names = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "sl", "dd", "c1", "ms", "c2",
             "via_opaque", "via_file"]  # fmt: skip
    s.dirs("l3")
    for extra in (MC, "", "redirect_dir=on"):
        s.mount(s.std("l1:l2:l3", extra))
        for n in names:
            r.call(f"stat_{n}_{extra}", lambda n=n: _stat(s, f"m/{n}"))
            r.read(f"read_{n}_{extra}", f"m/{n}")
        if extra == MC:
            r.ino("ino_m1", "m/m1")
            r.ino("ino_l1_m1", "l1/m1")
            r.call("chmod_m1", s.o.chmod, s.p("m/m1"), 0o600)
            r.call("chmod_m2", s.o.chmod, s.p("m/m2"), 0o600)
            r.call("rename_m3", s.o.rename, s.p("m/m3"), s.p("m/m3b"))
            r.call("append_c2", _append, s, "m/c2")
            r.call("rename_c1", s.o.rename, s.p("m/c1"), s.p("m/dd/c1"))
            r.ino("ino_m1_after", "m/m1")
            r.ino("ino_m2_after", "m/m2")
            r.ino("ino_l1_m2", "l1/m2")
            for n in ("m1", "m2", "m3b", "c2", "dd/c1"):
                r.read(f"read_after_{n}", f"m/{n}")
            r.tree("upper_mid", "u", upper=True)
        s.umount()
    r.tree("upper", "u", upper=True)
    r.work("work")


def _stat(s: Side, rel: str) -> list[object]:
    st = s.o.lstat(s.p(rel))
    return [oct(st.st_mode), st.st_size, st.st_blocks, st.st_nlink]


@scenario
def sc_metacopy_upper_without_data(s: Side, r: Rec) -> None:
    _meta(s, "u/pu/x", 10)  # a pure upper dir: no lower to search
    _meta(s, "u/nolow", 10)
    _meta(s, "u/badredir", 10, b"/nothere")
    s.write("l1/badredir", "bad")
    s.write("l1/md/a", "a")
    _meta(s, "u/goodredir", 10, b"/md/a")
    _meta(s, "u/short", 5)
    s.write("l1/short", "0123456789")
    _meta(s, "u/long", 20)
    s.write("l1/long", "0123456789")
    s.write("l2/md/b", "b")
    for extra in (MC, ""):
        s.mount(s.std(extra=extra))
        for n in ("pu/x", "nolow", "badredir", "goodredir", "short", "long"):
            r.call(f"stat_{n}_{extra}", lambda n=n: _stat(s, f"m/{n}"))
            r.read(f"read_{n}_{extra}", f"m/{n}")
        if extra:
            r.call("write_short", _append, s, "m/short", b"X")
            r.call("write_long", lambda: s.o.truncate(s.p("m/long"), 15))
            r.read("short_after", "m/short")
            r.read("long_after", "m/long")
            r.call("mkdir_in_merge", s.o.mkdir, s.p("m/md/new"))
            r.call("mkdir_in_root", s.o.mkdir, s.p("m/new"))
            r.call("mkdir_in_pure", s.o.mkdir, s.p("m/new/sub"))
            r.call("unlink_goodredir", s.o.unlink, s.p("m/goodredir"))
        s.umount()
    r.tree("upper", "u", upper=True)
    r.work("work")


@scenario
def sc_metacopy_readdir_lookup_failures(s: Side, r: Rec) -> None:
    """An impure merge dir looks its upper entries up when listed: an entry whose lookup fails
    (a metacopy file without data: EIO) is dropped, two in a row fail the listing (the first
    ends a getdents call that returned entries, the second starts one). Not impure: listed."""
    for i, pattern in enumerate((["ok1", "bad1", "bad2", "ok2"], ["ok1", "bad1", "ok2", "bad2"],
                                 ["bad1"], ["bad1", "bad2"], ["bad1", "ok1"])):  # fmt: skip
        base = f"c{i}"
        s.write(f"{base}/l1/lo", "x")
        s.dirs(f"{base}/l2", f"{base}/u", f"{base}/w", "m")
        for n in pattern:  # tmpfs lists the newest first, the simulator too
            if n.startswith("bad"):
                _meta(s, f"{base}/u/{n}", 10)
            else:
                s.write(f"{base}/u/{n}", "ok")
        opts = (f"lowerdir={s.p(base + '/l1')}:{s.p(base + '/l2')},upperdir={s.p(base + '/u')},"
                f"workdir={s.p(base + '/w')},{MC}")  # fmt: skip
        for impure in (False, True):
            if impure:
                s.o.setxattr(s.p(f"{base}/u"), "trusted.overlay.impure", b"y")
            s.mount(opts)
            r.call(f"listdir_{i}_{impure}", lambda: s.o.listdir(s.mnt))
            r.call(f"stat_bad1_{i}_{impure}", s.o.lstat, f"{s.mnt}/bad1")
            s.umount()


@scenario
def sc_metacopy_readdir_xwhiteout_lookups(s: Side, r: Rec) -> None:
    """In a merged dir whose lookup met an opaque="x" dir, regular files of such layers are
    looked up when listed (for xattr whiteouts): failures count as in an impure dir."""
    for name, pattern in (("c", ["ok1", "bad1", "bad2"]), ("c2", ["bad1", "ok1", "bad2"])):
        s.dirs(f"l1/{name}")
        s.o.setxattr(s.p(f"l1/{name}"), "trusted.overlay.opaque", b"x")
        for n in pattern:
            if n.startswith("bad"):
                _meta(s, f"l1/{name}/{n}", 10)
            else:
                s.write(f"l1/{name}/{n}", "ok")
    s.mount(s.std(extra=MC))
    for name in ("c", "c2"):
        r.call(f"listdir_lower_{name}", s.o.listdir, s.p(f"m/{name}"))
        r.call(f"chown_{name}", s.o.chown, s.p(f"m/{name}"), 1, 1)
        r.call(f"listdir_merged_{name}", s.o.listdir, s.p(f"m/{name}"))
    s.umount()
    r.tree("upper", "u", upper=True)
