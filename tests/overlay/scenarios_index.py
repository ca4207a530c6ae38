"""index=on scenarios (the inodes index, W/index), run on the kernel and on the simulator.

Registered in the same table as tests/overlay/scenarios.py. What they pin down, measured on
Linux 6.18 with tmpfs layers (as the harness builds them):

* mount: W/index (mode 0000, root, kept across mounts) with ``upper`` (the upper root's
  handle, flag 4); the upper root gets ``origin`` (the first lower root's handle); a tmpfs
  handle is 33 bytes: 0, 0xfb, 33, flags, type 1, the fs uuid, generation and inode number
  (the handle's inode word is the real st_ino). Index entries are named by the hex of their
  origin's handle. W/index is the work dir (whiteout masters go there, W/work stays empty).
* copy-up of a lower hard link goes through W/index, later names link to that one inode,
  ``nlink`` keeps the overlay count as "U%+d"; unlink/rename over/link of an indexed name
  links it up first; the last name gone removes the index entry; st_ino is the lower one.
* refusals: swapped or copied layers, a copied upper with the old index dir: ESTALE; a bad
  index entry name: EINVAL; another handle version or endianness, an entry with no origin:
  ENODATA (after cleaning what came before it); stale, mismatched and orphan entries and
  "#" temp names are removed at mount, whiteouts and directories kept (lookup then EIO).
* index=off after index=on (and back), ro mounts, userxattr, metacopy=on, uuid=off,
  volatile, an overlay as lower layer (no file handles: index falls back off), in-use EBUSY.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import Any

from tests.overlay.oharness import KernelSide, Rec, Side, SimSide
from tests.overlay.scenarios import _ra2, finish, scenario

IX = "index=on"
RENAME_EXCHANGE = 2


def _opts(s: Side, lower: str = "l1", upper: str = "u", work: str = "w", extra: str = IX) -> str:
    s.dirs(upper, work, "m", *lower.split(":"))
    low = ":".join(s.p(x) for x in lower.split(":"))
    return f"lowerdir={low},upperdir={s.p(upper)},workdir={s.p(work)}" + (f",{extra}" if extra else "")


def _mount(s: Side, r: Rec, key: str, opts: str) -> bool:
    """Mount and record the options (or the errno); True if mounted."""
    try:
        s.mount(opts)
    except OSError as e:
        r.record(key, ["errno", errno.errorcode.get(e.errno or 0, str(e.errno))])
        return False
    r.record(key, s.mount_options())
    return True


def _links(s: Side, lower: str = "l1") -> None:
    """f, g, h: one inode; s1: one link; d/s2 = t2: one inode; x: a plain file."""
    s.write(f"{lower}/f", "shared data")
    s.o.link(s.p(f"{lower}/f"), s.p(f"{lower}/g"))
    s.o.link(s.p(f"{lower}/f"), s.p(f"{lower}/h"))
    s.write(f"{lower}/s1", "single")
    s.write(f"{lower}/d/s2", "two")
    s.o.link(s.p(f"{lower}/d/s2"), s.p(f"{lower}/t2"))
    s.write(f"{lower}/x", "x")


def _xattr(s: Side, rel: str, name: str) -> bytes | None:
    try:
        return bytes(s.o.getxattr(s.p(rel), name, follow_symlinks=False))
    except OSError:
        return None


def _stats(s: Side, r: Rec, key: str, names: list[str]) -> None:
    """mode, st_nlink and inode label of each merged name (labels keep only relations)."""
    out: list[Any] = []
    for n in names:
        try:
            st = s.o.lstat(s.p(f"m/{n}"))
        except OSError as e:
            out.append([n, errno.errorcode.get(e.errno or 0)])
            continue
        label = r.inos.setdefault(st.st_ino, f"i{len(r.inos)}")
        out.append([n, oct(st.st_mode), st.st_nlink, label])
    r.record(key, out)


def _index(s: Side, r: Rec, key: str, upper: str = "u", work: str = "w",
           prefix: str = "trusted.overlay.") -> None:  # fmt: skip
    """W/index with the names normalised: each entry as the upper paths linked to it, its
    mode, link count, the ``nlink`` xattr, whether its name is the hex of its ``origin``
    and the name's length; "#" temp names as such."""
    by_ino: dict[int, list[str]] = {}
    top = s.p(upper)
    for dp, _dn, fn in s.o.walk(top):
        for n in fn:
            st = s.o.lstat(f"{dp}/{n}")
            by_ino.setdefault(st.st_ino, []).append(f"{dp}/{n}"[len(top) + 1 :])
    rows: list[Any] = []
    base = f"{work}/index"
    try:
        names = s.o.listdir(s.p(base))
    except OSError as e:
        r.record(key, ["errno", errno.errorcode.get(e.errno or 0)])
        return
    for name in names:
        rel = f"{base}/{name}"
        st = s.o.lstat(s.p(rel))
        if name.startswith("#"):
            rows.append(["#", stat.filemode(st.st_mode), st.st_nlink])
            continue
        origin = _xattr(s, rel, prefix + "origin")
        nl = _xattr(s, rel, prefix + "nlink")
        rows.append([sorted(by_ino.get(st.st_ino, [])), stat.filemode(st.st_mode), st.st_nlink,
                     None if nl is None else nl.decode(),
                     None if origin is None else origin.hex() == name, len(name)])  # fmt: skip
    r.record(key, sorted(rows, key=repr))


def _fh_shape(s: Side, rel: str, name: str, of: str, uuid_of: tuple[str, str] | None = None) -> list[Any]:
    """A stored handle as the kernel lays it out: header bytes, whether its inode word is
    st_ino of ``of``, whether its uuid is null or the same as another handle's."""
    raw = _xattr(s, rel, name)
    if raw is None:
        return ["absent"]
    if len(raw) < 33:
        return ["short", len(raw)]
    _gen, lo, hi = struct.unpack_from("<III", raw, 21)
    same_uuid = None
    if uuid_of is not None:
        other = _xattr(s, *uuid_of)
        same_uuid = other is not None and other[5:21] == raw[5:21]
    return [list(raw[:5]), raw[5:21] == bytes(16), same_uuid,
            (hi << 32 | lo) == s.o.lstat(s.p(of)).st_ino, len(raw)]


def _exchange(s: Side, a: str, b: str) -> None:
    ra2 = s.o.renameat2 if hasattr(s.o, "renameat2") else _ra2
    ra2(s.p(a), s.p(b), RENAME_EXCHANGE)


def _append(s: Side, rel: str, data: bytes) -> None:
    fd = s.o.open(s.p(rel), os.O_WRONLY | os.O_APPEND)
    s.o.write(fd, data)
    s.o.close(fd)


@scenario
def sc_index_mount_layout(s: Side, r: Rec) -> None:
    _links(s)
    opts = _opts(s)
    _mount(s, r, "mount", opts)
    r.call("index_dir", lambda: [stat.filemode(s.o.lstat(s.p("w/index")).st_mode),
                                 s.o.lstat(s.p("w/index")).st_uid, s.o.listdir(s.p("w"))])  # fmt: skip
    r.record("root_origin", _fh_shape(s, "u", "trusted.overlay.origin", "l1"))
    # the root has an origin now, yet keeps the upper root's st_ino (ovl_get_root)
    r.call("root_ino", lambda: [s.o.stat(s.p("m")).st_ino == s.o.stat(s.p(x)).st_ino
                                for x in ("u", "l1")])  # fmt: skip
    r.record("index_upper", _fh_shape(s, "w/index", "trusted.overlay.upper", "u",
                                      ("u", "trusted.overlay.origin")))  # fmt: skip
    s.o.chmod(s.p("m/f"), 0o600)
    r.record("file_origin", _fh_shape(s, "u/f", "trusted.overlay.origin", "l1/f",
                                      ("u", "trusted.overlay.origin")))  # fmt: skip
    _index(s, r, "index")
    s.umount()
    r.work("work_first")
    _mount(s, r, "remount", opts)
    r.call("index_dir_again", lambda: stat.filemode(s.o.lstat(s.p("w/index")).st_mode))
    finish(s, r)


@scenario
def sc_index_hardlink_copy_up(s: Side, r: Rec) -> None:
    _links(s)
    opts = _opts(s)
    s.mount(opts)
    names = ["f", "g", "h", "s1", "x", "d/s2", "t2"]
    _stats(s, r, "before", names)
    r.call("chmod_f", s.o.chmod, s.p("m/f"), 0o600)
    r.call("chmod_s1", s.o.chmod, s.p("m/s1"), 0o600)
    _stats(s, r, "after_chmod", names)
    _index(s, r, "index_chmod")
    r.call("setxattr_h", s.o.setxattr, s.p("m/h"), "user.a", b"1")  # the shared inode, no link-up
    r.call("removexattr_h", s.o.removexattr, s.p("m/h"), "user.a")
    r.call("setxattr_t2", s.o.setxattr, s.p("m/t2"), "user.b", b"2")  # not indexed yet: copy-up
    r.call("upper_after_xattrs", lambda: sorted(s.o.listdir(s.p("u"))))
    ro = s.o.open(s.p("m/h"), os.O_RDONLY)
    _append(s, "m/g", b"+g")  # g links up to the index entry: one inode for f, g, h
    r.call("read_old_fd_h", s.o.pread, ro, 100, 0)
    s.o.close(ro)
    r.read("read_f", "m/f")
    r.read("read_h", "m/h")
    r.call("unlink_g", s.o.unlink, s.p("m/g"))
    r.call("unlink_t2", s.o.unlink, s.p("m/t2"))  # lower-only: copied up first, then whited out
    _stats(s, r, "after_unlink", names)
    _index(s, r, "index_unlink")
    r.work("work_mounted")
    r.call("index_names_mounted", lambda: sorted(n[0] for n in s.o.listdir(s.p("w/index"))))
    s.umount()
    s.mount(opts)
    _stats(s, r, "remounted", names)
    _index(s, r, "index_remounted")
    r.call("unlink_f", s.o.unlink, s.p("m/f"))
    _stats(s, r, "after_unlink_f", ["h"])
    r.call("unlink_h", s.o.unlink, s.p("m/h"))  # the last name: the index entry goes
    r.call("unlink_s2", s.o.unlink, s.p("m/d/s2"))
    _index(s, r, "index_empty")
    finish(s, r)


@scenario
def sc_index_link_and_rename(s: Side, r: Rec) -> None:
    _links(s)
    s.write("l1/y", "why")
    s.o.link(s.p("l1/y"), s.p("l1/y2"))
    opts = _opts(s)
    s.mount(opts)
    names = ["f", "g", "h", "nl", "d/g2", "s1", "d/s2", "t2", "y", "y2"]
    r.call("rename_same_inode", s.o.rename, s.p("m/f"), s.p("m/g"))  # one overlay inode: no-op
    r.call("exchange_same_inode", _exchange, s, "m/g", "m/h")
    r.call("upper_after_noops", s.o.listdir, s.p("u"))
    r.call("link", s.o.link, s.p("m/f"), s.p("m/nl"))  # not copied up yet: copy-up, link-up
    _stats(s, r, "after_link", names)
    r.call("rename_g", s.o.rename, s.p("m/g"), s.p("m/d/g2"))
    r.call("rename_y_over_s2", s.o.rename, s.p("m/y"), s.p("m/d/s2"))
    r.call("exchange_t2_h", _exchange, s, "m/t2", "m/h")
    r.call("rename_x_over_y2", s.o.rename, s.p("m/x"), s.p("m/y2"))
    _stats(s, r, "after_renames", [*names, "x"])
    _index(s, r, "index")
    r.tree("upper_mounted", "u", upper=True)
    s.umount()
    s.mount(opts)
    _stats(s, r, "remounted", [*names, "x"])
    finish(s, r)


def _copy_tree(s: Side, src: str, dst: str) -> None:
    """cp -a of a small layer tree (dirs, files, symlinks, devices, xattrs) to new inodes."""
    o = s.o
    st = o.lstat(s.p(src))
    if stat.S_ISDIR(st.st_mode):
        o.mkdir(s.p(dst), stat.S_IMODE(st.st_mode))
        for name in o.listdir(s.p(src)):
            _copy_tree(s, f"{src}/{name}", f"{dst}/{name}")
    elif stat.S_ISREG(st.st_mode):
        fd = o.open(s.p(src), os.O_RDONLY)
        data = o.read(fd, 1 << 20)
        o.close(fd)
        s.write(dst, data.decode(), stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        o.symlink(o.readlink(s.p(src)), s.p(dst))
    else:
        o.mknod(s.p(dst), st.st_mode, st.st_rdev)
    for name in o.listxattr(s.p(src), follow_symlinks=False):
        o.setxattr(s.p(dst), name, o.getxattr(s.p(src), name, follow_symlinks=False),
                   follow_symlinks=False)  # fmt: skip


@scenario
def sc_index_verify_refusals(s: Side, r: Rec) -> None:
    _links(s)
    s.write("l2/other", "o")
    opts = _opts(s)
    s.mount(opts)
    s.o.chmod(s.p("m/f"), 0o600)
    s.umount()
    _mount(s, r, "swapped_lower", _opts(s, lower="l2"))
    if _mount(s, r, "swapped_index_off", _opts(s, lower="l2", extra="")):
        s.umount()
    for d in ("l1", "u", "w"):
        _copy_tree(s, d, f"c{d}")
    _mount(s, r, "copied_all", _opts(s, "cl1", "cu", "cw"))
    _mount(s, r, "copied_lower", _opts(s, "cl1", "u", "w"))
    _mount(s, r, "copied_upper_old_index", _opts(s, "l1", "cu", "cw"))
    if _mount(s, r, "orig_upper_new_workdir", _opts(s, "l1", "u", "w2")):
        _index(s, r, "new_index", work="w2")
        s.umount()
    if _mount(s, r, "copied_all_index_off", _opts(s, "cl1", "cu", "cw", extra="")):
        _stats(s, r, "copied_all_index_off_stats", ["f", "g", "h"])
        s.umount()
    _mount(s, r, "again", opts)
    finish(s, r)


@scenario
def sc_index_off_then_on(s: Side, r: Rec) -> None:
    _links(s)
    off, on = _opts(s, extra=""), _opts(s)
    s.mount(off)
    s.o.chmod(s.p("m/f"), 0o600)  # index=off: broken link, no origin
    s.umount()
    _mount(s, r, "on", on)
    _stats(s, r, "on_stats", ["f", "g", "h"])
    r.call("chmod_g", s.o.chmod, s.p("m/g"), 0o640)
    _stats(s, r, "on_after_chmod", ["f", "g", "h"])
    _index(s, r, "index")
    s.umount()
    _mount(s, r, "off_again", off)
    _stats(s, r, "off_stats", ["f", "g", "h"])
    r.call("chmod_h", s.o.chmod, s.p("m/h"), 0o444)
    s.umount()
    _mount(s, r, "on_again", on)
    _stats(s, r, "on_again_stats", ["f", "g", "h"])
    finish(s, r)


def _handle_of(s: Side, rel: str) -> str:
    raw = _xattr(s, rel, "trusted.overlay.origin")
    assert raw is not None, rel
    return raw.hex()


@scenario
def sc_index_cleanup_at_mount(s: Side, r: Rec) -> None:
    _links(s)
    for i in range(1, 10):
        s.write(f"l1/s{i}", str(i))
    s.o.link(s.p("l1/s7"), s.p("l1/s7b"))
    s.write("l1/gone", "gone")
    opts = _opts(s)
    s.mount(opts)
    for n in [f"s{i}" for i in range(1, 10)] + ["gone"]:
        s.o.chmod(s.p(f"m/{n}"), 0o600)
    s.umount()
    fh = {n: _handle_of(s, f"u/{n}") for n in [f"s{i}" for i in range(1, 10)] + ["gone"]}
    s.o.unlink(s.p("l1/gone"))
    o, ix = s.o, "w/index"
    s.write(f"{ix}/#123", "")
    s.dirs(f"{ix}/#456")
    s.write(f"{ix}/#456/x", "")
    s.write(f"{ix}/{fh['s1']}", "")  # no origin: ENODATA, the mount is refused
    _mount(s, r, "no_origin", opts)
    _index(s, r, "after_refusal")
    o.unlink(s.p(f"{ix}/{fh['s1']}"))
    mark = "trusted.overlay."
    s.write(f"{ix}/{fh['s2']}", "")
    o.setxattr(s.p(f"{ix}/{fh['s2']}"), mark + "origin", bytes.fromhex(fh["s3"]))  # mismatch
    for n, nl in (("s3", b"U+0"), ("s4", None), ("s7", b"U+0")):  # s3, s4: one lower link
        path = s.p(f"{ix}/{fh[n]}")
        if os.path.basename(path) not in o.listdir(s.p(ix)):
            s.write(f"{ix}/{fh[n]}", "")
        o.setxattr(path, mark + "origin", bytes.fromhex(fh[n]))
        if nl is not None:
            o.setxattr(path, mark + "nlink", nl)
    o.mknod(s.p(f"{ix}/{fh['s5']}"), stat.S_IFCHR | 0o644, 0)  # a whiteout: kept
    o.mkdir(s.p(f"{ix}/{fh['s6']}"))  # a directory: kept
    s.write(f"{ix}/{fh['gone']}", "")
    o.setxattr(s.p(f"{ix}/{fh['gone']}"), mark + "origin", bytes.fromhex(fh["gone"]))  # stale
    _index(s, r, "crafted")
    _mount(s, r, "cleaned", opts)
    _index(s, r, "after_cleanup")
    _stats(s, r, "lookups", ["s5", "s6", "s7", "s7b", "s8"])
    s.umount()
    base = fh["s8"]
    for key, name in (("zz", "zz"), ("short", base[:6]), ("version", "01" + base[2:]),
                      ("any_endian", base[:6] + "02" + base[8:]), ("big_endian", base[:6] + "01" + base[8:]),
                      ("trailing", base + "00"), ("truncated", base[:64]), ("odd", base + "0")):  # fmt: skip
        s.write(f"{ix}/{name}", "")
        o.setxattr(s.p(f"{ix}/{name}"), mark + "origin", bytes.fromhex(base))
        if _mount(s, r, f"bad_{key}", opts):
            s.umount()
        r.call(f"left_{key}", lambda n=name: n in o.listdir(s.p(ix)))  # type: ignore[misc]
        if name in o.listdir(s.p(ix)):
            o.unlink(s.p(f"{ix}/{name}"))
    o.unlink(s.p(f"{ix}/{fh['s5']}"))  # the merged root's listing would fail on them (EIO)
    o.rmdir(s.p(f"{ix}/{fh['s6']}"))
    s.mount(opts)
    finish(s, r)


@scenario
def sc_index_read_only(s: Side, r: Rec) -> None:
    _links(s)
    s.write("l2/z", "z")
    if _mount(s, r, "lower_only", f"lowerdir={s.p('l1')}:{s.p('l2')},{IX}"):
        _stats(s, r, "lower_only_stats", ["f", "g", "z"])
        s.umount()
    opts = _opts(s)
    if _mount(s, r, "ro_upper", "ro," + opts):
        r.call("chmod_ro", s.o.chmod, s.p("m/f"), 0o600)
        _stats(s, r, "ro_stats", ["f", "g"])
        s.umount()
    r.call("ro_left", lambda: [sorted(s.o.listdir(s.p("w"))), s.o.listdir(s.p("u"))])
    r.record("ro_root_origin", _fh_shape(s, "u", "trusted.overlay.origin", "l1"))
    _mount(s, r, "ro_again", "ro," + opts)
    s.umount()
    s.mount(opts)
    finish(s, r)


@scenario
def sc_read_only_with_upper(s: Side, r: Rec) -> None:
    """A "ro" mount with an upper dir still prepares the work dir and the uuid (and index)."""
    _links(s)
    opts = _opts(s, extra="")
    s.write("w/work/stale", "x")
    _mount(s, r, "ro", "ro," + opts)
    r.call("chmod", s.o.chmod, s.p("m/f"), 0o600)
    s.umount()
    r.call("left", lambda: [sorted(s.o.listdir(s.p("w"))), s.o.listdir(s.p("w/work")),
                            sorted(s.o.listxattr(s.p("u")))])  # fmt: skip
    _mount(s, r, "ro_again", "ro," + opts)  # the uuid is there now: not shown
    s.umount()
    s.mount(opts)
    finish(s, r)


@scenario
def sc_index_in_use(s: Side, r: Rec) -> None:
    _links(s)
    s.dirs("m2")
    opts = _opts(s)
    s.mount(opts)
    for key, extra in (("same_upper", _opts(s, "l1", "u", "w2")), ("same_work", _opts(s, "l1", "u2", "w")),
                       ("same_upper_index_off", _opts(s, "l1", "u", "w3", extra=""))):  # fmt: skip
        try:
            _mount_second(s, extra)
            r.record(key, "mounted")
            _umount_second(s)
        except OSError as e:
            r.record(key, ["errno", errno.errorcode.get(e.errno or 0)])
    finish(s, r)


def _mount_second(s: Side, opts: str, target: str = "m2") -> None:
    """Another overlay mount beside the scenario's own (at ``target``)."""
    if isinstance(s, KernelSide):
        from overlaysim.testing.kernel import mount

        mount("overlay", s.p(target), "overlay", opts)
    else:
        assert isinstance(s, SimSide)
        s.fs.mount("overlay", s.p(target), "overlay", opts)


def _umount_second(s: Side, target: str = "m2") -> None:
    if isinstance(s, KernelSide):
        from overlaysim.testing.kernel import umount

        umount(s.p(target))
    else:
        assert isinstance(s, SimSide)
        s.fs.umount(s.p(target))


@scenario
def sc_index_userxattr(s: Side, r: Rec) -> None:
    _links(s)
    opts = _opts(s, extra="userxattr," + IX)
    _mount(s, r, "mount", opts)
    r.call("chmod_f", s.o.chmod, s.p("m/f"), 0o600)
    r.call("unlink_g", s.o.unlink, s.p("m/g"))
    _stats(s, r, "stats", ["f", "h"])
    _index(s, r, "index", prefix="user.overlay.")
    s.umount()
    _mount(s, r, "remount", opts)
    _stats(s, r, "remounted", ["f", "h"])
    finish(s, r)


@scenario
def sc_index_metacopy(s: Side, r: Rec) -> None:
    _links(s)
    opts = _opts(s, extra="metacopy=on," + IX)
    _mount(s, r, "mount", opts)
    r.call("chmod_f", s.o.chmod, s.p("m/f"), 0o600)
    _index(s, r, "index_meta")
    r.call("blocks", lambda: [s.o.lstat(s.p(f"m/{n}")).st_blocks for n in "fgh"])
    r.call("rename_g", s.o.rename, s.p("m/g"), s.p("m/g2"))
    r.call("link_h", s.o.link, s.p("m/h"), s.p("m/h2"))
    _stats(s, r, "stats", ["f", "g2", "h", "h2"])
    _append(s, "m/h", b"+more")
    _index(s, r, "index_data")
    s.umount()
    s.mount(opts)
    _stats(s, r, "remounted", ["f", "g2", "h", "h2"])
    r.read("read_g2", "m/g2")
    finish(s, r)


@scenario
def sc_index_uuid_modes(s: Side, r: Rec) -> None:
    _links(s)
    off = _opts(s, extra="uuid=off," + IX)
    _mount(s, r, "uuid_off", off)
    s.o.chmod(s.p("m/f"), 0o600)
    r.record("null_uuid", _fh_shape(s, "u/f", "trusted.overlay.origin", "l1/f"))
    _index(s, r, "index")
    s.umount()
    for mode in ("uuid=on", "uuid=null", "uuid=auto"):
        if _mount(s, r, mode, _opts(s, extra=f"{mode},{IX}")):
            s.umount()
    _mount(s, r, "uuid_off_again", off)
    _stats(s, r, "stats", ["f", "g"])
    s.umount()
    s.dirs("u2", "w2")
    s.mount(_opts(s, "l1", "u2", "w2"))
    s.umount()
    _mount(s, r, "on_then_off", _opts(s, "l1", "u2", "w2", extra="uuid=off," + IX))
    s.mount(off)
    finish(s, r)


@scenario
def sc_index_volatile_and_whiteouts(s: Side, r: Rec) -> None:
    _links(s)
    opts = _opts(s, extra="volatile," + IX)
    _mount(s, r, "mount", opts)
    r.call("unlink_x", s.o.unlink, s.p("m/x"))
    r.call("unlink_s1", s.o.unlink, s.p("m/s1"))
    r.call("rename_f", s.o.rename, s.p("m/f"), s.p("m/f2"))
    r.call("whiteout_nlink", lambda: s.o.lstat(s.p("u/x")).st_nlink)
    r.call("w_listing", lambda: sorted(s.o.listdir(s.p("w"))))
    r.work("work_mounted")
    _index(s, r, "index")
    s.umount()
    r.call("remount_volatile", s.mount, opts)  # refused: incompat volatile
    finish_dirty(s, r)


def finish_dirty(s: Side, r: Rec) -> None:
    r.tree("upper", "u", upper=True)
    _index(s, r, "index_end")


@scenario
def sc_index_nested_lower(s: Side, r: Rec) -> None:
    _links(s)
    s.write("l2/z", "z")
    s.dirs("inner")
    _mount_second(s, f"lowerdir={s.p('l1')}:{s.p('l2')}", "inner")
    try:
        _mount(s, r, "mount", _opts(s, "inner"))  # no file handles: index falls back off
        r.call("chmod_z", s.o.chmod, s.p("m/z"), 0o600)
        r.call("chmod_f", s.o.chmod, s.p("m/f"), 0o600)
        _stats(s, r, "stats", ["f", "g", "z"])
        r.call("origin", lambda: _xattr(s, "u/z", "trusted.overlay.origin"))
        r.call("w_listing", lambda: sorted(s.o.listdir(s.p("w"))))
        s.umount()
        r.tree("upper", "u", upper=True)
    finally:
        _umount_second(s, "inner")
