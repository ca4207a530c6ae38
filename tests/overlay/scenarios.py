"""Overlay scenarios from the measured table (kernel spec section 7), run on both sides."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from tests.overlay.oharness import Rec, Side

Scenario = Callable[[Side, Rec], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__.removeprefix("sc_")] = fn
    return fn


def fixture(s: Side) -> str:
    """L1: f, d/{a,b}, e/, s->f, h1=h2; L2: g, d/c, f (hidden by L1's)."""
    s.write("l1/f", "L1 f")
    s.write("l1/d/a", "a")
    s.write("l1/d/b", "b")
    s.dirs("l1/e")
    s.o.symlink("f", s.p("l1/s"))
    s.write("l1/h1", "hard")
    s.o.link(s.p("l1/h1"), s.p("l1/h2"))
    s.write("l2/g", "L2 g")
    s.write("l2/d/c", "c")
    s.write("l2/f", "L2 f")
    return s.std()


def finish(s: Side, r: Rec) -> None:
    r.tree("merged", "m")
    s.umount()
    r.tree("upper", "u", upper=True)
    r.work("work")


@scenario
def sc_lookup_and_read(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.ls("ls_root_order", "m")
    r.ls("ls_d_order", "m/d")
    r.read("f", "m/f")
    r.call("readlink", s.o.readlink, s.p("m/s"))
    r.call("nlink_root", lambda: s.o.stat(s.p("m")).st_nlink)
    r.call("nlink_e", lambda: s.o.stat(s.p("m/e")).st_nlink)
    r.call("access_w_no_copyup", s.o.access, s.p("m/f"), os.W_OK)
    finish(s, r)


@scenario
def sc_unlink_and_whiteouts(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.call("unlink_f", s.o.unlink, s.p("m/f"))
    r.call("unlink_g", s.o.unlink, s.p("m/g"))
    r.call("unlink_again", s.o.unlink, s.p("m/f"))
    r.call("wh_nlink", lambda: s.o.lstat(s.p("u/g")).st_nlink)
    s.write("m/new", "x")
    r.call("unlink_pure", s.o.unlink, s.p("m/new"))
    r.call("rmdir_e", s.o.rmdir, s.p("m/e"))
    r.call("rmdir_d", s.o.rmdir, s.p("m/d"))
    finish(s, r)


@scenario
def sc_rmdir_after_emptying(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    for n in "abc":
        r.call(f"unlink_{n}", s.o.unlink, s.p(f"m/d/{n}"))
    r.ls("ls_d", "m/d")
    r.tree("upper_before", "u", upper=True)
    r.call("rmdir_d", s.o.rmdir, s.p("m/d"))
    finish(s, r)


@scenario
def sc_create_over_whiteouts(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    for n in "abc":
        s.o.unlink(s.p(f"m/d/{n}"))
    s.o.rmdir(s.p("m/d"))
    r.call("mkdir_d", s.o.mkdir, s.p("m/d"))
    s.o.unlink(s.p("m/f"))
    s.write("m/f", "new f")
    s.o.rmdir(s.p("m/e"))
    s.write("m/e", "file over dir")
    r.call("mkdir_brandnew", s.o.mkdir, s.p("m/brandnew"))
    r.ls("ls_d", "m/d")
    r.call("mknod_wh", s.o.mknod, s.p("m/g2"), stat.S_IFCHR, 0)
    finish(s, r)


@scenario
def sc_copy_up_parents_and_attrs(s: Side, r: Rec) -> None:
    s.write("l1/d/sub/f", "payload", 0o640)
    s.o.chown(s.p("l1/d/sub/f"), 1234, 5678)
    s.o.setxattr(s.p("l1/d/sub/f"), "user.color", b"blue")
    s.o.setxattr(s.p("l1/d/sub/f"), "trusted.mine", b"x")
    s.o.utime(s.p("l1/d/sub/f"), ns=(1_000_000_000, 2_000_000_000))
    s.o.utime(s.p("l1/d"), ns=(3_000_000_000, 4_000_000_000))
    s.o.chmod(s.p("l1/d"), 0o750)
    s.dirs("l2")
    s.mount(s.std())
    r.ino("ino_before", "m/d/sub/f")
    def append() -> None:
        fd = s.o.open(s.p("m/d/sub/f"), os.O_WRONLY | os.O_APPEND)
        s.o.write(fd, b"+more")
        s.o.close(fd)
    r.call("append", append)
    r.ino("ino_after", "m/d/sub/f")
    st = s.o.lstat(s.p("m/d/sub/f"))
    r.record("times", [st.st_atime_ns, st.st_mtime_ns == 2_000_000_000])
    r.record("dir_mtime", s.o.lstat(s.p("m/d")).st_mtime_ns)
    r.call("getx", s.o.listxattr, s.p("m/d/sub/f"))
    r.call("get_origin", s.o.getxattr, s.p("m/d/sub/f"), "trusted.overlay.origin")
    finish(s, r)


@scenario
def sc_copy_up_triggers(s: Side, r: Rec) -> None:
    for n in ("ro", "rw", "wo", "tr", "trunc", "chmod", "chown", "utime", "setx", "link"):
        s.write(f"l1/{n}", n)
    s.o.symlink("ro", s.p("l1/lk"))
    s.dirs("l2")
    s.mount(s.std())
    m = s.p("m")
    s.o.close(s.o.open(f"{m}/ro", os.O_RDONLY))
    s.o.stat(f"{m}/ro")
    s.o.listxattr(f"{m}/ro")
    s.o.readlink(f"{m}/lk")
    r.tree("after_reads", "u", upper=True)
    s.o.close(s.o.open(f"{m}/rw", os.O_RDWR))
    s.o.close(s.o.open(f"{m}/wo", os.O_WRONLY))
    s.o.close(s.o.open(f"{m}/tr", os.O_RDONLY | os.O_TRUNC))
    s.o.truncate(f"{m}/trunc", 1)
    s.o.chmod(f"{m}/chmod", 0o600)
    s.o.chown(f"{m}/chown", 7, 7)
    s.o.utime(f"{m}/utime", ns=(5, 6))
    s.o.setxattr(f"{m}/setx", "user.k", b"v")
    s.o.link(f"{m}/link", f"{m}/link2")
    s.o.lchown(f"{m}/lk", 9, 9)
    finish(s, r)


@scenario
def sc_rename_files(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    s.write("m/up", "pure")
    r.call("f_to_f2", s.o.rename, s.p("m/f"), s.p("m/f2"))
    r.call("a_to_root", s.o.rename, s.p("m/d/a"), s.p("m/a_moved"))
    r.call("g_into_d", s.o.rename, s.p("m/g"), s.p("m/d/g"))
    r.call("pure", s.o.rename, s.p("m/up"), s.p("m/up2"))
    r.call("h1_over_h2", s.o.rename, s.p("m/h1"), s.p("m/h2"))
    r.call("file_over_dir", s.o.rename, s.p("m/f2"), s.p("m/e"))
    finish(s, r)


@scenario
def sc_rename_dirs_exdev(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.call("merged_dir", s.o.rename, s.p("m/d"), s.p("m/d2"))
    r.call("lower", s.o.rename, s.p("m/e"), s.p("m/e2"))
    s.o.mkdir(s.p("m/nd"))
    r.call("pure", s.o.rename, s.p("m/nd"), s.p("m/nd2"))
    s.o.mkdir(s.p("m/nd3"))
    r.call("pure_over_lower_empty", s.o.rename, s.p("m/nd3"), s.p("m/e"))
    finish(s, r)


@scenario
def sc_rename_dirs_redirect(s: Side, r: Rec) -> None:
    s.write("l1/p/q/r", "deep")
    opts = fixture(s) + ",redirect_dir=on"
    s.mount(opts)
    r.call("d_to_d2", s.o.rename, s.p("m/d"), s.p("m/d2"))
    r.call("e_to_e2", s.o.rename, s.p("m/e"), s.p("m/e2"))
    r.call("pq_to_q2", s.o.rename, s.p("m/p/q"), s.p("m/q2"))
    r.ls("ls_d2", "m/d2")
    r.ls("ls_q2", "m/q2")
    r.tree("upper_mid", "u", upper=True)
    s.umount()
    s.mount(opts)
    r.ls("ls_d2_remount", "m/d2")
    r.call("back", s.o.rename, s.p("m/d2"), s.p("m/d"))
    r.call("q2_into_p", s.o.rename, s.p("m/q2"), s.p("m/p/q2"))
    r.ls("ls_pq2", "m/p/q2")
    finish(s, r)


@scenario
def sc_renameat2_flags(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    s.write("m/u1", "upper one")
    ra2 = getattr(s.o, "renameat2", None) or _kernel_renameat2
    r.call("noreplace_lower", ra2, s.p("m/u1"), s.p("m/g"), 1)
    r.call("exchange_upper_lower", ra2, s.p("m/u1"), s.p("m/g"), 2)
    r.call("whiteout_flag", ra2, s.p("m/f"), s.p("m/f9"), 4)
    r.call("exchange_missing", ra2, s.p("m/f"), s.p("m/nope"), 2)
    r.read("g_after", "m/g")
    r.read("u1_after", "m/u1")
    finish(s, r)


def _kernel_renameat2(src: str, dst: str, flags: int) -> None:
    import ctypes
    import errno as _errno

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    del _errno


@scenario
def sc_odd_names_and_devices(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.call("mknod_00", s.o.mknod, s.p("m/w0"), stat.S_IFCHR | 0o600, 0)
    r.call("mknod_13", s.o.mknod, s.p("m/null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    r.call("fifo", s.o.mkfifo, s.p("m/fifo"))
    r.call("sock", s.o.mknod, s.p("m/sock"), stat.S_IFSOCK | 0o600)
    s.write("m/.wh.d", "")
    s.write("m/.wh..wh..opq", "")
    r.ls("ls_d", "m/d")
    finish(s, r)


@scenario
def sc_enotempty_rules(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    s.o.mkdir(s.p("m/pu"))
    s.write("m/pu/x", "")
    r.call("pure_nonempty", s.o.rmdir, s.p("m/pu"))
    r.call("merged_visible", s.o.rmdir, s.p("m/d"))
    r.call("rmdir_symlink", s.o.rmdir, s.p("m/s"))
    r.call("unlink_dir", s.o.unlink, s.p("m/e"))
    finish(s, r)


@scenario
def sc_hardlinks_index_off(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.ino("h1_before", "m/h1")
    fd = s.o.open(s.p("m/h1"), os.O_WRONLY | os.O_APPEND)
    s.o.write(fd, b"+w")
    s.o.close(fd)
    r.read("h1", "m/h1")
    r.read("h2", "m/h2")
    r.ino("h1_after", "m/h1")
    r.ino("h2_after", "m/h2")
    r.call("nlinks", lambda: [s.o.stat(s.p("m/h1")).st_nlink, s.o.stat(s.p("m/h2")).st_nlink])
    finish(s, r)


@scenario
def sc_xattr_escaping(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.call("set_ovl", s.o.setxattr, s.p("m/f"), "trusted.overlay.opaque", b"y")
    r.call("list", s.o.listxattr, s.p("m/f"))
    r.call("get", s.o.getxattr, s.p("m/f"), "trusted.overlay.opaque")
    finish(s, r)


@scenario
def sc_readdir_order_layers(s: Side, r: Rec) -> None:
    for n in ("zu", "au"):
        s.write(f"l0/{n}")
    for n in ("b1", "shared", "a1"):
        s.write(f"l1/{n}")
    for n in ("shared", "a2", "c2"):
        s.write(f"l2/{n}")
    for n in ("shared", "b3", "c3", "gone", "a3"):
        s.write(f"l3/{n}")
    s.dirs("l0/sub", "l3/sub")
    s.write("l3/sub/x")
    s.write("l0/sub/y")
    opts = s.std("l1:l2:l3")
    s.mount(opts)
    s.o.unlink(s.p("m/gone"))
    s.write("m/zz_new")
    r.ls("order", "m")
    r.ls("order_sub", "m/sub")
    finish(s, r)


@scenario
def sc_handmade_opaque_and_xwhiteouts(s: Side, r: Rec) -> None:
    s.write("l3/op/victim")
    s.write("l3/opx/victim")
    s.write("l3/xw/victim")
    s.write("l3/xw2/victim")
    s.dirs("l2/op", "l2/opx", "l2/xw", "l2/xw2", "l1")
    s.o.setxattr(s.p("l2/op"), "trusted.overlay.opaque", b"y")
    s.o.setxattr(s.p("l2/opx"), "trusted.overlay.opaque", b"x")
    s.write("l2/xw/victim")
    s.o.setxattr(s.p("l2/xw/victim"), "trusted.overlay.whiteout", b"")
    s.o.setxattr(s.p("l2/xw"), "trusted.overlay.opaque", b"x")
    s.write("l2/xw2/victim")
    s.o.setxattr(s.p("l2/xw2/victim"), "trusted.overlay.whiteout", b"")
    s.mount(s.std("l1:l2:l3"))
    for d in ("op", "opx", "xw", "xw2"):
        r.ls(f"ls_{d}", f"m/{d}")
        r.call(f"stat_{d}_victim", lambda d=d: s.o.lstat(s.p(f"m/{d}/victim")).st_size)
    r.call("rmdir_xw", s.o.rmdir, s.p("m/xw"))
    finish(s, r)


@scenario
def sc_stray_whiteouts(s: Side, r: Rec) -> None:
    s.dirs("l1/lo", "l2", "u/pu")
    s.o.mknod(s.p("l1/lo/wh"), stat.S_IFCHR, 0)
    s.o.mknod(s.p("u/pu/wh"), stat.S_IFCHR, 0)
    s.write("l1/lo/real")
    s.mount(s.std())
    r.ls("ls_lower_only", "m/lo")
    r.call("stat_lower_stray", s.o.lstat, s.p("m/lo/wh"))
    r.ls("ls_pure_upper", "m/pu")
    r.call("rmdir_pure_with_stray", s.o.rmdir, s.p("m/pu"))
    finish(s, r)


@scenario
def sc_dir_nlink_and_chmod(s: Side, r: Rec) -> None:
    s.dirs("l1/lo/x", "l1/lo/y", "l1/md", "l2/md")
    s.o.utime(s.p("l1/md"), ns=(10**9, 10**9))
    s.mount(s.std())
    s.o.makedirs(s.p("m/pu/x"))
    s.o.mkdir(s.p("m/pu/y"))
    r.call("nlinks", lambda: [s.o.stat(s.p(f"m/{d}")).st_nlink for d in ("", "lo", "pu", "md")])
    r.call("chmod_md", s.o.chmod, s.p("m/md"), 0o711)
    r.call("md_mtime_kept", lambda: s.o.stat(s.p("m/md")).st_mtime_ns)
    finish(s, r)


@scenario
def sc_link_cases(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    r.call("link_dir", s.o.link, s.p("m/d"), s.p("m/dl"))
    r.call("link_over_lower", s.o.link, s.p("m/f"), s.p("m/g"))
    s.o.unlink(s.p("m/g"))
    r.call("link_onto_whiteout", s.o.link, s.p("m/f"), s.p("m/g"))
    r.call("link_into_dir", s.o.link, s.p("m/f"), s.p("m/d/g"))
    r.call("link_from_whited", s.o.link, s.p("m/gone"), s.p("m/x"))
    r.call("nlink", lambda: s.o.stat(s.p("m/f")).st_nlink)
    finish(s, r)


@scenario
def sc_read_only_overlay(s: Side, r: Rec) -> None:
    fixture(s)
    opts = f"lowerdir={s.p('l1')}:{s.p('l2')}"
    s.mount(opts)
    r.call("write", s.o.open, s.p("m/f"), os.O_WRONLY)
    r.call("create", s.o.open, s.p("m/new"), os.O_WRONLY | os.O_CREAT, 0o644)
    r.call("unlink", s.o.unlink, s.p("m/f"))
    r.call("chmod", s.o.chmod, s.p("m/f"), 0o600)
    r.call("mkdir", s.o.mkdir, s.p("m/nd"))
    r.tree("merged", "m")
    s.umount()


@scenario
def sc_remount_resets_work(s: Side, r: Rec) -> None:
    opts = fixture(s)
    s.mount(opts)
    s.o.unlink(s.p("m/f"))
    s.o.unlink(s.p("m/g"))
    r.call("nlink_first", lambda: s.o.lstat(s.p("u/f")).st_nlink)
    s.umount()
    s.mount(opts)
    r.call("nlink_after_remount", lambda: s.o.lstat(s.p("u/f")).st_nlink)
    s.o.unlink(s.p("m/s"))
    r.call("nlink_new", lambda: s.o.lstat(s.p("u/s")).st_nlink)
    r.call("work_entries", lambda: len(s.o.listdir(s.p("w/work"))))
    finish(s, r)


@scenario
def sc_userxattr(s: Side, r: Rec) -> None:
    opts = fixture(s) + ",userxattr"
    s.mount(opts)
    s.o.unlink(s.p("m/f"))
    s.o.rmdir(s.p("m/e"))
    s.o.mkdir(s.p("m/e"))
    fd = s.o.open(s.p("m/g"), os.O_WRONLY | os.O_APPEND)
    s.o.close(fd)
    r.call("rename_dir", s.o.rename, s.p("m/d"), s.p("m/d2"))
    r.call("set_user_ovl", s.o.setxattr, s.p("m/g"), "user.overlay.x", b"1")
    finish(s, r)


@scenario
def sc_fd_before_copy_up(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    ro = s.o.open(s.p("m/f"), os.O_RDONLY)
    fd = s.o.open(s.p("m/f"), os.O_WRONLY | os.O_TRUNC)
    s.o.write(fd, b"new data")
    s.o.close(fd)
    r.call("pread_old_fd", s.o.pread, ro, 100, 0)
    r.call("fstat_size", lambda: s.o.fstat(ro).st_size)
    s.o.close(ro)
    finish(s, r)


@scenario
def sc_volatile(s: Side, r: Rec) -> None:
    opts = fixture(s) + ",volatile"
    s.mount(opts)
    s.write("m/x", "y")
    s.umount()
    r.work("work_after")
    r.call("remount", s.mount, opts)


@scenario
def sc_trailing_slashes_and_dots(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    m = s.p("m")
    r.call("stat_file_slash", s.o.lstat, f"{m}/f/")
    r.call("rmdir_dir_slash", s.o.rmdir, f"{m}/e/")
    r.call("unlink_file_slash", s.o.unlink, f"{m}/g/")
    r.call("mkdir_slash", s.o.mkdir, f"{m}/nd/")
    r.call("rename_to_slash", s.o.rename, f"{m}/g", f"{m}/g2/")
    r.call("rmdir_dot", s.o.rmdir, f"{m}/d/.")
    r.call("stat_dotdot", lambda: s.o.stat(f"{m}/d/..").st_nlink)
    finish(s, r)


@scenario
def sc_redirect_exchange_and_chains(s: Side, r: Rec) -> None:
    s.write("l1/src/x", "src")
    s.dirs("l1/empty")
    s.write("l1/full/y", "full")
    opts = fixture(s) + ",redirect_dir=on"
    s.mount(opts)
    r.call("src_over_full", s.o.rename, s.p("m/src"), s.p("m/full"))
    r.call("src_over_empty", s.o.rename, s.p("m/src"), s.p("m/empty"))
    r.call("empty_over_full", s.o.rename, s.p("m/empty"), s.p("m/full"))
    r.ls("ls_full", "m/full")
    r.call("exchange_file_dir", s.o.renameat2 if hasattr(s.o, "renameat2") else _ra2,
           s.p("m/g"), s.p("m/d"), 2)
    r.ls("ls_g", "m/g")
    s.umount()
    s.mount(opts)
    r.ls("ls_full_remount", "m/full")
    r.ls("ls_g_remount", "m/g")
    finish(s, r)


def _ra2(src: str, dst: str, flags: int) -> None:
    _kernel_renameat2(src, dst, flags)


@scenario
def sc_create_kinds_over_whiteouts(s: Side, r: Rec) -> None:
    s.mount(fixture(s))
    for n in ("f", "g", "s", "h1"):
        s.o.unlink(s.p(f"m/{n}"))
    r.call("symlink_over", s.o.symlink, "target", s.p("m/f"))
    r.call("mkfifo_over", s.o.mkfifo, s.p("m/g"))
    r.call("creat_excl_over", lambda: s.o.close(s.o.open(s.p("m/s"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)))
    s.write("m/pure", "p")
    r.call("rename_over_wh", s.o.rename, s.p("m/pure"), s.p("m/h1"))
    finish(s, r)


@scenario
def sc_opaque_dir_rmdir_with_strays(s: Side, r: Rec) -> None:
    s.write("l1/od/x", "x")
    s.dirs("l2")
    s.mount(s.std())
    s.o.unlink(s.p("m/od/x"))
    s.o.rmdir(s.p("m/od"))
    s.o.mkdir(s.p("m/od"))
    s.write("m/od/n", "n")
    r.call("rmdir_nonempty_opaque", s.o.rmdir, s.p("m/od"))
    s.o.unlink(s.p("m/od/n"))
    r.call("rmdir_opaque", s.o.rmdir, s.p("m/od"))
    finish(s, r)


@scenario
def sc_non_root_in_overlay(s: Side, r: Rec) -> None:
    s.write("l1/mine", "mine")
    s.o.chown(s.p("l1/mine"), 1000, 1000)
    s.write("l1/theirs", "theirs")
    s.dirs("l1/pub", "l2")
    s.o.chmod(s.p("l1/pub"), 0o777)
    s.mount(s.std())

    def append(rel: str) -> Callable[[Any], None]:
        def go(o: Any) -> None:
            fd = o.open(s.p(rel), os.O_WRONLY | os.O_APPEND)
            o.write(fd, b"+")
            o.close(fd)

        return go

    def create(o: Any) -> None:
        o.close(o.open(s.p("m/pub/new"), os.O_CREAT | os.O_WRONLY, 0o644))

    r.call("append_mine", s.run_as, 1000, 1000, append("m/mine"))
    r.call("append_theirs", s.run_as, 1000, 1000, append("m/theirs"))
    r.call("create_in_pub", s.run_as, 1000, 1000, create)
    r.call("unlink_theirs", s.run_as, 1000, 1000, lambda o: o.unlink(s.p("m/theirs")))
    finish(s, r)


@scenario
def sc_rename_between_links_of_an_origin_less_copy_up(s: Side, r: Rec) -> None:
    """Found by `overlaysim fuzz` (userxattr): a lower symlink cannot carry user.overlay.origin,
    so after `link a f` the two names are two overlay inodes over one upper inode (two st_ino);
    renaming one onto the other is not vfs_rename's no-op: RENAME_WHITEOUT is EINVAL and a plain
    rename ESTALE. With trusted xattrs the copy-up has an origin and both names are one inode."""
    s.dirs("l1", "l2", "u", "w", "m")
    s.o.symlink("a", s.p("l2/a"))
    ra2 = getattr(s.o, "renameat2", None) or _kernel_renameat2
    for i, extra in enumerate(["userxattr", ""]):
        s.mount(s.std("l1:l2", extra))
        s.o.link(s.p("m/a"), s.p("m/f"), follow_symlinks=False)
        r.call(f"same_ino_{i}", lambda: s.o.lstat(s.p("m/a")).st_ino == s.o.lstat(s.p("m/f")).st_ino)
        r.call(f"whiteout_{i}", ra2, s.p("m/a"), s.p("m/f"), 4)
        r.call(f"plain_{i}", ra2, s.p("m/a"), s.p("m/f"), 0)
        r.ls(f"ls_{i}", "m")
        s.umount()
        for d in ("u", "w"):
            for name in s.o.listdir(s.p(d)):
                p = s.p(f"{d}/{name}")
                if s.o.path.isdir(p) and not s.o.path.islink(p):
                    for sub in s.o.listdir(p):
                        s.o.rmdir(f"{p}/{sub}") if s.o.path.isdir(f"{p}/{sub}") else s.o.unlink(f"{p}/{sub}")
                    s.o.rmdir(p)
                else:
                    s.o.unlink(p)
