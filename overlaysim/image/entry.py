"""One tar header to one normalised layer entry, as Docker's unpacker reads it.

Names are cleaned the Go way and kept inside the layer root, whiteout and opaque markers are
recognised, owners, modes, times, link targets and xattrs are checked; anything hostile or
ambiguous is rejected (strict) or neutralised with a finding (lenient). Most headers of real
layers are plain files and directories, so a short path (``classify_plain``) handles those and
everything else takes the full one (``classify_general``); tests hold the two to one answer.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import Any

from overlaysim.errors import (
    BadName,
    BadWhiteout,
    ImageError,
    LimitExceeded,
    NameTooLong,
    PathEscape,
    UnsupportedMediaType,
)
from overlaysim.image import names as nm
from overlaysim.image import tar_reader as tr
from overlaysim.image.errors import BadHeader
from overlaysim.image.findings import Findings
from overlaysim.image.limits import Limits
from overlaysim.image.tarsplit import FileRef

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


@dataclass(slots=True)
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


class Ctx:
    """Per-layer settings and findings shared by every entry's checks."""

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


_PLAIN_KINDS = {tr.REG: "file", tr.DIR: "dir"}


def classify_plain(ctx: Ctx, h: tr.TarHeader, data: bytes) -> Entry | None:
    """The entry ``classify_general`` makes of the most common header, found with fewer
    checks: a file or directory without PAX records, GNU names or sparse data, whose name is
    already clean (relative, no empty, '.', '..' or dot-prefixed component, no backslash),
    short and ASCII, with owner ids up to 65535, no set-id bit on a file and a 1970+ mtime.
    None for anything else: every such header goes the general way, with its findings."""
    kind = _PLAIN_KINDS.get(h.typeflag)
    name = h.name
    if (
        kind is None
        or h.pax
        or h.gnu_long_name
        or h.nul_in_name
        or h.sparse is not None
        or not name
        or name[0] == "/"
        or name[0] == "."
        or "//" in name
        or "/." in name
        or "\\" in name
        or not 0 <= h.uid <= 65535
        or not 0 <= h.gid <= 65535
        or h.mtime_ns < 0
        or (kind == "file" and h.mode & 0o6000)
        or (data and kind != "file")
    ):
        return None
    if name[-1] == "/":
        if kind != "dir":
            return None  # a file named like a directory: the general path decides
        rel = name[:-1]
    else:
        rel = name
    lim = ctx.lim
    if not (len(rel) <= lim.max_name_bytes and rel.isascii() and rel.count("/") < lim.max_depth):
        return None
    mtime = h.mtime_ns
    atime = h.atime_ns
    return Entry(
        kind,
        rel,
        name,
        h.mode & 0o7777,
        h.uid,
        h.gid,
        mtime,
        mtime if atime is None or atime < mtime else atime,
        data if kind == "file" else b"",
        index=h.index,
    )


def classify_general(
    ctx: Ctx, h: tr.TarHeader, data: bytes, plnk: dict[str, Entry]
) -> Entry | None:
    if h.typeflag == tr.XGLOBAL:
        ctx.note(
            "pax-global-header",
            "PAX global header: Go ignores it, GNU tar and Python apply it",
            h.name,
        )
        return None
    name = h.name
    pax = h.pax
    if pax and "path" in pax and h.header_name != name:
        level = "info" if name.startswith(h.header_name.rstrip("/")) else "warning"
        ctx.note(
            "pax-name-mismatch",
            f"the ustar name is {h.header_name!r}; PAX-unaware tools see that",
            name,
            level,
        )
    if h.nul_in_name:
        ctx.note("nul-in-name", "a GNU long name holds a NUL; Go keeps only what precedes it", name)
    if h.gnu_long_name and "path" in pax:
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
    parent, _, base = rel.rpartition("/")  # nm.split, inlined (once per entry)
    if rel and name[-1] == "/" and h.typeflag != tr.DIR:
        # Go keeps the type; Docker and containerd drop the slash and create the file,
        # GNU tar and Python's tarfile open "f/" and fail: one name, two readings
        ctx.reject(
            BadName(f"{ctx.what}: non-directory entry {name!r} has a name ending in '/'"),
            "slash-non-dir",
            name,
        )
    if nm.WH_PREFIX in parent and _below_whiteout_name(ctx, h, rel, parent, data, plnk):
        return None
    if base.startswith(nm.WH_PREFIX):
        common = _Common(name, h.index, h.uid, h.gid)
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
            # Docker and containerd skip it (the name cleans to '.'); GNU tar and Python's
            # tarfile try to write the extraction root itself
            ctx.reject(
                BadName(
                    f"{ctx.what}: the root entry {name!r} is not a directory"
                    if name
                    else f"{ctx.what}: a {kind} entry has an empty name"
                ),
                "root-not-dir" if name else "empty-name",
                name,
            )
            return None
        if name not in ("./", "."):
            ctx.note("root-entry", f"root directory entry named {name!r}", name, "info")
        kind = "root"
    e = Entry(kind, rel, name, h.mode & 0o7777, h.uid, h.gid, index=h.index)
    if not (0 <= e.uid <= 65535 and 0 <= e.gid <= 65535) and not _owner_ok(ctx, e, name):
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
    if pax:  # xattrs come in PAX records only
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


def _owner_ok(ctx: Ctx, e: Entry, name: str) -> bool:
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


def _symlink(ctx: Ctx, e: Entry, h: tr.TarHeader, parent: str) -> bool:
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


def _xattrs(ctx: Ctx, h: tr.TarHeader, rel: str) -> dict[str, bytes]:
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


def _below_whiteout_name(
    ctx: Ctx, h: tr.TarHeader, rel: str, parent: str, data: bytes, plnk: dict[str, Entry]
) -> bool:
    """True when an entry below a ``.wh.``-named directory is skipped (AUFS bookkeeping) or
    refused. Docker and containerd look at the last component only and create a directory
    literally named ``.wh.b``; the next diff of that tree writes it back as a whiteout of
    ``b``, so the name changes meaning on a round trip (the OCI spec: no such name exists)."""
    top = rel.split("/", 1)[0]
    if top in nm.AUFS_META:
        if top == ".wh..wh.plnk" and h.typeflag == tr.REG:
            plnk[rel.rpartition("/")[2]] = Entry(
                "file", rel, h.name, uid=h.uid, gid=h.gid, data=data, index=h.index
            )
        ctx.note("aufs-meta", "AUFS bookkeeping entry skipped", rel, "info")
        return True
    bad = next((c for c in parent.split("/") if c.startswith(nm.WH_PREFIX)), None)
    if bad is None:
        return False
    ctx.reject(
        BadWhiteout(f"{ctx.what}: {rel!r} lies below {bad!r}, a name only a whiteout may have"),
        "whiteout-in-parent",
        rel,
    )
    return True


def _whiteout(
    ctx: Ctx,
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
