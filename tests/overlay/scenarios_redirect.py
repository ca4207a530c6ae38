"""redirect_dir scenarios (the redirect audit), run on the kernel and on the simulator.

Registered in the same table as tests/overlay/scenarios.py. What they pin down, measured on
Linux 6.18 (tmpfs layers, as the harness builds them):

* a merge/lower dir renamed in its directory gets a relative redirect (its name before the
  move); moved into another directory, an absolute one (its lower path, built from the
  redirects of its ancestors). A redirect it has is never removed: renaming back to the
  original name keeps it; a relative one is replaced by an absolute one when the dir moves to
  another parent again; an absolute one stays as it is.
* the absolute path is built from the ancestors' redirects, so it may be longer than the merged
  path: longer than ``redirect_max`` (the module parameter, 256 here) the rename is EXDEV (user
  space falls back to copying), after the copy-ups it needed; a relative redirect has no limit.
* existing redirects are followed with redirect_dir=on/follow (and "off", which means follow
  with redirect_always_follow=Y), refused with EPERM under nofollow; invalid ones are EINVAL,
  and a ".." or "." component makes the layer lookup fail (EACCES), as lookup_one() refuses it.
"""

from __future__ import annotations

import os

from tests.overlay.oharness import Rec, Side
from tests.overlay.scenarios import finish, scenario

RD = "redirect_dir=on"
R = "trusted.overlay.redirect"


def _redirect(s: Side, rel: str) -> str | None:
    try:
        return bytes(s.o.getxattr(s.p(rel), R)).decode()
    except OSError:
        return None


@scenario
def sc_redirect_rename_chains(s: Side, r: Rec) -> None:
    """Chains of renames: what each step leaves in the redirect xattr."""
    for d in ("a", "c", "p/q", "r/x", "y0/c", "k", "ov", "e"):
        s.write(f"l1/{d}/f", d)
    s.write("l2/a/g", "a below")
    s.dirs("l1/s", "l1/t", "l1/z", "l2/e2")
    s.mount(s.std(extra=RD))
    m = s.p("m")
    steps = [
        ("a_a2", "a", "a2"), ("a2_a3", "a2", "a3"), ("a3_a", "a3", "a"),  # back home: kept
        ("c_s_c2", "c", "s/c2"), ("s_c2_c3", "s/c2", "c3"),  # absolute, then kept
        ("pq_q2", "p/q", "p/q2"), ("pq2_t_q3", "p/q2", "t/q3"),  # relative made absolute
        ("rx_x2", "r/x", "r/x2"), ("r_r2", "r", "r2"),  # the parent of a redirected dir moves
        ("y0_y", "y0", "y"), ("y_c_z_c2", "y/c", "z/c2"),  # lower child of a renamed parent
        ("k_y_k2", "k", "y/k2"), ("y_k2_z_k3", "y/k2", "z/k3"),
        ("ov_over_e2", "ov", "e2"),  # over an empty lower dir
        ("e_s_e", "e", "s/e"), ("s_e_e", "s/e", "e"),  # away and back home
    ]  # fmt: skip
    for key, src, dst in steps:
        r.call(key, s.o.rename, f"{m}/{src}", f"{m}/{dst}")
        r.record(f"redirect_{key}", _redirect(s, f"u/{dst}"))
    s.o.mkdir(f"{m}/pure")
    r.call("pure_rename", s.o.rename, f"{m}/pure", f"{m}/pure2")
    r.call("pure_into_merge", s.o.rename, f"{m}/pure2", f"{m}/a/pure3")
    for d in ("a", "c3", "t/q3", "r2/x2", "z/c2", "z/k3", "e2", "e"):
        r.ls(f"ls_{d}", f"m/{d}")
    r.tree("upper_mid", "u", upper=True)
    s.umount()
    s.mount(s.std(extra=RD))
    r.tree("merged_remount", "m")
    r.call("r2_x2_back", s.o.rename, f"{m}/r2/x2", f"{m}/r2/x")
    r.call("r2_x_out", s.o.rename, f"{m}/r2/x", f"{m}/x4")
    r.record("redirect_x4", _redirect(s, "u/x4"))
    r.ls("ls_x4", "m/x4")
    finish(s, r)


@scenario
def sc_redirect_max(s: Side, r: Rec) -> None:
    """An absolute redirect longer than redirect_max (256) is EXDEV; 256 itself is fine."""
    a, b = "A" * 100, "B" * 100
    ok, long = "c" * 53, "d" * 54  # "/A../B../" is 203 bytes: 256 and 257 in all
    for n in (ok, long):
        s.write(f"l1/{a}/{b}/{n}/f", n[:1])
    s.write(f"l1/{a}/{b}/e/{'g' * 60}/f", "g")
    s.write(f"l1/{'h' * 200}/f", "h")
    s.dirs("l1/dst", "l2")
    s.mount(s.std(extra=RD))
    m = s.p("m")
    r.call("exactly_256", s.o.rename, f"{m}/{a}/{b}/{ok}", f"{m}/dst/ok")
    r.call("257_exdev", s.o.rename, f"{m}/{a}/{b}/{long}", f"{m}/dst/long")
    r.call("257_samedir_relative", s.o.rename, f"{m}/{a}/{b}/{long}", f"{m}/{a}/{b}/{'x' * 255}")
    r.call("e_to_root", s.o.rename, f"{m}/{a}/{b}/e", f"{m}/dst/e")  # "/A/B/e": short enough
    # the child's absolute path is built from its parent's redirect, not from /dst/e
    r.call("child_of_redirected_exdev", s.o.rename, f"{m}/dst/e/{'g' * 60}", f"{m}/g")
    r.call("long_name_root", s.o.rename, f"{m}/{'h' * 200}", f"{m}/dst/{'i' * 250}")
    r.tree("upper", "u", upper=True)
    r.tree("merged", "m")
    s.umount()
    r.work("work")


@scenario
def sc_redirect_max_metacopy(s: Side, r: Rec) -> None:
    """A metacopy file's redirect is bound by redirect_max too; its copy-up stays."""
    a, b = "A" * 120, "B" * 120
    s.write(f"l1/{a}/{b}/{'f' * 13}", "fits")  # "/A../B../f..": 256 bytes
    s.write(f"l1/{a}/{b}/{'g' * 14}", "long")
    s.dirs("l1/dst", "l2")
    s.mount(s.std(extra="metacopy=on"))
    m = s.p("m")
    r.call("file_256", s.o.rename, f"{m}/{a}/{b}/{'f' * 13}", f"{m}/dst/f")
    r.call("file_257", s.o.rename, f"{m}/{a}/{b}/{'g' * 14}", f"{m}/dst/g")
    r.read("read_f", "m/dst/f")
    finish(s, r)


def _dirs_with_redirects(s: Side) -> None:
    s.write("l1/lo/f", "lo")
    s.write("l2/lo/g", "lo2")
    s.write("l1/lo2/h", "h")  # each redirect has its own target: two names for one lower
    # dir are ESTALE for whichever is looked up second (dirs are hashed by their lower inode)
    s.write("l2/deep/er/f", "deep")
    s.dirs("u/rel", "u/abs", "u/opq", "u/empty", "u/slash", "u/dslash", "u/tail", "u/slashonly",
           "u/dot", "u/dotdot", "u/absdot", "u/miss", "u/plain", "u/nul", "u/nul0")  # fmt: skip
    for rel, value in (("rel", b"lo"), ("abs", b"/deep/er"), ("opq", b"lo"), ("empty", b""),
                       ("slash", b"lo/x"), ("dslash", b"//deep"), ("tail", b"/deep/"),
                       ("slashonly", b"/"), ("dot", b"."), ("dotdot", b".."),
                       ("absdot", b"/deep/../lo"), ("miss", b"nothere"), ("nul", b"lo2\0x"),
                       ("nul0", b"\0lo")):  # fmt: skip
        s.o.setxattr(s.p(f"u/{rel}"), R, value)
    s.o.setxattr(s.p("u/opq"), "trusted.overlay.opaque", b"y")
    s.write("u/file", "a file")
    s.o.setxattr(s.p("u/file"), R, b"lo")  # ignored: only dirs and metacopy files follow
    s.dirs("l1/lowred")
    s.o.setxattr(s.p("l1/lowred"), R, b"/deep/er")  # a redirect in a lower layer
    s.dirs("w", "m")


@scenario
def sc_redirect_follow_modes(s: Side, r: Rec) -> None:
    """Existing redirects under each redirect_dir mode, and invalid redirect values."""
    _dirs_with_redirects(s)
    names = ["rel", "abs", "opq", "empty", "slash", "dslash", "tail", "slashonly", "dot", "dotdot",
             "absdot", "miss", "plain", "file", "lowred", "nul", "nul0"]  # fmt: skip
    low = f"lowerdir={s.p('l1')}:{s.p('l2')}"
    rw = f"{low},upperdir={s.p('u')},workdir={s.p('w')}"
    for mode, opts in (("on", f"{rw},{RD}"), ("follow", f"{rw},redirect_dir=follow"),
                       ("off", f"{rw},redirect_dir=off"), ("nofollow", f"{rw},redirect_dir=nofollow"),
                       ("default", rw), ("ro", low), ("ro_nofollow", f"{low},redirect_dir=nofollow")):  # fmt: skip
        s.mount(opts)
        r.call(f"ls_root_{mode}", s.o.listdir, s.mnt)
        for n in names:
            r.call(f"ls_{n}_{mode}", s.o.listdir, f"{s.mnt}/{n}")
        s.umount()
    r.tree("upper", "u", upper=True)


@scenario
def sc_redirect_nofollow_writes(s: Side, r: Rec) -> None:
    """redirect_dir=nofollow: renaming a lower dir is EXDEV, a redirected one cannot be
    looked up (EPERM), so it can be neither removed nor renamed."""
    s.write("l1/lo/f", "lo")
    s.write("l1/d/f", "d")
    s.dirs("u/red", "l2")
    s.o.setxattr(s.p("u/red"), R, b"lo")
    s.mount(s.std(extra="redirect_dir=nofollow"))
    m = s.p("m")
    r.call("rename_lower", s.o.rename, f"{m}/d", f"{m}/d2")
    r.call("rmdir_redirected", s.o.rmdir, f"{m}/red")
    r.call("rename_redirected", s.o.rename, f"{m}/red", f"{m}/red2")
    r.call("mkdir_over", s.o.mkdir, f"{m}/red")
    finish(s, r)


@scenario
def sc_redirect_metacopy_vs_dir(s: Side, r: Rec) -> None:
    """Redirects of metacopy files and of dirs side by side, renamed the same ways."""
    for n in ("f", "g", "d/x", "e/x"):
        s.write(f"l1/{n}", n)
    s.dirs("l1/s", "l2")
    s.mount(s.std(extra="metacopy=on"))
    m = s.p("m")
    for key, src, dst in (("f_f2", "f", "f2"), ("d_d2", "d", "d2"), ("f2_s_f3", "f2", "s/f3"),
                          ("d2_s_d3", "d2", "s/d3"), ("g_s_g2", "g", "s/g2"),
                          ("e_s_e2", "e", "s/e2"), ("s_g2_g", "s/g2", "g"),
                          ("s_e2_e", "s/e2", "e")):  # fmt: skip
        r.call(key, s.o.rename, f"{m}/{src}", f"{m}/{dst}")
        r.record(f"redirect_{key}", _redirect(s, f"u/{dst}"))
    r.call("write_f3", lambda: _append(s, "m/s/f3"))
    r.call("f3_f4", s.o.rename, f"{m}/s/f3", f"{m}/f4")
    r.record("redirect_f4", _redirect(s, "u/f4"))
    finish(s, r)


def _append(s: Side, rel: str) -> None:
    fd = s.o.open(s.p(rel), os.O_WRONLY | os.O_APPEND)
    s.o.write(fd, b"+")
    s.o.close(fd)

