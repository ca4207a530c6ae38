"""nfs_export=on scenarios (decodable file handles), run on the kernel and on the simulator.

Registered in the same table as tests/overlay/scenarios.py. What they pin down, measured on
Linux 6.18 with tmpfs layers:

* mount: nfs_export=on implies index=on; with index=off or metacopy=on (both explicit) EINVAL;
  a lower-only mount keeps it only with redirect_dir=nofollow; xino, userxattr, ro, uuid=
  are accepted.
* every copy-up is indexed: a file goes through W/index (``nlink`` "U-1", the in-memory count
  stays 1 until a remount shows 2), a directory gets a W/index directory (mode 0000) whose
  ``upper`` names the upper dir; removing an indexed object (copied up first if needed)
  leaves a whiteout in W/index (linked to the whiteout master there); at mount an orphan dir
  entry (its upper dir gone) is whited out and a lookup of that lower dir is EIO.
* handles: 36 bytes, type 0xf8, ovl_fb with flag 4 (upper) for the root and pure upper
  objects, 0 (lower) for lower and copied-up ones; encoding a lower dir below a higher
  layer's merge dir copies up the ancestor the decode needs. Without nfs_export: EOPNOTSUPP
  unless AT_HANDLE_FID, and those do not decode (ESTALE). Decode: lower, upper, indexed,
  after a remount; ESTALE for removed objects, an offline-deleted lower, another fs's
  handle, a root handle of a lower-only mount; EPERM for uid 1000; a symlink is ELOOP unless
  O_PATH; a write through a handle decoded with no name copies the file into W/index only.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from overlaysim.testing.observe import handle_shape
from tests.overlay.oharness import Rec, Side, name_to_handle_at, open_by_handle_at
from tests.overlay.scenarios import finish, scenario
from tests.overlay.scenarios_index import _index, _mount, _opts, _stats

NX = "nfs_export=on"
AT_HANDLE_FID = 0x200


def _tree(s: Side) -> None:
    """l1: a/b/f, g, k, e/, c/c2/, sl->k; l2: a/h, a/sub/s2/ (under l1's merge dir a)."""
    s.write("l1/a/b/f", "x")
    s.write("l1/g", "g")
    s.write("l1/k", "k")
    s.dirs("l1/e", "l1/c/c2", "l2/a/sub/s2")
    s.write("l2/a/h", "h")
    s.o.symlink("k", s.p("l1/sl"))


def _err(e: OSError) -> list[Any]:
    return ["errno", errno.errorcode.get(e.errno or 0, str(e.errno))]


def _h(s: Side, r: Rec, key: str, rel: str, flags: int = 0, room: int = 128) -> bytes | None:
    """Encode ``rel``'s handle; record its shape (or the errno); the handle bytes back."""
    try:
        handle, _mnt_id = name_to_handle_at(s.o, None, s.p(rel), flags, room)
    except OSError as e:
        r.record(key, _err(e))
        return None
    r.record(key, handle_shape(handle))
    return handle


def _open(o: Any, mfd: int, handle: bytes, flags: int) -> list[Any]:
    fd = open_by_handle_at(o, mfd, handle, flags)
    try:
        st = o.fstat(fd)
        if flags & os.O_PATH or (st.st_mode & 0o170000) != 0o100000:
            return [oct(st.st_mode)]
        return [oct(st.st_mode), o.read(fd, 100).decode()]
    finally:
        o.close(fd)


def _open_in(o: Any, mount_dir: str, handle: bytes | None) -> list[Any]:
    mfd = o.open(mount_dir, os.O_RDONLY)
    try:
        return _open(o, mfd, handle or b"", os.O_RDONLY)
    finally:
        o.close(mfd)


def _dec(s: Side, r: Rec, key: str, handle: bytes | None, flags: int = os.O_RDONLY,
         via: str = "m") -> None:  # fmt: skip
    """Decode on the mount at ``via``: the object's mode and data, or the errno."""
    if handle is None:
        r.record(key, "no handle")
        return
    mfd = s.o.open(s.p(via), os.O_RDONLY | os.O_DIRECTORY)
    try:
        r.record(key, _open(s.o, mfd, handle, flags))
    except OSError as e:
        r.record(key, _err(e))
    finally:
        s.o.close(mfd)


@scenario
def sc_nfs_mount_rules(s: Side, r: Rec) -> None:
    s.dirs("l1/d", "l2/d")
    combos = [NX, f"{NX},index=off", f"{NX},metacopy=on", f"{NX},index=on,metacopy=on",
              f"{NX},redirect_dir=on", f"{NX},redirect_dir=nofollow", f"{NX},xino=on",
              f"{NX},userxattr", f"{NX},ro", f"{NX},uuid=null", f"{NX},uuid=off",
              f"index=off,{NX}", f"metacopy=on,{NX}"]  # fmt: skip
    for i, extra in enumerate(combos):
        if _mount(s, r, f"upper_{i}", _opts(s, "l1:l2", f"u{i}", f"w{i}", extra)):
            _h(s, r, f"upper_{i}_root", "m")
            s.umount()
    for i, extra in enumerate([NX, f"{NX},redirect_dir=nofollow", f"{NX},redirect_dir=follow"]):
        lows = ":".join(s.p(x) for x in ("l1", "l2"))
        if _mount(s, r, f"lower_only_{i}", f"lowerdir={lows},{extra}"):
            _h(s, r, f"lower_only_{i}_root", "m")
            h = _h(s, r, f"lower_only_{i}_d", "m/d")
            _dec(s, r, f"lower_only_{i}_d_open", h)
            s.umount()


@scenario
def sc_nfs_index_entries(s: Side, r: Rec) -> None:
    _tree(s)
    s.mount(_opts(s, "l1:l2", extra=NX))
    _index(s, r, "index_empty")
    r.call("chmod_dir", s.o.chmod, s.p("m/c"), 0o700)
    s.write("m/a/new", "new")  # copies up the merge dir a
    r.call("chmod_file", s.o.chmod, s.p("m/k"), 0o600)
    _stats(s, r, "stats_copied", ["k", "c", "a", "g"])
    _index(s, r, "index_copied")
    r.call("unlink_lower", s.o.unlink, s.p("m/g"))
    r.call("rmdir_lower", s.o.rmdir, s.p("m/e"))
    r.call("rmdir_nested", s.o.rmdir, s.p("m/a/sub/s2"))
    r.call("rmdir_parent", s.o.rmdir, s.p("m/a/sub"))
    r.call("unlink_copied", s.o.unlink, s.p("m/k"))
    s.o.mkdir(s.p("m/pure"))
    r.call("rename_over_lower_dir", s.o.rename, s.p("m/pure"), s.p("m/c/c2"))
    _index(s, r, "index_removed")
    r.call("index_modes", lambda: sorted(oct(s.o.lstat(s.p(f"w/index/{n}")).st_mode)
                                         for n in s.o.listdir(s.p("w/index"))))  # fmt: skip
    finish(s, r)
    _index(s, r, "index_umounted")


@scenario
def sc_nfs_nlink_and_orphans(s: Side, r: Rec) -> None:
    _tree(s)
    opts = _opts(s, "l1:l2", extra=NX)
    s.mount(opts)
    r.call("chmod_k", s.o.chmod, s.p("m/k"), 0o600)
    _stats(s, r, "k_session", ["k"])
    r.call("link_k", s.o.link, s.p("m/k"), s.p("m/k2"))
    _stats(s, r, "k_linked", ["k", "k2"])
    r.call("unlink_k2", s.o.unlink, s.p("m/k2"))
    r.call("chmod_c", s.o.chmod, s.p("m/c"), 0o700)
    s.umount()
    s.mount(opts)
    _stats(s, r, "k_remounted", ["k"])
    r.call("unlink_k_remounted", s.o.unlink, s.p("m/k"))
    _index(s, r, "index_after_unlink")
    s.umount()
    s.o.rmdir(s.p("u/c"))  # offline: the indexed upper dir goes
    _mount(s, r, "mount_after_offline", opts)
    _index(s, r, "index_cleaned")
    r.call("ls_c", s.o.listdir, s.p("m/c"))
    r.call("stat_c", lambda: oct(s.o.stat(s.p("m/c")).st_mode))
    finish(s, r)


@scenario
def sc_nfs_nlink_eviction(s: Side, r: Rec) -> None:
    """The in-memory count lives as long as a dentry: a name made by link() is not one."""
    _tree(s)
    s.mount(_opts(s, "l1:l2", extra=NX))
    r.call("link_sl", s.o.link, s.p("m/sl"), s.p("m/sl2"))  # copies up, indexed
    r.call("unlink_sl", s.o.unlink, s.p("m/sl"))
    _stats(s, r, "sl2_not_looked_up", ["sl2"])
    r.call("link_k", s.o.link, s.p("m/k"), s.p("m/k2"))
    _stats(s, r, "k2_looked_up", ["k", "k2"])
    r.call("unlink_k", s.o.unlink, s.p("m/k"))
    _stats(s, r, "k2_kept", ["k2"])
    finish(s, r)


@scenario
def sc_nfs_handles_encode(s: Side, r: Rec) -> None:
    _tree(s)
    s.mount(_opts(s, "l1:l2", extra=NX))
    for key, rel in [("root", "m"), ("lower_dir", "m/a/b"), ("merge_dir", "m/a"),
                     ("lower_file", "m/a/b/f"), ("l2_file", "m/a/h"), ("symlink", "m/sl"),
                     ("tmpfs_file", "l1/k"), ("tmpfs_dir", "l1")]:  # fmt: skip
        _h(s, r, key, rel)
    _h(s, r, "symlink_follow", "m/sl", 0x400)
    _h(s, r, "small_buffer", "m/k", 0, 32)
    _h(s, r, "tmpfs_small_buffer", "l1/k", 0, 8)
    _h(s, r, "bad_flags", "m/k", 0x8)
    r.call("upper_before", lambda: sorted(s.o.listdir(s.p("u"))))
    _h(s, r, "l2_dir_under_merge", "m/a/sub/s2")  # copies up a/sub first (ovl_connect_layer)
    _index(s, r, "index_after_connect")
    s.write("m/pure", "p")
    s.o.mkdir(s.p("m/pured"))
    r.call("chmod_k", s.o.chmod, s.p("m/k"), 0o600)
    for key, rel in [("pure_file", "m/pure"), ("pure_dir", "m/pured"), ("copied_file", "m/k"),
                     ("copied_dir", "m/a")]:  # fmt: skip
        _h(s, r, key, rel)
    finish(s, r)


@scenario
def sc_nfs_handles_off(s: Side, r: Rec) -> None:
    _tree(s)
    for i, extra in enumerate(["index=on", ""]):
        s.mount(_opts(s, "l1:l2", f"u{i}", f"w{i}", extra))
        _h(s, r, f"plain_{i}", "m/a/b/f")
        fid = _h(s, r, f"fid_{i}", "m/a/b/f", AT_HANDLE_FID)
        _h(s, r, f"fid_root_{i}", "m", AT_HANDLE_FID)
        _dec(s, r, f"fid_open_{i}", fid)
        s.umount()


@scenario
def sc_nfs_handles_decode(s: Side, r: Rec) -> None:
    _tree(s)
    opts = _opts(s, "l1:l2", extra=NX)
    s.mount(opts)
    names = ["m", "m/a", "m/a/b", "m/a/b/f", "m/g", "m/a/h", "m/k", "m/e", "m/c", "m/c/c2"]
    hs: dict[str, bytes | None] = {}
    for rel in names:
        hs[rel] = name_to_handle_at(s.o, None, s.p(rel))[0]
    for rel in names:
        _dec(s, r, f"fresh:{rel}", hs[rel])
    r.call("chmod_c", s.o.chmod, s.p("m/c"), 0o700)
    s.write("m/a/new", "new")
    r.call("append_k", lambda: s.o.close(s.o.open(s.p("m/k"), os.O_WRONLY | os.O_TRUNC)))
    s.write("m/k", "K2")
    s.o.unlink(s.p("m/g"))
    s.o.rmdir(s.p("m/e"))
    s.write("m/pu", "pu")
    s.o.mkdir(s.p("m/pd"))
    hs["m/pu"] = name_to_handle_at(s.o, None, s.p("m/pu"))[0]
    hs["m/pd"] = name_to_handle_at(s.o, None, s.p("m/pd"))[0]
    for rel in [*names, "m/pu", "m/pd"]:
        _dec(s, r, f"changed:{rel}", hs[rel])
    _dec(s, r, "symlink", name_to_handle_at(s.o, None, s.p("m/sl"))[0])
    _dec(s, r, "symlink_path", name_to_handle_at(s.o, None, s.p("m/sl"))[0], os.O_PATH)
    _dec(s, r, "dir_for_write", hs["m/a"], os.O_WRONLY)
    _dec(s, r, "via_tmpfs_fd", hs["m/k"], via="")
    tmpfs_h = name_to_handle_at(s.o, None, s.p("l1/k"))[0]
    _dec(s, r, "tmpfs_handle_on_overlay", tmpfs_h)
    _dec(s, r, "tmpfs_handle_on_tmpfs", tmpfs_h, via="")
    r.call("uid1000", s.run_as, 1000, 1000, lambda o: _open_in(o, s.p("m"), hs["m/k"]))
    r.call("bad_type", lambda: open_by_handle_at(s.o, None, hs["m/k"][:4] + bytes([7, 0, 0, 0])
                                                 + hs["m/k"][8:], os.O_RDONLY))  # fmt: skip
    s.o.unlink(s.p("m/pu"))
    s.o.rmdir(s.p("m/pd"))
    _dec(s, r, "removed_pu", hs["m/pu"])
    _dec(s, r, "removed_pd", hs["m/pd"])
    s.umount()
    s.mount(opts)
    for rel in [*names, "m/pu", "m/pd"]:
        _dec(s, r, f"remounted:{rel}", hs[rel])
    _dec(s, r, "write_disconnected", hs["m/a/b/f"], os.O_RDWR)
    r.call("at_fdcwd", open_by_handle_at, s.o, None, hs["m/k"], os.O_RDONLY)  # cwd: not here
    mfd = s.o.open(s.p("m"), os.O_RDONLY)
    fd = open_by_handle_at(s.o, mfd, hs["m/a/b/f"] or b"", os.O_WRONLY)
    s.o.write(fd, b"F2")
    s.o.close(fd)
    s.o.close(mfd)
    r.call("upper_after_write", lambda: sorted(x[0][len(s.base) :] for x in s.o.walk(s.p("u"))))
    _index(s, r, "index_after_write")
    r.read("read_back", "m/a/b/f")
    s.umount()
    s.o.unlink(s.p("l2/a/h"))  # offline: the lower file goes
    s.mount(opts)
    _dec(s, r, "lower_deleted", hs["m/a/h"])
    finish(s, r)


NF = True
