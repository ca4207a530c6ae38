"""Parse and validate one layer completely before anything is written.

The result is a :class:`LayerPlan`: normalised entries (files with their data, whiteouts,
opaque markers...), findings, the digests of the blob and of the uncompressed tar, and the
tar-split record to re-assemble it. Strict mode turns every hostile or ambiguous construct
(escapes, bad whiteouts, same-layer conflicts, dangling hard links, overlay xattrs...) into a
typed error; lenient mode drops or neutralises it and records a finding. Because validation is
complete first, a rejected layer writes nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import DanglingHardlink, DuplicateEntry, LimitExceeded
from overlaysim.image import tar_reader as tr
from overlaysim.image.compress import HashingReader, Readable, open_stream
from overlaysim.image.entry import NON_DIR, Ctx, Entry, classify_general, classify_plain
from overlaysim.image.findings import Findings
from overlaysim.image.limits import Limits
from overlaysim.image.tarsplit import FileRef, TarSplit


@dataclass
class LayerPlan:
    """A fully parsed, validated layer, ready to be applied any number of times."""

    index: int
    entries: list[Entry]
    findings: Findings
    diff_id: str
    blob_digest: str
    blob_size: int
    compression: str
    uncompressed_size: int
    tarsplit: TarSplit | None
    stats: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "diffID": self.diff_id,
            "blobDigest": self.blob_digest,
            "blobSize": self.blob_size,
            "compression": self.compression,
            "uncompressedSize": self.uncompressed_size,
            "stats": self.stats,
        }


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a layer is parsed or applied.

    Both build a million long-lived objects for a big layer and no garbage cycles; CPython
    runs a full collection each time the heap grows by a quarter, rescanning it a dozen
    times (a sixth of a 1,000,000-entry import). Collection resumes afterwards (if it was
    on), so any cycle made meanwhile is collected then.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse_layer(
    raw: Readable,
    limits: Limits,
    *,
    index: int = 0,
    strict: bool = True,
    capture: bool = True,
    what: str | None = None,
) -> LayerPlan:
    """Read a (possibly compressed) layer blob to its end and validate it."""
    with paused_gc():
        return _parse_layer(raw, limits, index, strict, capture, what)


def _parse_layer(
    raw: Readable, limits: Limits, index: int, strict: bool, capture: bool, what: str | None
) -> LayerPlan:
    what = what or f"layer {index}"
    ctx = Ctx(limits, strict, index, what)
    hr, dec = open_stream(raw, limits, limits.max_layer_bytes, what, limits.max_layer_bytes)
    # an uncompressed blob is its own tar stream: read and hash it once (diff_id == digest)
    uh: HashingReader | None = None if dec.kind == "none" else HashingReader(dec, None, what)
    rd = tr.TarReader(uh or hr, limits, capture_raw=capture, what=what)
    ts = TarSplit() if capture else None
    entries: list[Entry] = []
    plnk: dict[str, Entry] = {}
    # raw bytes gathered between file references (joined once, not appended to a bytes
    # object entry by entry: a long run of directories would make that quadratic); the
    # reader appends the headers and padding it captures to this very list
    pending = rd.raw
    next_header, read_data, plain = rd.next, rd.read_data, classify_plain
    while (h := next_header()) is not None:
        data = read_data() if (h.physical_size or h.sparse is not None) else b""
        e = plain(ctx, h, data) or classify_general(ctx, h, data, plnk)
        if ts is not None and data and h.sparse is None:
            if e is not None and e.kind == "file":
                e.ref = FileRef(h.name, len(data))
                ts.raws(pending)
                pending.clear()
                ts.file(e.ref)
            else:
                pending.append(data)
        if e is not None:
            entries.append(e)
    rd.finish()
    if ts is not None:
        ts.raws(pending)
        pending.clear()
    if uh is not None:
        uh.drain()
    hr.drain()
    if rd.end == "eof" and rd.entries:
        ctx.note(
            "no-end-marker", "the tar has no end-of-archive blocks (Go accepts this)", level="info"
        )
    elif rd.end == "eof-after-one-marker":
        ctx.note(
            "one-end-marker", "the tar ends after one zero block (Go accepts this)", level="info"
        )
    if rd.trailing_nonzero:
        ctx.note(
            "trailing-garbage", f"{rd.trailing} bytes after the end of the archive are not zero"
        )
    entries = _check_layer(ctx, entries)
    if ts is not None:
        _inline_superseded(ts, entries)
    stats = {
        k: 0
        for k in (
            "entries",
            "files",
            "dirs",
            "symlinks",
            "hardlinks",
            "devices",
            "whiteouts",
            "opaques",
            "bytes",
        )
    }
    kinds: dict[str, int] = {}
    for e in entries:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
        stats["bytes"] += len(e.data)
    stats["entries"] = len(entries)
    for kind, n in kinds.items():
        stats[_STAT_KEY.get(kind, "devices")] += n
    return LayerPlan(
        index=index,
        entries=entries,
        findings=ctx.f,
        diff_id="sha256:" + (uh or hr).hexdigest(),
        blob_digest="sha256:" + hr.hexdigest(),
        blob_size=hr.count,
        compression=dec.kind,
        uncompressed_size=hr.count if uh is None else dec.out_count,
        tarsplit=ts,
        stats=stats,
    )


_STAT_KEY = {
    "file": "files",
    "dir": "dirs",
    "root": "dirs",
    "symlink": "symlinks",
    "hardlink": "hardlinks",
    "whiteout": "whiteouts",
    "opaque": "opaques",
}


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


_BLOCKERS = NON_DIR - {"symlink"}  # a symlink parent is followed (chroot), not a conflict


def _check_layer(ctx: Ctx, entries: list[Entry]) -> list[Entry]:
    """Same-layer conflicts, duplicates and hard links, with the layer seen as a whole."""
    state: dict[str, Entry] = {}
    whiteouts: dict[str, Entry] = {}
    inode: dict[str, str] = {}
    nlinks: dict[str, int] = {}
    kept: list[Entry] = []
    # directories known to have no non-directory ancestor in this layer (the common case)
    okdirs: set[str] = set()
    for e in entries:
        p = e.path
        kind = e.kind
        conflict = ""
        if kind == "whiteout":
            if p in state:
                conflict = f"{p!r} is both an entry and a whiteout in one layer"
            elif p in whiteouts:
                ctx.note("duplicate-whiteout", "the same whiteout twice", p, "info")
        elif kind == "opaque":
            if p in state and state[p].kind not in ("dir", "root"):
                conflict = f"opaque marker inside non-directory {p!r}"
            elif (p == "" and state) or p in okdirs:
                ctx.note(
                    "opaque-after-children",
                    "opaque marker after entries of its directory",
                    p,
                    "info",
                )
        elif whiteouts:
            if p in whiteouts:
                conflict = f"{p!r} is both a whiteout and an entry in one layer"
            elif any(a in whiteouts for a in _ancestors(p)):
                conflict = f"{p!r} lies below a path whited out in the same layer"
        if not conflict and kind != "opaque":
            parent = p.rpartition("/")[0]
            if parent and parent not in okdirs:
                ancestors = _ancestors(p)
                bad = next(
                    (a for a in ancestors if a in state and state[a].kind in _BLOCKERS), None
                )
                if bad is not None:
                    conflict = f"{p!r} lies below non-directory {bad!r} of the same layer"
                else:
                    okdirs.update(ancestors)
        if not conflict and kind not in ("whiteout", "opaque") and p in state:
            prev = state[p]
            if prev.kind in ("dir", "root") and kind in ("dir", "root"):
                # appliers merge (the later attributes win); Docker's layer store (tar-split)
                # refuses any repeated name: ambiguous only when the two disagree
                if (prev.mode, prev.uid, prev.gid, prev.xattrs) != (e.mode, e.uid, e.gid, e.xattrs):
                    conflict = f"directory {p!r} listed twice with different attributes"
                else:
                    ctx.note(
                        "duplicate-dir",
                        "directory listed twice (docker load refuses a repeated name)",
                        p,
                    )
            else:
                conflict = f"{p!r} appears twice in one layer"
        if conflict:
            ctx.reject(DuplicateEntry(f"{ctx.what}: {conflict}"), "same-layer-conflict", p)
        if kind == "hardlink" and not _hardlink_ok(ctx, e, state, inode, nlinks):
            continue
        if kind == "whiteout":
            whiteouts[p] = e
        elif kind != "opaque":
            state[p] = e
            if kind in _BLOCKERS and p in okdirs:
                okdirs.difference_update([d for d in okdirs if d == p or d.startswith(p + "/")])
            if kind != "hardlink":
                inode[p] = p
        kept.append(e)
    return kept


def _hardlink_ok(
    ctx: Ctx,
    e: Entry,
    state: dict[str, Entry],
    inode: dict[str, str],
    nlinks: dict[str, int],
) -> bool:
    t = state.get(e.link)
    if t is None:
        ctx.reject(
            DanglingHardlink(
                f"{ctx.what}: hard link {e.path!r} -> {e.link!r}: no such earlier entry in this layer"
            ),
            "dangling-hardlink",
            e.path,
        )
        return not ctx.strict
    if t.kind in ("dir", "root"):
        ctx.reject(
            DanglingHardlink(f"{ctx.what}: hard link {e.path!r} -> directory {e.link!r}"),
            "hardlink-to-dir",
            e.path,
        )
        return False
    if t.kind == "symlink":
        ctx.note(
            "hardlink-to-symlink",
            f"hard link to symlink {e.link!r} (links the symlink itself)",
            e.path,
            "info",
        )
    ino = inode.get(e.link, e.link)
    inode[e.path] = ino
    nlinks[ino] = nlinks.get(ino, 1) + 1
    if nlinks[ino] > ctx.lim.max_links_per_inode:
        raise LimitExceeded(
            f"{ctx.what}: more than {ctx.lim.max_links_per_inode} hard links to {ino!r}"
        )
    return True


def _inline_superseded(ts: TarSplit, entries: list[Entry]) -> None:
    """File data a later entry of the same layer overwrites cannot be read back: keep it raw."""
    reffed = {e.path for e in entries if e.ref is not None}
    if not reffed:
        return  # no file data to read back (a layer of empty files)
    last: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.path in reffed:
            last[e.path] = i
    stale = {
        id(e.ref): e.data for i, e in enumerate(entries) if e.ref is not None and last[e.path] != i
    }
    if not stale:
        return
    old, ts.segments = ts.segments, []
    for seg in old:
        if isinstance(seg, FileRef) and id(seg) in stale:
            ts.raw(stale[id(seg)])
        elif isinstance(seg, bytes):
            ts.raw(seg)
        else:
            ts.file(seg)
