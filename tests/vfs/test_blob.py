"""File data shared copy-on-write with a shared prefix (memfs ``Blob``).

A writer of a shared blob copies only from the first byte it changes; these tests hold that
every holder still sees exactly its own bytes, sizes, blocks and holes, whatever the order
of sharing, appends, overwrites and truncations (against a model that copies everything).
``SHARE_MIN`` is lowered so that small files exercise the shared-prefix paths.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat as st
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from overlaysim import HostFS
from overlaysim.vfs import memfs
from overlaysim.vfs.memfs import PAGE, Blob, MemInode
from overlaysim.vfs.superblock import SuperBlock

MIN = 2 * PAGE


@pytest.fixture(autouse=True)
def small_share_min(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(memfs, "SHARE_MIN", MIN)
    yield


def _sb() -> SuperBlock:
    ticks = itertools.count(1)
    return SuperBlock("tmpfs", lambda: next(ticks))


def _file(sb: SuperBlock, data: bytes = b"") -> MemInode:
    node = MemInode(sb, st.S_IFREG | 0o644, 0, 0)
    if data:
        node.write(0, data)
    return node


def _share(src: MemInode, sb: SuperBlock) -> MemInode:
    """What overlay copy-up does: a new inode holding the same blob."""
    dst = _file(sb)
    dst.blob = src.share_blob()
    dst.stc = None
    return dst


def _content(node: MemInode) -> bytes:
    return node.read(0, node.size() + 10)


def test_append_to_shared_file_copies_nothing_and_leaves_the_other_alone() -> None:
    sb = _sb()
    lower = _file(sb, os.urandom(5 * PAGE))
    before = _content(lower)
    upper = _share(lower, sb)
    upper.write(upper.size(), b"tail")
    assert upper.blob.base is lower.blob and upper.blob.blen == 5 * PAGE
    assert bytes(upper.blob.data) == b"tail"
    assert _content(upper) == before + b"tail" and _content(lower) == before
    assert upper.size() == 5 * PAGE + 4 and lower.size() == 5 * PAGE
    assert upper.blocks() == 6 * (PAGE // 512) and lower.blocks() == 5 * (PAGE // 512)
    # reads within, across and after the shared prefix
    assert upper.read(PAGE, 10) == before[PAGE : PAGE + 10]
    assert upper.read(5 * PAGE - 2, 5) == before[-2:] + b"tai"
    assert upper.read(5 * PAGE + 1, 100) == b"ail"
    assert upper.read(10 * PAGE, 4) == b""


def test_base_holder_writing_copies_and_the_prefix_stays() -> None:
    sb = _sb()
    lower = _file(sb, b"L" * (4 * PAGE))
    upper = _share(lower, sb)
    upper.write(upper.size(), b"U")
    lower.write(0, b"changed")
    lower.truncate(10)
    assert _content(lower) == b"changedLLL"
    assert _content(upper) == b"L" * (4 * PAGE) + b"U"


def test_overwrite_in_the_prefix_owns_from_there_on() -> None:
    sb = _sb()
    data = bytes(range(256)) * (6 * PAGE // 256)
    lower = _file(sb, data)
    upper = _share(lower, sb)
    upper.write(len(data), b"!")
    upper.write(3 * PAGE, b"mid")  # still MIN bytes or more before it: stays shared
    assert upper.blob.base is lower.blob and upper.blob.blen == 3 * PAGE
    upper.write(10, b"head")  # below MIN: the whole file becomes its own
    assert upper.blob.base is None
    want = bytearray(data + b"!")
    want[3 * PAGE : 3 * PAGE + 3] = b"mid"
    want[10:14] = b"head"
    assert _content(upper) == bytes(want) and _content(lower) == data


def test_truncate_of_a_shared_file() -> None:
    sb = _sb()
    data = os.urandom(6 * PAGE)
    lower = _file(sb, data)
    short = _share(lower, sb)
    short.truncate(3 * PAGE + 5)  # copy nothing: a shorter prefix of the same bytes
    assert short.blob.base is lower.blob and short.size() == 3 * PAGE + 5
    assert _content(short) == data[: 3 * PAGE + 5]
    longer = _share(lower, sb)
    longer.truncate(9 * PAGE)
    assert _content(longer) == data + bytes(3 * PAGE)
    assert longer.blocks() == 6 * (PAGE // 512)  # the new pages are a hole
    assert longer.seek_data(6 * PAGE, hole=True) == 6 * PAGE
    with pytest.raises(OSError) as e:
        longer.seek_data(6 * PAGE, hole=False)
    assert e.value.errno == errno.ENXIO
    longer.write(7 * PAGE, b"x")
    assert longer.seek_data(6 * PAGE, hole=False) == 7 * PAGE
    assert longer.seek_data(7 * PAGE, hole=True) == 8 * PAGE
    empty = _share(lower, sb)
    empty.truncate(0)
    assert empty.size() == 0 and empty.blob.base is None and _content(lower) == data


def test_sharing_a_blob_with_a_prefix_keeps_one_level() -> None:
    sb = _sb()
    lower = _file(sb, b"a" * (3 * PAGE))
    mid = _share(lower, sb)
    mid.write(mid.size(), b"b")
    top = _share(mid, sb)
    top.write(top.size(), b"c")
    assert top.blob.base is lower.blob and mid.blob.base is lower.blob
    assert _content(top) == b"a" * (3 * PAGE) + b"bc"
    assert _content(mid) == b"a" * (3 * PAGE) + b"b"
    mid.write(0, b"z")  # below MIN: mid joins its bytes and lets go of lower's
    assert mid.blob.base is None and _content(top) == b"a" * (3 * PAGE) + b"bc"
    assert _content(mid) == b"z" + b"a" * (3 * PAGE - 1) + b"b"


def test_buf_joins_the_bytes_for_good() -> None:
    sb = _sb()
    lower = _file(sb, b"x" * (2 * PAGE))
    upper = _share(lower, sb)
    upper.write(2 * PAGE, b"y")
    refs = lower.blob.refs
    assert bytes(upper.blob.buf) == b"x" * (2 * PAGE) + b"y"
    assert upper.blob.base is None and lower.blob.refs == refs - 1


def test_overlay_append_after_copy_up_through_hostfs() -> None:
    """Copy-up shares the lower's bytes; an O_APPEND write then adds to the upper only."""
    fs = HostFS()
    o = fs.os
    for d in ("/l", "/u", "/w", "/m"):
        o.mkdir(d)
    data = os.urandom(5 * PAGE + 7)
    with fs.open("/l/f", "wb") as f:
        f.write(data)
    fs.mount("overlay", "/m", "overlay", "lowerdir=/l,upperdir=/u,workdir=/w")
    fd = o.open("/m/f", os.O_WRONLY | os.O_APPEND)
    assert o.write(fd, b"more") == 4
    o.close(fd)
    with fs.open("/m/f", "rb") as f:
        assert f.read() == data + b"more"
    with fs.open("/l/f", "rb") as f:
        assert f.read() == data
    assert o.stat("/u/f").st_size == len(data) + 4 and o.stat("/l/f").st_size == len(data)


# --- against a model where every write to a shared file copies all of it -----------------
_OPS = hs.lists(
    hs.one_of(
        hs.tuples(hs.just("share"), hs.integers(0, 7)),
        hs.tuples(hs.just("write"), hs.integers(0, 7), hs.integers(0, 12 * PAGE),
                  hs.integers(0, 3 * PAGE)),
        hs.tuples(hs.just("append"), hs.integers(0, 7), hs.integers(1, 2 * PAGE)),
        hs.tuples(hs.just("near_end"), hs.integers(0, 7), hs.integers(1, 3 * PAGE),
                  hs.integers(1, PAGE)),
        hs.tuples(hs.just("truncate"), hs.integers(0, 7), hs.integers(0, 12 * PAGE)),
    ),
    max_size=25,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_random_sharing_matches_a_copy_everything_model(ops: list[tuple[int | str, ...]]) -> None:
    sb = _sb()
    nodes = [_file(sb, bytes(range(251)) * 100)]
    model = [bytearray(_content(nodes[0]))]
    holes = [False]  # the model's file has been extended past its end (tmpfs: a hole)
    fill = itertools.count(1)
    for op in ops:
        i = int(op[1]) % len(nodes)
        node = nodes[i]
        if op[0] == "share":
            nodes.append(_share(node, sb))
            model.append(bytearray(model[i]))
            holes.append(holes[i])
        elif op[0] in ("write", "near_end"):
            pos, n = int(op[2]), int(op[3])
            if op[0] == "near_end":  # overwrite the last bytes (of an own tail, often)
                pos = max(len(model[i]) - pos, 0)
            chunk = bytes([next(fill) % 256]) * n
            node.write(pos, chunk)
            if pos > len(model[i]):
                holes[i] = True
                model[i].extend(bytes(pos - len(model[i])))
            model[i][pos : pos + n] = chunk
        elif op[0] == "append":
            chunk = bytes([next(fill) % 256]) * int(op[2])
            node.write(node.size(), chunk)
            model[i] += chunk
        else:
            length = int(op[2])
            if length > len(model[i]):
                holes[i] = True
                model[i].extend(bytes(length - len(model[i])))
            else:
                del model[i][length:]
            node.truncate(length)
        for n, m, h in zip(nodes, model, holes, strict=True):
            assert n.size() == len(m) and _content(n) == bytes(m)
            if not h:
                assert n.blocks() == -(-len(m) // PAGE) * (PAGE // 512)
    for n in nodes:  # every blob stays one level deep and its base plain
        b: Blob = n.blob
        assert b.base is None or (b.base.base is None and b.blen >= MIN)
