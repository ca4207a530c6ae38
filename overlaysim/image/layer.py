"""Parse and validate one layer completely before anything is written.

The result is a :class:`LayerPlan`: normalised entries (files with their data, whiteouts,
opaque markers...), findings, the digests of the blob and of the uncompressed tar, and the
tar-split record to re-assemble it. Strict mode turns every hostile or ambiguous construct
(escapes, bad whiteouts, same-layer conflicts, dangling hard links, overlay xattrs...) into a
typed error; lenient mode drops or neutralises it and records a finding. Because validation is
complete first, a rejected layer writes nothing.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import (
    BadName,
    BadWhiteout,
    DanglingHardlink,
    DuplicateEntry,
    ImageError,
    LimitExceeded,
    NameTooLong,
    PathEscape,
    UnsupportedMediaType,
)
from overlaysim.image import names as nm
from overlaysim.image import tar_reader as tr
from overlaysim.image.compress import HashingReader, Readable, open_stream
from overlaysim.image.errors import BadHeader
from overlaysim.image.findings import Findings
from overlaysim.image.limits import Limits
from overlaysim.image.tarsplit import FileRef, TarSplit

_KINDS = {
    tr.REG: "file",
    tr.LINK: "hardlink",
    tr.SYMLINK: "symlink",
    tr.CHAR: "char",
    tr.BLOCKDEV: "block",
    tr.DIR: "dir",
    tr.FIFO: "fifo",
}
NON_DIR = frozenset({"file", "hardlink", "symlink", "char", "block", "fifo"})
MAX_ID = (1 << 32) - 2  # uid/gid -1 means "unchanged" to lchown(2)
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
XATTR_NAMESPACES = ("user.", "trusted.", "security.", "system.")


@dataclass
class Entry:
    """One normalised layer entry. ``path`` is relative to the layer root ('' is the root)."""

    kind: str  # file dir symlink hardlink char block fifo whiteout opaque root
    path: str
    name: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    data: bytes = b""
    link: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    index: int = 0
    ref: FileRef | None = None


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


@dataclass
class _Common:
    """Fields every entry built from one tar header shares."""

    name: str
    index: int
    uid: int
    gid: int

    def entry(self, kind: str, path: str, **kw: Any) -> Entry:
        return Entry(
            kind=kind, path=path, name=self.name, index=self.index, uid=self.uid, gid=self.gid, **kw
        )


class _Ctx:
    def __init__(self, limits: Limits, strict: bool, index: int, what: str) -> None:
        self.lim = limits
        self.strict = strict
        self.index = index
        self.what = what
        self.f = Findings()

    def reject(self, exc: ImageError, code: str, path: str) -> None:
        """Strict: raise. Lenient: record the neutralisation and continue."""
        if self.strict:
            raise exc
        self.f.add(code, str(exc), path, self.index, "neutralised")

    def note(self, code: str, msg: str, path: str = "", level: Any = "warning") -> None:
        self.f.add(code, msg, path, self.index, level)


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
    what = what or f"layer {index}"
    ctx = _Ctx(limits, strict, index, what)
    hr, dec = open_stream(raw, limits, limits.max_layer_bytes, what, limits.max_layer_bytes)
    # an uncompressed blob is its own tar stream: read and hash it once (diff_id == digest)
    uh: HashingReader | None = None if dec.kind == "none" else HashingReader(dec, None, what)
    rd = tr.TarReader(uh or hr, limits, capture_raw=capture, what=what)
    ts = TarSplit() if capture else None
    entries: list[Entry] = []
    plnk: dict[str, Entry] = {}
    for h in rd:
        if ts is not None:
            ts.raw(rd.take_raw())
        data = rd.read_data() if (h.physical_size or h.sparse is not None) else b""
        e = _classify(ctx, h, data, plnk)
        if ts is not None and data and h.sparse is None:
            if e is not None and e.kind == "file":
                e.ref = FileRef(h.name, len(data))
                ts.file(e.ref)
            else:
                ts.raw(data)
        if e is not None:
            entries.append(e)
    rd.finish()
    if ts is not None:
        ts.raw(rd.take_raw())
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
    for e in entries:
        stats["entries"] += 1
        key = {
            "file": "files",
            "dir": "dirs",
            "root": "dirs",
            "symlink": "symlinks",
            "hardlink": "hardlinks",
            "whiteout": "whiteouts",
            "opaque": "opaques",
        }.get(e.kind, "devices")
        stats[key] += 1
        stats["bytes"] += len(e.data)
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


def _classify(ctx: _Ctx, h: tr.TarHeader, data: bytes, plnk: dict[str, Entry]) -> Entry | None:
    if h.typeflag == tr.XGLOBAL:
        ctx.note(
            "pax-global-header",
            "PAX global header: Go ignores it, GNU tar and Python apply it",
            h.name,
        )
        return None
    name = h.name
    if "path" in h.pax and h.header_name != name:
        level = "info" if name.startswith(h.header_name.rstrip("/")) else "warning"
        ctx.note(
            "pax-name-mismatch",
            f"the ustar name is {h.header_name!r}; PAX-unaware tools see that",
            name,
            level,
        )
    if h.nul_in_name:
        ctx.note("nul-in-name", "a GNU long name holds a NUL; Go keeps only what precedes it", name)
    if h.gnu_long_name and "path" in h.pax:
        ctx.note(
            "gnu-and-pax-name", "both a GNU long name and a PAX path: Go uses the GNU one", name
        )
    if h.sparse is not None:
        ctx.note(
            "sparse",
            f"sparse file ({len(h.sparse.entries)} fragments) expanded to {h.size} bytes",
            name,
            "info",
        )
    cleaned = nm.go_clean(name)
    if name.startswith("/") and cleaned != "/":
        ctx.note("absolute-name", "leading '/' stripped", name, "info")
    if "\\" in name:
        ctx.note(
            "backslash-name", "backslash in a name (an ordinary character on Linux)", name, "info"
        )
    if nm.escapes(cleaned):
        ctx.reject(
            PathEscape(f"{ctx.what}: member {name!r} leaves the layer root"), "name-escape", name
        )
        rel = nm.clamp(name)
    else:
        rel = nm.relative(cleaned)
        if ".." in name and ".." in name.split("/"):
            ctx.note("dotdot-name", f"'..' inside a name, read as {rel!r}", name, "info")
    nm.check_lengths(rel, ctx.lim, ctx.what, name)
    parent, base = nm.split(rel)
    common = _Common(name, h.index, h.uid, h.gid)
    if base.startswith(nm.WH_PREFIX):
        return _whiteout(ctx, h, rel, parent, base, data, plnk, common)
    kind = _KINDS.get(h.typeflag)
    if kind is None:
        if h.typeflag == tr.CONT:
            ctx.reject(
                UnsupportedMediaType(
                    f"{ctx.what}: contiguous-file entry {name!r} (Docker refuses type '7')"
                ),
                "type-7",
                name,
            )
            kind = "file"
        else:
            ctx.reject(
                UnsupportedMediaType(
                    f"{ctx.what}: unsupported tar entry type {h.typeflag!r} for {name!r}"
                ),
                "odd-type",
                name,
            )
            return None
    if rel == "":
        if kind != "dir":
            ctx.reject(
                BadName(f"{ctx.what}: the root entry {name!r} is not a directory"),
                "root-not-dir",
                name,
            )
            return None
        if name not in ("./", "."):
            ctx.note("root-entry", f"root directory entry named {name!r}", name, "info")
        kind = "root"
    e = common.entry(kind, rel, mode=h.mode & 0o7777)
    if not _owner_ok(ctx, e, name):
        return None
    if e.mode & (stat.S_ISUID | stat.S_ISGID) and kind not in ("dir", "root"):
        ctx.note(
            "setid",
            f"set{'u' if e.mode & stat.S_ISUID else 'g'}id bit (mode {e.mode:04o})",
            rel,
            "info",
        )
    e.mtime_ns = h.mtime_ns if h.mtime_ns >= 0 else 0
    if h.mtime_ns < 0:
        ctx.note(
            "negative-mtime",
            "mtime before 1970 clamped to the epoch (Docker's boundTime)",
            rel,
            "info",
        )
    e.atime_ns = max(e.mtime_ns, h.atime_ns or 0)
    e.xattrs = _xattrs(ctx, h, rel)
    if kind == "file":
        e.data = data
    elif kind == "symlink":
        if not _symlink(ctx, e, h, parent):
            return None
    elif kind == "hardlink":
        t = nm.go_clean(h.linkname)
        if nm.escapes(t):
            ctx.reject(
                PathEscape(f"{ctx.what}: hard link {name!r} -> {h.linkname!r} leaves the layer"),
                "link-escape",
                rel,
            )
            e.link = nm.clamp(h.linkname)
        else:
            e.link = nm.relative(t)
        if e.link.startswith(".wh..wh.plnk/") and nm.split(e.link)[1] in plnk:
            src = plnk[nm.split(e.link)[1]]
            ctx.note("aufs-hardlink", "hard link into .wh..wh.plnk turned into a copy", rel, "info")
            e.kind, e.data, e.link = "file", src.data, ""
    elif kind in ("char", "block"):
        e.devmajor, e.devminor = h.devmajor, h.devminor
        if kind == "char" and h.devmajor == 0 and h.devminor == 0:
            ctx.note(
                "char-0-0", "char device 0/0: a device in OCI, a whiteout on an overlay disk", rel
            )
        else:
            ctx.note("device-node", f"{kind} device {h.devmajor}:{h.devminor}", rel, "info")
    if data and kind != "file":
        ctx.note("data-on-non-file", f"{len(data)} data bytes on a {kind} entry ignored", rel)
    return e


def _owner_ok(ctx: _Ctx, e: Entry, name: str) -> bool:
    if 0 <= e.uid <= 65535 and 0 <= e.gid <= 65535:
        return True
    for label, v in (("uid", e.uid), ("gid", e.gid)):
        if not 0 <= v <= MAX_ID:
            ctx.reject(
                BadHeader(f"{ctx.what}: {label} {v} of {name!r} is out of range"), "bad-owner", name
            )
            if ctx.strict:
                return False
            setattr(e, label, 0)
        elif v > 65535:
            ctx.note("large-id", f"{label} {v} is above 65535", e.path, "info")
    return True


def _symlink(ctx: _Ctx, e: Entry, h: tr.TarHeader, parent: str) -> bool:
    target = h.linkname
    if not target:
        ctx.reject(
            BadName(f"{ctx.what}: symlink {e.path!r} has an empty target"), "empty-symlink", e.path
        )
        return False
    if len(target.encode("utf-8", "surrogateescape")) > 4095:
        raise NameTooLong(f"{ctx.what}: symlink target of {e.path!r} is longer than 4095 bytes")
    e.link = target
    if not target.startswith("/") and nm.escapes(nm.go_clean(nm.join(parent, target))):
        # Docker refuses it; with chroot resolution it is harmless, so lenient keeps it
        ctx.reject(
            PathEscape(f"{ctx.what}: symlink {e.path!r} -> {target!r} points outside the layer"),
            "symlink-escape",
            e.path,
        )
    return True


def _xattrs(ctx: _Ctx, h: tr.TarHeader, rel: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in h.xattrs.items():
        value = v.encode("utf-8", "surrogateescape")
        if not k.startswith(XATTR_NAMESPACES):
            ctx.reject(
                BadName(f"{ctx.what}: xattr {k!r} of {rel!r} has no valid namespace"),
                "xattr-namespace",
                rel,
            )
            continue
        if len(k.encode()) > 255 or len(value) > 65536:
            raise LimitExceeded(f"{ctx.what}: xattr {k[:40]!r} of {rel!r} is too large")
        if k.startswith(OVERLAY_XATTR_PREFIXES):
            ns, rest = k.split(".overlay.", 1)
            escaped = f"{ns}.overlay.overlay.{rest}"
            ctx.note(
                "overlay-xattr", f"overlay xattr {k!r} from image data escaped to {escaped!r}", rel
            )
            k = escaped
        elif k == "security.capability":
            ctx.note("file-capability", "file capabilities (security.capability)", rel, "info")
        out[k] = value
    return out


def _whiteout(
    ctx: _Ctx,
    h: tr.TarHeader,
    rel: str,
    parent: str,
    base: str,
    data: bytes,
    plnk: dict[str, Entry],
    common: _Common,
) -> Entry | None:
    top = rel.split("/", 1)[0]
    if top in nm.AUFS_META:
        if top == ".wh..wh.plnk" and h.typeflag == tr.REG and rel != top:
            plnk[base] = common.entry("file", rel, data=data)
        ctx.note("aufs-meta", "AUFS bookkeeping entry skipped", rel, "info")
        return None
    if base == nm.WH_OPAQUE:
        kind, path = "opaque", parent
        if parent == "":
            ctx.note(
                "opaque-root", "opaque marker at the layer root (hides every lower layer)", rel
            )
    elif base in nm.BAD_WHITEOUTS:
        ctx.reject(BadWhiteout(f"{ctx.what}: invalid whiteout entry {rel!r}"), "bad-whiteout", rel)
        return None
    elif base.startswith(nm.WH_META):
        ctx.reject(
            BadWhiteout(f"{ctx.what}: unknown whiteout meta entry {rel!r}"), "whiteout-meta", rel
        )
        return None
    else:
        kind, path = "whiteout", nm.join(parent, base[len(nm.WH_PREFIX) :])
    if h.typeflag != tr.REG:
        ctx.note("whiteout-type", f"whiteout marker of tar type {h.typeflag!r}", rel)
    if data:
        ctx.note("whiteout-data", f"{len(data)} data bytes on a whiteout marker ignored", rel)
    if h.mode & 0o7777 == 0 and kind == "whiteout":
        ctx.note("naive-whiteout", "whiteout written the naive-diff way (mode 0)", rel, "info")
    return common.entry(kind, path, mtime_ns=max(h.mtime_ns, 0))


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


_BLOCKERS = NON_DIR - {"symlink"}  # a symlink parent is followed (chroot), not a conflict


def _check_layer(ctx: _Ctx, entries: list[Entry]) -> list[Entry]:
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
            if state[p].kind in ("dir", "root") and kind in ("dir", "root"):
                ctx.note(
                    "duplicate-dir", "directory listed twice; the later attributes win", p, "info"
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
    ctx: _Ctx,
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
    last: dict[str, int] = {}
    for i, e in enumerate(entries):
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
