"""xino scenarios: st_ino, st_dev and d_ino of overlays whose layers are on several
filesystems, run on the kernel and on the simulator (each layer on its own tmpfs).

Inode and device numbers differ between the two sides, so what is recorded is how each
number relates to the real ones: st_ino equal to the real layer inode's number, or that number
with high bits set (and which: the fsid << (64 - xinobits + 1)), or neither (a non-persistent
number: are its high bits the lowest xino bit, is it small); st_dev the overlay's (its root
dir's), a pseudo dev (labelled in order of appearance) or the real fs's; d_ino equal to st_ino
or to the real number. What Linux 6.18 does, as measured here:

* one fs: real numbers, the overlay's st_dev, whatever xino says ("xino=on is useless");
  ``xino=...`` is then not shown in the mount options.
* xino=on/auto across filesystems (tmpfs, whose handles are not plain 32-bit inode numbers):
  ilog2(numfs - 1) + 2 high bits, fsid 0 for the upper fs and the lowers on it, 1, 2... for
  the other lower filesystems in order; every object on the overlay's st_dev, d_ino = st_ino,
  a copied-up file (and a merge dir) keeps its origin's number and fsid, also after a remount;
  a lower hard link copied up gets the upper inode's number; the root keeps the upper root's.
* xino=off across filesystems: non-dirs keep real numbers on a pseudo st_dev per fs, dirs get
  non-persistent numbers (the root 2) on the overlay's st_dev, d_ino is the real number.
* a number already using the high bits (an overlay used as a lower layer makes them): a
  non-dir keeps it on its fs's pseudo st_dev, a dir gets a non-persistent number tagged with the
  lowest xino bit, d_ino is left as it is; xino=auto with such a lower and an upper falls back
  to xino=off ("does not support file handles").
* merged readdir with xino looks every entry up: xattr whiteouts are dropped (listed without);
  an impure dir whose entries have no origin loses "impure" on readdir with xino, not without.
"""

from __future__ import annotations

import os
import re
from typing import Any

from tests.overlay.oharness import Rec, Side
from tests.overlay.scenarios import scenario

XI = "xino"
_LOW = (1 << 58) - 1


class Probe:
    """Classifies numbers of one mount against the real layer objects."""

    def __init__(self, s: Side, r: Rec, mnt: str = "m") -> None:
        self.s, self.r, self.mnt = s, r, mnt
        self.devs: dict[int, str] = {}

    def _dev(self, dev: int, real_dev: int | None) -> str:
        if dev == self.s.o.lstat(self.s.p(self.mnt)).st_dev:
            return "ovl"
        if dev == real_dev:
            return "real-dev"
        return self.devs.setdefault(dev, f"pseudo{len(self.devs)}")

    @staticmethod
    def _ino(ino: int, real: int | None) -> str:
        if ino == real:
            return "real"
        if real is not None and ino & _LOW == real:
            return f"real|{ino >> 58:#x}"
        low = ino & _LOW
        return f"other|{ino >> 58:#x}|{'small' if low < 100 else 'big'}"

    def stat(self, key: str, rel: str, real: str | None) -> None:
        """st_ino/st_dev of ``mnt/rel`` against the real object ``real`` (None: no real one)."""
        o = self.s.o
        st = o.lstat(self.s.p(f"{self.mnt}/{rel}" if rel else self.mnt))
        rs = o.lstat(self.s.p(real)) if real is not None else None
        self.r.record(key, [self._ino(st.st_ino, rs.st_ino if rs else None),
                            self._dev(st.st_dev, rs.st_dev if rs else None)])  # fmt: skip

    def listing(self, key: str, rel: str, reals: dict[str, str]) -> None:
        """Each entry of ``mnt/rel``: d_ino against st_ino and the real object's number."""
        o, out = self.s.o, {}
        path = self.s.p(f"{self.mnt}/{rel}" if rel else self.mnt)
        for e in o.scandir(path):
            d_ino = e.inode()
            try:
                st_ino: int | None = o.lstat(f"{path}/{e.name}").st_ino
            except OSError:
                st_ino = None
            real = reals.get(e.name)
            real_ino = o.lstat(self.s.p(real)).st_ino if real else None
            out[e.name] = ("st" if d_ino == st_ino else "") + (
                "real" if d_ino == real_ino else "") or self._ino(d_ino, real_ino)
        self.r.record(key, dict(sorted(out.items())))


def _layers(s: Side) -> None:
    """A (upper fs: u, w, l0), B (l1), C (l2), each a tmpfs whose inode numbers start past
    100, so that they never meet the small non-persistent numbers the overlay hands out."""
    s.tmpfs("A", "B", "C")
    for fs in ("A", "B", "C"):
        for _ in range(100):
            s.write(f"{fs}/pad", "")
            s.o.unlink(s.p(f"{fs}/pad"))
    s.dirs("m", "A/w", "A/u", "A/l0", "B/l1", "C/l2", "A/u/ud", "A/u/md", "B/l1/md", "C/l2/md")
    s.write("A/l0/f0", "0")
    s.write("B/l1/f1", "1")
    s.write("B/l1/h1", "h")
    s.o.link(s.p("B/l1/h1"), s.p("B/l1/h2"))
    s.dirs("B/l1/d1")
    s.write("C/l2/md/c", "c")
    s.write("C/l2/f2", "2")
    s.o.symlink("f2", s.p("C/l2/s2"))
    s.write("A/u/up", "u")


def _opts(s: Side, lowers: str, extra: str, upper: bool = True) -> str:
    low = ":".join(s.p(x) for x in lowers.split(":"))
    up = f",upperdir={s.p('A/u')},workdir={s.p('A/w')}" if upper else ""
    return f"lowerdir={low}{up}" + (f",{extra}" if extra else "")


_REAL = {"f0": "A/l0/f0", "f1": "B/l1/f1", "h1": "B/l1/h1", "h2": "B/l1/h2", "d1": "B/l1/d1",
         "f2": "C/l2/f2", "s2": "C/l2/s2", "up": "A/u/up", "ud": "A/u/ud", "md": "B/l1/md"}  # fmt: skip


def _probe_all(p: Probe, tag: str) -> None:
    p.stat(f"{tag}_root", "", "A/u")
    for name, real in _REAL.items():
        p.stat(f"{tag}_{name}", name, real)
    p.stat(f"{tag}_md_c", "md/c", "C/l2/md/c")
    p.listing(f"{tag}_ls_root", "", _REAL)
    p.listing(f"{tag}_ls_md", "md", {"c": "C/l2/md/c"})
    p.listing(f"{tag}_ls_d1", "d1", {})


def _finish(s: Side, r: Rec, tag: str) -> None:
    r.tree(f"{tag}_merged", "m")
    s.umount()
    r.tree(f"{tag}_upper", "A/u", upper=True)
    names = s.o.listdir(s.p("A/w/work"))
    r.record(f"{tag}_work", sorted(re.sub(r"^#[0-9a-f]+$", "#N", n) for n in names))


def _reset_upper(s: Side) -> None:
    """Back to the upper layer _layers() made (the lower files show again)."""
    def rm(path: str) -> None:
        if s.o.path.isdir(path) and not s.o.path.islink(path):
            for n in s.o.listdir(path):
                rm(f"{path}/{n}")
            s.o.rmdir(path)
        else:
            s.o.unlink(path)

    for n in s.o.listdir(s.p("A/u")):
        rm(s.p(f"A/u/{n}"))
    for x in s.o.listxattr(s.p("A/u")):
        if x != "trusted.overlay.uuid":
            s.o.removexattr(s.p("A/u"), x)
    s.dirs("A/u/ud", "A/u/md", "A/u/pure")
    s.write("A/u/up", "u")


@scenario
def sc_xino_modes_across_filesystems(s: Side, r: Rec) -> None:
    _layers(s)
    for mode in ("off", "auto", "on"):
        s.mount(_opts(s, "A/l0:B/l1:C/l2", f"xino={mode}"))
        r.record(f"{mode}_options", s.mount_options())
        p = Probe(s, r)
        _probe_all(p, mode)
        p.stat(f"{mode}_root_again", "", "A/u")
        p.stat(f"{mode}_md_again", "md", "A/u/md")
        s.umount()


@scenario
def sc_xino_copy_up_keeps_origin(s: Side, r: Rec) -> None:
    _layers(s)
    s.dirs("A/u/pure")
    for mode in ("off", "on"):
        s.mount(_opts(s, "A/l0:B/l1:C/l2", f"xino={mode}"))
        p = Probe(s, r)
        m = s.p("m")
        for name in ("f0", "f1", "h1", "f2", "md/c"):
            r.call(f"{mode}_append_{name}", _append, s, f"m/{name}")
        r.call(f"{mode}_chmod_d1", s.o.chmod, f"{m}/d1", 0o700)
        r.call(f"{mode}_rename", s.o.rename, f"{m}/f2", f"{m}/pure/f2")
        for name, real in (("f0", "A/l0/f0"), ("f1", "B/l1/f1"), ("h1", "A/u/h1"),
                           ("h2", "B/l1/h2"), ("md/c", "C/l2/md/c"), ("pure/f2", "C/l2/f2"),
                           ("d1", "B/l1/d1")):  # fmt: skip
            p.stat(f"{mode}_after_{name}", name, real)
        p.listing(f"{mode}_ls_root", "", {**_REAL, "h1": "A/u/h1"})
        p.listing(f"{mode}_ls_pure", "pure", {"f2": "A/u/pure/f2"})
        r.tree(f"{mode}_upper_mid", "A/u", upper=True)
        s.umount()
        s.mount(_opts(s, "A/l0:B/l1:C/l2", f"xino={mode}"))
        p = Probe(s, r)
        for name, real in (("f0", "A/l0/f0"), ("f1", "B/l1/f1"), ("h1", "A/u/h1"),
                           ("pure/f2", "C/l2/f2"), ("md/c", "C/l2/md/c"), ("d1", "B/l1/d1")):  # fmt: skip
            p.stat(f"{mode}_remount_{name}", name, real)
        p.listing(f"{mode}_remount_ls_pure", "pure", {"f2": "A/u/pure/f2"})
        p.listing(f"{mode}_remount_ls_md", "md", {"c": "A/u/md/c"})
        _finish(s, r, mode)
        _reset_upper(s)


def _append(s: Side, rel: str) -> None:
    fd = s.o.open(s.p(rel), os.O_WRONLY | os.O_APPEND)
    s.o.write(fd, b"+")
    s.o.close(fd)


@scenario
def sc_xino_layouts(s: Side, r: Rec) -> None:
    """Lower-only stacks, a lower on the upper's fs, all layers on one fs, and the upper
    alone on another fs."""
    _layers(s)
    s.dirs("A/l3")
    s.write("A/l3/a3", "a")
    for i, (lowers, extra, upper) in enumerate([
        ("B/l1:C/l2:A/l3", "xino=on", False), ("B/l1:C/l2", "xino=off", False),
        ("B/l1:C/l2", "xino=auto", False), ("A/l3:B/l1", "xino=on", True),
        ("A/l0:A/l3", "xino=on", True), ("A/l0:A/l3", "xino=auto", True),
        ("A/l0:A/l3", "xino=off", False), ("B/l1", "xino=auto", True),
        ("B/l1", "xino=off", True),
    ]):  # fmt: skip
        s.mount(_opts(s, lowers, extra, upper))
        r.record(f"{i}_options", s.mount_options())
        p = Probe(s, r)
        top = lowers.split(":")[0]
        p.stat(f"{i}_root", "", "A/u" if upper else top)
        seen = set(s.o.listdir(s.p("A/u"))) if upper else set()
        for rel in lowers.split(":"):
            for name in sorted(set(s.o.listdir(s.p(rel))) - seen):  # the topmost one counts
                seen.add(name)
                p.stat(f"{i}_{name}", name, f"{rel}/{name}")
        reals = {}
        for rel in reversed(lowers.split(":")):
            reals.update({n: f"{rel}/{n}" for n in s.o.listdir(s.p(rel))})
        if upper:
            reals.update({n: f"A/u/{n}" for n in s.o.listdir(s.p("A/u"))})
        p.listing(f"{i}_ls_root", "", reals)
        s.umount()


@scenario
def sc_xino_whiteouts_and_impure(s: Side, r: Rec) -> None:
    """Readdir with xino looks entries up: xattr whiteouts go, "impure" without origins goes."""
    _layers(s)
    s.write("B/l1/xw", "")
    s.o.setxattr(s.p("B/l1/xw"), "trusted.overlay.whiteout", b"y")
    s.write("A/u/xwu", "")
    s.o.setxattr(s.p("A/u/xwu"), "trusted.overlay.whiteout", b"y")
    s.dirs("A/u/pd")
    s.write("A/u/pd/x", "x")
    for mode in ("off", "on"):
        s.o.setxattr(s.p("A/u/pd"), "trusted.overlay.impure", b"y")
        s.mount(_opts(s, "A/l0:B/l1:C/l2", f"xino={mode}"))
        r.ls(f"{mode}_ls_root", "m")
        r.call(f"{mode}_stat_xw", lambda: s.o.lstat(s.p("m/xw")).st_mode)
        r.ls(f"{mode}_ls_pd", "m/pd")
        r.record(f"{mode}_pd_xattrs", sorted(s.o.listxattr(s.p("A/u/pd"))))
        s.umount()


def _inner(s: Side) -> None:
    """An overlay of B and C with xino=on (its numbers carry high bits) at ``inner``."""
    s.dirs("A/iu", "A/iw", "A/u2", "A/w2")
    s.mount_at("inner", f"lowerdir={s.p('B/l1')}:{s.p('C/l2')},upperdir={s.p('A/iu')},"
                        f"workdir={s.p('A/iw')},xino=on")  # fmt: skip


@scenario
def sc_xino_overflow_nested(s: Side, r: Rec) -> None:
    _layers(s)
    _inner(s)
    reals = {n: f"inner/{n}" for n in s.o.listdir(s.p("inner"))}
    for i, (lowers, extra) in enumerate([
        ("inner", "upper,xino=on"), ("inner", "upper,xino=auto"), ("inner", "upper,xino=off"),
        ("inner:C/l2", "xino=on"), ("inner:A/l0", "upper,xino=on"),
    ]):  # fmt: skip
        upper = extra.startswith("upper")
        opts = extra.removeprefix("upper,")
        low = ":".join(s.p(x) for x in lowers.split(":"))
        up = f",upperdir={s.p('A/u2')},workdir={s.p('A/w2')}" if upper else ""
        s.mount(f"lowerdir={low}{up},{opts}")
        r.record(f"{i}_options", s.mount_options())
        p = Probe(s, r)
        p.stat(f"{i}_root", "", "A/u2" if upper else "inner")
        for name, real in sorted(reals.items()):
            p.stat(f"{i}_{name}", name, real)
        p.stat(f"{i}_md_c", "md/c", "inner/md/c")
        p.listing(f"{i}_ls_root", "", reals)
        p.listing(f"{i}_ls_md", "md", {"c": "inner/md/c"})
        if upper:
            r.call(f"{i}_append_f1", _append, s, "m/f1")
            p.stat(f"{i}_after_f1", "f1", "inner/f1")
        s.umount()
        for n in s.o.listdir(s.p("A/u2")):
            s.o.unlink(s.p(f"A/u2/{n}"))
    r.record("distinct_dir_inos", _distinct_dirs(s))


def _distinct_dirs(s: Side) -> Any:
    """xino=off across filesystems: dirs get distinct non-persistent numbers, stable while
    cached; the root's is 2 (the first handed out)."""
    s.mount(_opts(s, "A/l0:B/l1:C/l2", "xino=off"))
    m = s.p("m")
    inos = [s.o.lstat(f"{m}/{d}").st_ino for d in ("", "md", "d1", "ud")]
    again = [s.o.lstat(f"{m}/{d}").st_ino for d in ("", "md", "d1", "ud")]
    s.umount()
    return [inos[0], len(set(inos)), inos == again]
