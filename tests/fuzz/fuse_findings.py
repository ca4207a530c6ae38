"""Divergences of fuse-overlayfs (1.10) from the kernel's overlay (6.18), as minimal cases.

Found by ``--against fuse-overlayfs`` campaigns (2,000 sequences over its profiles), shrunk,
then cut down by hand to the smallest case that still shows the behaviour. Each entry is
checked by tests/fuzz/test_targets_fuse.py and has a standalone two-sided reproducer under
tests/fuzz/findings/ (regenerate with ``python -m tests.fuzz.fuse_findings``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from overlaysim.testing import layers as L
from overlaysim.testing import ops as O

HERE = os.path.join(os.path.dirname(__file__), "findings")


@dataclass(frozen=True)
class Finding:
    name: str
    behaviour: str
    kernel: str
    fuse: str
    stack: L.LayerStack
    ops: tuple[O.Op, ...]
    expect: tuple[str, ...]  # lines the report (stop_at_first=False) must contain
    options: str = ""
    excluded: bool = False  # fuzzed stacks leave this out (overlaysim.fuzz.fuse_overlayfs.sanitize)

    @property
    def script_path(self) -> str:
        return os.path.join(HERE, f"{self.name}.sh")


def _rw(*lower: dict[str, L.Node], upper: dict[str, L.Node] | None = None) -> L.LayerStack:
    return L.LayerStack(tuple(L.Dir(e) for e in lower), L.Dir(upper or {}))


FINDINGS = (
    Finding("fifo-copy-up-makes-a-file", "copy-up of a FIFO (here by setxattr)",
            "copies the FIFO up", "replaces it with an empty regular file",
            _rw({"p": L.Fifo()}), (O.SetXattr("p", "trusted.t", b"1"),),
            ("p: type: kernel='fifo' simulator='file'",)),
    Finding("device-copy-up-eio", "copy-up of a char device (chown of /dev/null's twin)",
            "ok", "EIO", _rw({"c": L.Device("chr", 1, 3)}), (O.Chown("c", 1000, 1000, False),),
            ("oracle ok, simulator EIO",)),
    Finding("device-unlink-enxio", "unlink of a lower block device without a driver",
            "ok (a whiteout)", "ENXIO (it opens the device)", _rw({"a": L.Device("blk", 1, 3)}),
            (O.Unlink("a"),), ("oracle ok, simulator ENXIO",)),
    Finding("hardlink-copy-up-keeps-link", "writing one name of a lower hard link",
            "breaks the link: a new inode, the other name keeps the old data",
            "keeps one inode: the other name sees the write (st_ino kept, nlink 2)",
            _rw({"e": L.File(b""), "a": L.HardLink("e")}), (O.Truncate("a", 2),),
            ("e: size: kernel=0 simulator=2", "oracle (False, False), simulator (True, True)")),
    Finding("hardlink-nlink-counts-visible-names", "st_nlink of a lower hard link whose other "
            "name is shadowed by the upper layer", "2 (the lower inode's)", "1",
            _rw({"d": L.File(b""), "f": L.HardLink("d")}, upper={"d": L.File(b"")}), (),
            ("f: nlink: kernel=2 simulator=1",)),
    Finding("readonly-checks-erofs-last", "modifying a read-only mount (no upperdir)",
            "EROFS for every modification", "ENOENT/ENOTDIR/ENOTEMPTY... first; "
            "rename(a, a) succeeds", L.LayerStack((L.Dir({"a": L.File(b"")}), L.Dir()), None),
            (O.Unlink("b"), O.Rename("a", "a")),
            ("oracle EROFS, simulator ENOENT", "oracle EROFS, simulator ok")),
    Finding("volatile-mounts-again", "mounting again over the dirs of a volatile mount",
            "EINVAL until work/incompat/volatile is removed", "mounts", _rw({}), (),
            ("remount: oracle EINVAL, simulator mounted",), options="volatile"),
    Finding("stray-whiteout-listed", "a whiteout in a dir with nothing below it",
            "readdir lists its name (lookup fails ENOENT)", "hides it",
            _rw({}, upper={"e": L.Dir({"c": L.Whiteout()})}), (),
            ("e: listing: kernel=('c',) simulator=()",)),
    Finding("rename-whiteout-flag", "renameat2(RENAME_WHITEOUT)", "EINVAL", "ok",
            _rw({"f": L.File(b"")}), (O.Rename("f", "d", O.RENAME_WHITEOUT),),
            ("oracle EINVAL, simulator ok",)),
    Finding("mknod-whiteout-device", "mknod of a char 0/0 device", "EPERM", "ENOENT",
            _rw({}), (O.Mknod("a", "chr", 0, 0),), ("oracle EPERM, simulator ENOENT",)),
    Finding("private-xattr-set", "setxattr trusted.overlay.* on a merged file",
            "ok (stored escaped as trusted.overlay.overlay.*)", "EPERM", _rw({}, upper={"c": L.File(b"")}),
            (O.SetXattr("c", "trusted.overlay.opaque", b"x", os.XATTR_CREATE),),
            ("oracle ok, simulator EPERM",)),
    Finding("user-overlay-xattr-hidden", "user.overlay.* xattrs on a trusted.* mount",
            "ordinary xattrs: set and listed", "set, then hidden from listxattr",
            _rw({}, upper={"c": L.File(b"")}),
            (O.SetXattr("c", "user.overlay.z", b"x"), O.ListXattr("c")),
            ("oracle ok ['user.overlay.z'], simulator ok []",)),
    Finding("renamed-dir-over-whiteout-resurrects", "renaming away a dir made over a whiteout",
            "the old name stays whited out", "the lower file at the old name comes back",
            _rw({"b": L.File(b"")}, upper={"b": L.Whiteout()}),
            (O.Mkdir("b"), O.Rename("b", "a"), O.Listdir(".")),
            ("oracle ok ['a'], simulator ok ['a', 'b']",)),
    Finding("xattr-whiteouts-ignored", "an xattr whiteout (empty file with "
            "trusted.overlay.whiteout, kernel 6.7+)", "hides the name from lookup",
            "shows an empty file", _rw({"a": L.Whiteout("xattr")}), (),
            ("a: type: kernel='unreachable' simulator='file'",), excluded=True),
)


def main() -> None:
    """Write every reproducer script (they are committed; a test keeps them current)."""
    from overlaysim.fuzz.fuse_overlayfs import fuse_script

    os.makedirs(HERE, exist_ok=True)
    for f in FINDINGS:
        with open(f.script_path, "w", encoding="utf-8") as out:
            out.write(fuse_script(f.stack, f.ops, f.options))
        os.chmod(f.script_path, 0o755)


if __name__ == "__main__":
    main()
