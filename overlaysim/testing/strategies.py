"""Hypothesis strategies for layer stacks, operation sequences and mount option profiles.

Names come from a small pool (six names, depth <= 3) so that layers and operations collide
often: the same name as a file in one layer and a directory in another, whited out in a
third, renamed onto by an operation. Every file type the kernel distinguishes appears.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from overlaysim.testing import layers as L
from overlaysim.testing import ops as O

NAMES = ("a", "b", "c", "d", "e", "f")
FRESH_NAMES = ("g", "h")  # never in a generated layer: targets that do not exist yet
XATTR_NAMES = ("user.x", "user.y", "trusted.t")
# Option profiles of the CI matrix: name -> (extra options, with an upper layer)
PROFILES: dict[str, tuple[str, bool]] = {
    "default": ("", True),
    "redirect_dir=on": ("redirect_dir=on", True),
    "userxattr": ("userxattr", True),
    "ro multi-lower": ("", False),
    "volatile": ("volatile", True),
    "metacopy=on": ("metacopy=on", True),
    "data-only": ("metacopy=on", True),
    "data-only metacopy=off": ("", True),
    "index=on": ("index=on", True),
    "nfs_export=on": ("nfs_export=on", True),
    "xino=on multi-fs": ("xino=on", True),
}
# Profiles whose lower layers each live on a tmpfs of their own (LayerStack.separate_fs)
MULTI_FS_PROFILES = frozenset({"xino=on multi-fs"})
# Profiles whose stacks have data-only layers below the lowers (``lowerdir=...::d0``), and
# metacopy files in the lowers (with metacopy=off only the lowest layer's may lead there)
DATA_ONLY_PROFILES = frozenset({"data-only", "data-only metacopy=off"})
# Where the absolute redirects of metacopy_files() point, so data layers hold files there
_REDIRECT_TARGETS = ("a", "b/c", "c/d/e")

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


@functools.cache  # the same strategy object each time: built and validated once
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


@functools.cache  # likewise (drawing a stack was 3x slower without)
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


def _place(d: L.Dir, parts: list[str], node: L.Node) -> L.Dir:
    """``d`` with ``node`` at ``parts``, directories made (or put in place of a non-dir)."""
    if len(parts) == 1:
        return replace(d, entries={**d.entries, parts[0]: node})
    sub = d.entries.get(parts[0])
    sub = sub if isinstance(sub, L.Dir) else L.Dir()
    return replace(d, entries={**d.entries, parts[0]: _place(sub, parts[1:], node)})


@st.composite
def data_layers(draw: st.DrawFn, /, min_size: int = 1, max_size: int = 2,
                **layer_kw: Any) -> tuple[L.Dir, ...]:  # fmt: skip
    """Data-only layers: any tree (their metacopy, opaque and whiteout marks mean nothing
    there), and most of the time a regular file at each place the absolute redirects of
    :func:`metacopy_files` point to, in one of the layers, so the lazy lookup often succeeds
    (and fails otherwise: missing, a dir, a symlink, a file on the way)."""
    out = list(draw(st.lists(layers(**{**layer_kw, "hardlinks": False}), min_size=min_size,
                             max_size=max_size)))  # fmt: skip
    for target in _REDIRECT_TARGETS:
        if draw(st.integers(0, 3)):
            i = draw(st.integers(0, len(out) - 1))
            out[i] = _place(out[i], target.split("/"), draw(files()))
    return tuple(out)


@st.composite
def layer_stacks(draw: st.DrawFn, /, min_lowers: int = 2, max_lowers: int = 4,
                 upper: bool | None = True, data_only: bool = False,
                 **layer_kw: Any) -> L.LayerStack:  # fmt: skip
    """2-4 lower layers and an upper layer (``upper=None``: drawn; False: read-only); with
    ``data_only``, 1-2 data-only layers below them."""
    lowers = draw(st.lists(layers(**layer_kw), min_size=min_lowers, max_size=max_lowers))
    has_upper = draw(st.booleans()) if upper is None else upper
    # Metacopy files only in lower layers: an upper one without data below fails its lookup,
    # and whether listing its impure parent then fails depends on the upper fs's entry order
    # (ext4 here, tmpfs order in the simulator). A remount puts real ones in the upper.
    up = draw(layers(**{**layer_kw, "metacopy": False})) if has_upper else None
    data = draw(data_layers(**layer_kw)) if data_only else ()
    return L.LayerStack(lowers=tuple(lowers), upper=up, data=data)


_OPEN_FLAGS = [os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_CREAT,
               os.O_RDWR | os.O_CREAT | os.O_EXCL, os.O_WRONLY | os.O_TRUNC,
               os.O_RDONLY | os.O_DIRECTORY, os.O_WRONLY | os.O_APPEND, os.O_RDONLY | os.O_CREAT]  # fmt: skip
_DATA = st.sampled_from([b"", b"x", b"more data"])


def _op_strategies(kinds: frozenset[str] | None, pool: tuple[str, ...],
                   dir_pool: tuple[str, ...] = ()) -> list[st.SearchStrategy[O.Op]]:  # fmt: skip
    p, b = paths(), st.booleans()
    if pool:  # two thirds of the paths name something that exists in some layer
        p = st.one_of(st.sampled_from(pool), st.sampled_from(pool), p)
    # A name no layer has (under a path that may exist): without it nearly every rename
    # target exists, so a lower directory was never renamed and redirects went untested.
    fresh = st.builds(lambda d, n: f"{d}/{n}" if d else n, st.sampled_from(("", *pool)),
                      st.sampled_from(FRESH_NAMES))  # fmt: skip
    dst = st.one_of(p, fresh)
    p = st.one_of(p, p, p, fresh)
    table: dict[str, st.SearchStrategy[Any]] = {
        "open": st.builds(O.Open, p, st.sampled_from(_OPEN_FLAGS), st.just(0o644),
                          st.one_of(st.none(), _DATA), st.sampled_from([None, 16])),
        "write": st.builds(O.Write, p, _DATA, b),
        "truncate": st.builds(O.Truncate, p, st.integers(0, 4)),
        "unlink": st.builds(O.Unlink, p),
        "rmdir": st.builds(O.Rmdir, p),
        "mkdir": st.builds(O.Mkdir, p, st.sampled_from([0o755, 0o700])),
        "rename": st.builds(O.Rename, p, dst, st.sampled_from([0, 0, 0, O.RENAME_NOREPLACE,
                                                              O.RENAME_EXCHANGE, O.RENAME_WHITEOUT])),
        "link": st.builds(O.Link, p, dst),
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
    if dir_pool:  # a directory of some layer moved to a new name: redirects, EXDEV, origins
        table["rename"] = st.one_of(table["rename"], st.builds(
            O.Rename, st.sampled_from(dir_pool), fresh, st.sampled_from([0, O.RENAME_NOREPLACE])))
    return [s for k, s in table.items() if kinds is None or k in kinds]


OP_KINDS = frozenset(
    ["open", "write", "truncate", "unlink", "rmdir", "mkdir", "rename", "link", "symlink", "chmod", "chown", "utime", "setxattr", "removexattr", "getxattr", "listxattr", "listdir", "stat", "readlink", "mknod"]
)


# Cached: a shrinker redraws the same stack (so the same pool) hundreds of times, and building
# and validating the op strategies anew each time was 2/3 of a fuzz campaign's shrinking time.
@functools.lru_cache(maxsize=256)
def op_sequences(min_size: int = 20, max_size: int = 40, kinds: frozenset[str] | None = None,
                 pool: tuple[str, ...] = (),
                 dir_pool: tuple[str, ...] = ()) -> st.SearchStrategy[list[O.Op]]:  # fmt: skip
    """Operation sequences over the name pool (``kinds``: a subset of :data:`OP_KINDS`);
    ``pool``: paths to favour, typically those of the stack (see :func:`stack_paths`);
    ``dir_pool``: directories of the stack, some of them renamed to fresh names."""
    ops = st.one_of(*_op_strategies(kinds, pool, dir_pool))
    return st.lists(ops, min_size=min_size, max_size=max_size)


def stack_paths(stack: L.LayerStack, *, dirs_only: bool = False) -> tuple[str, ...]:
    """Every path present in some layer of ``stack`` (only directories: ``dirs_only``),
    sorted."""
    layers = [*stack.lowers, *([stack.upper] if stack.upper else [])]
    return tuple(sorted({p for layer in layers for p, n in L.walk(layer)
                         if not dirs_only or isinstance(n, L.Dir)}))  # fmt: skip


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
    metacopy profiles also hold metacopy files, as another metacopy=on mount leaves them; the
    data-only profile adds data-only layers, where their absolute redirects lead."""
    name = profile if profile is not None else draw(st.sampled_from(sorted(PROFILES)))
    options, has_upper = PROFILES[name]
    if "metacopy=on" in options.split(",") or name in DATA_ONLY_PROFILES:
        layer_kw = {"metacopy": True, **layer_kw}
    stack = draw(layer_stacks(upper=has_upper, data_only=name in DATA_ONLY_PROFILES, **layer_kw))
    if name in MULTI_FS_PROFILES:
        stack = replace(stack, separate_fs=True)
    ops = draw(op_sequences(min_ops, max_ops, kinds, stack_paths(stack),
                            stack_paths(stack, dirs_only=True)))  # fmt: skip
    return Case(stack, options, tuple(ops), name)


