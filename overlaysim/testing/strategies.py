"""Hypothesis strategies for layer stacks, operation sequences and mount option profiles.

Names come from a small pool (six names, depth <= 3) so that layers and operations collide
often: the same name as a file in one layer and a directory in another, whited out in a
third, renamed onto by an operation. Every file type the kernel distinguishes appears.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from overlaysim.testing import layers as L
from overlaysim.testing import ops as O

NAMES = ("a", "b", "c", "d", "e", "f")
XATTR_NAMES = ("user.x", "user.y", "trusted.t")
# Option profiles of the CI matrix: name -> (extra options, with an upper layer)
PROFILES: dict[str, tuple[str, bool]] = {
    "default": ("", True),
    "redirect_dir=on": ("redirect_dir=on", True),
    "userxattr": ("userxattr", True),
    "ro multi-lower": ("", False),
    "volatile": ("volatile", True),
    "metacopy=on": ("metacopy=on", True),
}

names = st.sampled_from(NAMES)
# Symlink targets only go down (no absolute or ".." targets, which could chain out of the
# mount): operations follow symlinks, and a fuzzer must never touch the host's files.
_SYMLINK_TARGETS = st.sampled_from(["a", "b/c", ".", "missing", "c/d/e"])
_owner = st.sampled_from([(0, 0), (1000, 1000), (0, 1000)])
_xattrs = st.dictionaries(st.sampled_from(XATTR_NAMES), st.sampled_from([b"1", b"22", b""]),
                          max_size=2)  # fmt: skip


def paths(max_depth: int = 3) -> st.SearchStrategy[str]:
    """Relative paths of 1..max_depth names from the pool."""
    return st.lists(names, min_size=1, max_size=max_depth).map("/".join)


@st.composite
def files(draw: st.DrawFn, /) -> L.File:
    uid, gid = draw(_owner)
    return L.File(data=draw(st.sampled_from([b"", b"x", b"hello\n", b"\0\1" * 8])),
                  mode=draw(st.sampled_from([0o644, 0o600, 0o755, 0o4755, 0o444])),
                  uid=uid, gid=gid, xattrs=draw(_xattrs),
                  mtime_ns=draw(st.sampled_from([None, 1_600_000_000_000_000_000])))  # fmt: skip


@st.composite
def metacopy_files(draw: st.DrawFn, /) -> L.File:
    """A file as a metacopy=on mount leaves it in its upper layer (``metacopy`` xattr, maybe
    a ``redirect``): its data is looked up in the layers below."""
    f = draw(files())
    marks = {L.TRUSTED_PREFIX + "metacopy": b""}
    redirect = draw(st.sampled_from([None, None, "a", "b", "/a", "/b/c", "/c/d/e"]))
    if redirect is not None:
        marks[L.TRUSTED_PREFIX + "redirect"] = redirect.encode()
    return replace(f, xattrs={**f.xattrs, **marks})


def leaves(whiteouts: bool = True, metacopy: bool = False) -> st.SearchStrategy[L.Node]:
    """Every non-directory kind, whiteouts (both forms) included if asked, and metacopy
    files (as left by a metacopy=on mount) if asked."""
    choices: list[st.SearchStrategy[Any]] = [
        files(), files(),
        st.builds(L.Symlink, _SYMLINK_TARGETS),
        st.builds(L.Fifo, mode=st.sampled_from([0o644, 0o600])),
        st.builds(L.Device, st.sampled_from(["chr", "blk"]), st.just(1), st.sampled_from([3, 5])),
    ]  # fmt: skip
    if whiteouts:
        choices += [st.just(L.Whiteout("chr")), st.just(L.Whiteout("chr")),
                    st.just(L.Whiteout("xattr"))]  # fmt: skip
    if metacopy:
        choices.append(metacopy_files())
    return st.one_of(*choices)


def dirs(depth: int = 3, *, whiteouts: bool = True, opaque: bool = True,
         metacopy: bool = False) -> st.SearchStrategy[L.Dir]:  # fmt: skip
    """Directories up to ``depth`` levels, with opaque markers ("y" or "x") if asked."""
    child: st.SearchStrategy[Any] = leaves(whiteouts, metacopy)
    if depth > 1:
        child = st.one_of(leaves(whiteouts, metacopy),
                          dirs(depth - 1, whiteouts=whiteouts, opaque=opaque, metacopy=metacopy))  # fmt: skip
    return st.builds(
        L.Dir,
        entries=st.dictionaries(names, child, max_size=4),
        mode=st.sampled_from([0o755, 0o700, 0o1777]),
        xattrs=_xattrs,
        # With metacopy files, no opaque="x": readdir looks up regular files of such layers,
        # and whether a failing lookup (a metacopy file without data) fails the listing
        # depends on where the upper fs puts "." and ".." (ext4 hashes them, tmpfs not).
        opaque=st.sampled_from(([None, None, None, "y", None if metacopy else "x"]) if opaque
                               else [None]),
    )


def _insert(d: L.Dir, parts: list[str], name: str, node: L.Node) -> L.Dir:
    if not parts:
        return replace(d, entries={**d.entries, name: node})
    sub = d.entries[parts[0]]
    assert isinstance(sub, L.Dir)
    return replace(d, entries={**d.entries, parts[0]: _insert(sub, parts[1:], name, node)})


@st.composite
def layers(draw: st.DrawFn, /, depth: int = 3, *, hardlinks: bool = True, whiteouts: bool = True,
           opaque: bool = True, metacopy: bool = False) -> L.Dir:  # fmt: skip
    """One layer; with ``hardlinks``, up to two extra names for files of the same layer;
    with ``metacopy``, files carrying the ``metacopy`` xattr (see :func:`metacopy_files`)."""
    root = draw(dirs(depth, whiteouts=whiteouts, opaque=opaque, metacopy=metacopy)
                .map(lambda d: replace(d, opaque=None)))  # fmt: skip
    if not hardlinks:
        return root
    tree = list(L.walk(root))
    targets = [p for p, n in tree if isinstance(n, L.File)]
    places = [""] + [p for p, n in tree if isinstance(n, L.Dir)]
    for _ in range(draw(st.integers(0, 2)) if targets else 0):
        where = draw(st.sampled_from(places))
        node = L.lookup(root, where)
        free = [n for n in NAMES if isinstance(node, L.Dir) and n not in node.entries]
        if free:
            parts = [p for p in where.split("/") if p]
            root = _insert(root, parts, draw(st.sampled_from(free)),
                           L.HardLink(draw(st.sampled_from(targets))))  # fmt: skip
    return root


@st.composite
def layer_stacks(draw: st.DrawFn, /, min_lowers: int = 2, max_lowers: int = 4,
                 upper: bool | None = True, **layer_kw: Any) -> L.LayerStack:  # fmt: skip
    """2-4 lower layers and an upper layer (``upper=None``: drawn; False: read-only)."""
    lowers = draw(st.lists(layers(**layer_kw), min_size=min_lowers, max_size=max_lowers))
    has_upper = draw(st.booleans()) if upper is None else upper
    # Metacopy files only in lower layers: an upper one without data below fails its lookup,
    # and whether listing its impure parent then fails depends on the upper fs's entry order
    # (ext4 here, tmpfs order in the simulator). A remount puts real ones in the upper.
    up = draw(layers(**{**layer_kw, "metacopy": False})) if has_upper else None
    return L.LayerStack(lowers=tuple(lowers), upper=up)


_OPEN_FLAGS = [os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_CREAT,
               os.O_RDWR | os.O_CREAT | os.O_EXCL, os.O_WRONLY | os.O_TRUNC,
               os.O_RDONLY | os.O_DIRECTORY, os.O_WRONLY | os.O_APPEND, os.O_RDONLY | os.O_CREAT]  # fmt: skip
_DATA = st.sampled_from([b"", b"x", b"more data"])


def _op_strategies(kinds: frozenset[str] | None, pool: tuple[str, ...]) -> list[st.SearchStrategy[O.Op]]:
    p, b = paths(), st.booleans()
    if pool:  # two thirds of the paths name something that exists in some layer
        p = st.one_of(st.sampled_from(pool), st.sampled_from(pool), p)
    table: dict[str, st.SearchStrategy[Any]] = {
        "open": st.builds(O.Open, p, st.sampled_from(_OPEN_FLAGS), st.just(0o644),
                          st.one_of(st.none(), _DATA), st.sampled_from([None, 16])),
        "write": st.builds(O.Write, p, _DATA, b),
        "truncate": st.builds(O.Truncate, p, st.integers(0, 4)),
        "unlink": st.builds(O.Unlink, p),
        "rmdir": st.builds(O.Rmdir, p),
        "mkdir": st.builds(O.Mkdir, p, st.sampled_from([0o755, 0o700])),
        "rename": st.builds(O.Rename, p, p, st.sampled_from([0, 0, 0, O.RENAME_NOREPLACE,
                                                              O.RENAME_EXCHANGE, O.RENAME_WHITEOUT])),
        "link": st.builds(O.Link, p, p),
        "symlink": st.builds(O.Symlink, _SYMLINK_TARGETS, p),
        "chmod": st.builds(O.Chmod, p, st.sampled_from([0o600, 0o755, 0o4755, 0o1777])),
        "chown": st.builds(O.Chown, p, st.sampled_from([0, 1000]), st.sampled_from([0, 1000]), b),
        "utime": st.builds(O.Utime, p, st.just((1_000_000_000, 2_000_000_000)), b),
        "setxattr": st.builds(O.SetXattr, p, st.sampled_from(["user.x", "user.y", "trusted.t",
                                                             "trusted.overlay.opaque", "user.overlay.z"]),
                              _DATA, st.sampled_from([0, os.XATTR_CREATE, os.XATTR_REPLACE])),
        "removexattr": st.builds(O.RemoveXattr, p, st.sampled_from(XATTR_NAMES)),
        "getxattr": st.builds(O.GetXattr, p, st.sampled_from(XATTR_NAMES)),
        "listxattr": st.builds(O.ListXattr, p),
        "listdir": st.builds(O.Listdir, st.one_of(st.just("."), p)),
        "stat": st.builds(O.Stat, p, b),
        "readlink": st.builds(O.Readlink, p),
        "mknod": st.builds(O.Mknod, p, st.sampled_from(["fifo", "chr", "chr"]),
                           st.sampled_from([0, 1]), st.sampled_from([0, 3])),
    }  # fmt: skip
    return [s for k, s in table.items() if kinds is None or k in kinds]


OP_KINDS = frozenset(
    ["open", "write", "truncate", "unlink", "rmdir", "mkdir", "rename", "link", "symlink", "chmod", "chown", "utime", "setxattr", "removexattr", "getxattr", "listxattr", "listdir", "stat", "readlink", "mknod"]
)


def op_sequences(min_size: int = 20, max_size: int = 40, kinds: frozenset[str] | None = None,
                 pool: tuple[str, ...] = ()) -> st.SearchStrategy[list[O.Op]]:  # fmt: skip
    """Operation sequences over the name pool (``kinds``: a subset of :data:`OP_KINDS`);
    ``pool``: paths to favour, typically those of the stack (see :func:`stack_paths`)."""
    ops = st.one_of(*_op_strategies(kinds, pool))
    return st.lists(ops, min_size=min_size, max_size=max_size)


def stack_paths(stack: L.LayerStack) -> tuple[str, ...]:
    """Every path present in some layer of ``stack``, sorted."""
    layers = [*stack.lowers, *([stack.upper] if stack.upper else [])]
    return tuple(sorted({p for layer in layers for p, _ in L.walk(layer)}))


@dataclass(frozen=True)
class Case:
    """One differential case: a stack, its mount options and the operations to run."""

    stack: L.LayerStack
    options: str
    ops: tuple[O.Op, ...]
    profile: str = ""


@st.composite
def cases(draw: st.DrawFn, /, profile: str | None = None, *, min_ops: int = 20, max_ops: int = 40,
          kinds: frozenset[str] | None = None, **layer_kw: Any) -> Case:  # fmt: skip
    """A case for one of :data:`PROFILES` (drawn when ``profile`` is None). The layers of the
    metacopy profile also hold metacopy files, as another metacopy=on mount leaves them."""
    name = profile if profile is not None else draw(st.sampled_from(sorted(PROFILES)))
    options, has_upper = PROFILES[name]
    if "metacopy=on" in options.split(","):
        layer_kw = {"metacopy": True, **layer_kw}
    stack = draw(layer_stacks(upper=has_upper, **layer_kw))
    ops = draw(op_sequences(min_ops, max_ops, kinds, stack_paths(stack)))
    return Case(stack, options, tuple(ops), name)


