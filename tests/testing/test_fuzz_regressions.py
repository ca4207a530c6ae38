"""Cases the kernel-oracle fuzzer found, shrunk, kept as regressions (each once diverged).

Each runs on the kernel and on the simulator through the differential runner (round trips
included) and must agree; the comment says what the kernel does that we once did not.
"""

from __future__ import annotations

import stat

import pytest

from overlaysim.testing import differential as D
from overlaysim.testing import layers as L
from overlaysim.testing import ops as O
from overlaysim.testing.kernel import can_mount
from overlaysim.testing.simulator import simulator_factory

pytestmark = pytest.mark.kernel

X = {"trusted.overlay.opaque": b"x"}
XW = {"trusted.overlay.whiteout": b"y"}
MC = {"trusted.overlay.metacopy": b""}

CASES: dict[str, tuple[L.LayerStack, list[O.Op], str]] = {
    # A merge dir whose upper has no origin gets one at lookup; its upper parent turns impure.
    "fix_origin_on_lookup": (
        L.LayerStack((L.Dir({"e": L.Dir({"x": L.File()})}), L.Dir()),
                     L.Dir({"e": L.Dir({"y": L.File()})})),
        [O.Stat("e", True)], ""),
    # ... and an impure merge dir then drops upper xattr whiteouts from its listing.
    "impure_dir_drops_stale_entries": (
        L.LayerStack((L.Dir(), L.Dir({"a": L.File(), "d": L.HardLink("a")})),
                     L.Dir({"c": L.File(xattrs=XW)})),
        [O.Listdir("."), O.Write("d", b""), O.Listdir(".")], ""),
    # Lower hard links copied up get no origin, so moving one elsewhere marks nothing impure.
    "rename_of_hardlink_copy_leaves_parent_pure": (
        L.LayerStack((L.Dir(), L.Dir({"a": L.File(), "c": L.HardLink("a")})),
                     L.Dir({"a": L.Dir({"a": L.File()})})),
        [O.Rename("c", "a/a")], ""),
    # Renaming a lower file onto an upper whiteout exchanges the two ("switch whiteouts").
    "rename_onto_xattr_whiteout_switches": (
        L.LayerStack((L.Dir({"f": L.File(b"x")}),),
                     L.Dir({"d": L.Dir({"b": L.File(xattrs=XW)}), "f": L.File(b"u")})),
        [O.Rename("f", "d/b"), O.Listdir(".")], ""),
    # With redirect_dir=on (no offline changes allowed) mkdir in a merge dir is opaque.
    "mkdir_opaque_without_offline_changes": (
        L.LayerStack((L.Dir({"d": L.Dir()}),), L.Dir()),
        [O.Mkdir("z", 0o755), O.Mkdir("d/y", 0o755)], "redirect_dir=on"),
    # xattr whiteouts are honoured by readdir except in the mount's last lower layer.
    "xwhiteouts_last_layer_listed": (
        L.LayerStack((L.Dir(), L.Dir({"f": L.Dir({"c": L.File(), "e": L.File(xattrs=XW)},
                                                 xattrs=X)})),
                     L.Dir()),
        [O.Utime("f", (10**9, 10**9), True), O.Listdir("f")], ""),
    # userxattr: user.* cannot go on a fifo, so its copy-up has no origin.
    "userxattr_special_file_without_origin": (
        L.LayerStack((L.Dir({"p": L.Fifo()}),), L.Dir()),
        [O.Chmod("p", 0o600)], "userxattr"),
    # An existing device in a sticky world-writable dir: open(O_CREAT) is EACCES even for root.
    "sticky_dir_device_open_creat": (
        L.LayerStack((L.Dir(),), L.Dir({"c": L.Device("chr", 1, 3, uid=1000)}, mode=0o1777)),
        [O.Open("c", 0o4000, 0o644, None, None), O.Open("c", 0o4100, 0o644, None, None)], ""),
    # Reading an impure dir that is not merged and holds no origin-carrying entry any more
    # removes its "impure" xattr (ovl_cache_get_impure).
    "impure_cleared_when_no_origin_left": (
        L.LayerStack((L.Dir(), L.Dir({"a": L.Symlink("a"), "f": L.File(b"f")})),
                     L.Dir({"b": L.Dir({"a": L.File(), "b": L.File()})})),
        [O.Rename("f", "b/f"), O.Listdir("b"), O.Rename("a", "b/b"), O.Unlink("b/f"),
         O.Unlink("b/b"), O.Listdir("b")], ""),
    "impure_cleared_after_rename_onto_whiteout": (
        L.LayerStack((L.Dir(), L.Dir({"b": L.Symlink("a")})),
                     L.Dir({"a": L.Dir({"a": L.Whiteout(), "c": L.Symlink("a")})})),
        [O.Rename("b", "a/a"), O.Unlink("a/a"), O.Listdir("a")], "userxattr"),
    # ovl_link marks the new parent impure only for an origin-typed source.
    "link_of_lower_hardlink_leaves_parent_pure": (
        L.LayerStack((L.Dir(), L.Dir({"a": L.Dir({"s": L.Symlink("a")}), "b": L.File(),
                                      "c": L.HardLink("b"), "d": L.Dir(), "f": L.File()})),
                     L.Dir()),
        [O.Link("b", "a/b"), O.Link("f", "d/f")], ""),
    # A lower dir holding only whiteouts is empty for rmdir.
    "rmdir_of_lower_dir_with_only_whiteouts": (
        L.LayerStack((L.Dir({"f": L.Dir({"c": L.Whiteout(), "d": L.Whiteout()})}),), L.Dir()),
        [O.Rmdir("f")], ""),
    # rmdir of an upper dir that is not merged but hides a lower name (here a symlink) uses the
    # overlay's emptiness check: its stray whiteouts are cleaned. With nothing below, the upper
    # fs's rmdir refuses them (ENOTEMPTY). Found by the metacopy=on profile.
    "rmdir_upper_dir_over_lower_name_cleans_stray_whiteouts": (
        L.LayerStack((L.Dir({"a": L.File(), "f": L.Symlink("a")}), L.Dir()),
                     L.Dir({"f": L.Dir({"a": L.Whiteout()}), "g": L.Dir({"a": L.Whiteout()})})),
        [O.Rmdir("f"), O.Rmdir("g"), O.Listdir(".")], ""),
    # A metacopy file with no data below fails its lookup (EIO), but a merge dir that is not
    # impure lists it without looking it up (only impure dirs look upper entries up).
    "metacopy_without_data_listed_in_pure_dir": (
        L.LayerStack((L.Dir(), L.Dir()), L.Dir({"a": L.Whiteout(), "b": L.File(xattrs=MC)})),
        [O.Listdir("."), O.Stat("b"), O.Chmod("b", 0o600)], "metacopy=on"),
    # An absolute redirect is walked component by component: an opaque dir on the way ends
    # the walk after its layer, a file or a whiteout on the way ends it there.
    "absolute_redirect_walk_stops_at_opaque_file_whiteout": (
        L.LayerStack((L.Dir({"p": L.Dir({"q": L.Dir({"x": L.File(b"1")})}, opaque="y"),
                             "r": L.Dir({"q": L.Dir({"x": L.File(b"2")})}),
                             "s": L.Dir({"q": L.Dir({"x": L.File(b"3")})})}),
                      L.Dir({"p": L.Dir({"q": L.Dir({"y": L.File(b"4")})}), "r": L.File(b"f"),
                             "s": L.Whiteout()}),
                      L.Dir({"r": L.Dir({"q": L.Dir({"z": L.File(b"5")})}),
                             "s": L.Dir({"q": L.Dir({"z": L.File(b"6")})})})),
                     L.Dir()),
        [O.Rename("p/q", "pq"), O.Rename("r/q", "rq"), O.Rename("s/q", "sq"), O.Listdir("pq"),
         O.Listdir("rq"), O.Listdir("sq")], "redirect_dir=on"),
    # A moved merge dir with a relative redirect gets an absolute one when it changes parent.
    "relative_dir_redirect_made_absolute": (
        L.LayerStack((L.Dir({"p": L.Dir({"q": L.Dir({"x": L.File()})}), "t": L.Dir()}),),
                     L.Dir()),
        [O.Rename("p/q", "p/q2"), O.Rename("p/q2", "t/q3"), O.Listdir("t/q3")], "redirect_dir=on"),
    # Rename and link of a metacopy file: relative and absolute redirects, the data found
    # again after a remount.
    "metacopy_rename_and_link_redirects": (
        L.LayerStack((L.Dir({"a": L.File(b"a"), "b": L.File(b"b"), "d": L.Dir({"c": L.File(b"c")}),
                             "h": L.File(b"h"), "i": L.HardLink("h")}), L.Dir()),
                     L.Dir()),
        [O.Rename("a", "a2"), O.Rename("a2", "d/a3"), O.Link("b", "d/b2"), O.Rename("d/c", "c2"),
         O.Rename("h", "h2"), O.Write("d/b2", b"x", True), O.Open("c2", 0, read=16)], "metacopy=on"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzzer_finding_stays_fixed(name: str) -> None:
    ok, why = can_mount()
    if not ok:
        pytest.skip(why)
    stack, ops, options = CASES[name]
    report = D.run_case(stack, ops, options, simulator_factory, round_trip=True)
    assert report.ok, f"{report}\n{report.script()}"
    assert len(report.results) == len(ops)


def test_cases_build_what_they_say() -> None:
    """The stacks are well formed (hard link targets exist, modes are sane)."""
    for stack, _ops, _opts in CASES.values():
        for layer in (*stack.lowers, *([stack.upper] if stack.upper else [])):
            for path, node in L.walk(layer):
                if isinstance(node, L.HardLink):
                    assert isinstance(L.lookup(layer, node.target), L.File), path
                if isinstance(node, L.Dir):
                    assert stat.S_IMODE(node.mode) == node.mode
