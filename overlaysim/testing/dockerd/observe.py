"""What the two sides are compared on, read the same way from each: the overlay2 tree, the
overlay mounts, and tar archives (``commit``/``save``/``export``), with ids replaced by roles.

The overlay2 observation is one flat dict ``{path: fact}`` so a difference reads as a path and
two values. Layer ``diff/`` trees are read as upper layers (whiteouts are char 0/0 devices,
``trusted.overlay.*`` xattrs by value), ``merged/`` is never walked (it is a live container's
rootfs on the real side): only whether it exists and is a mount point. mtimes are left out
(the two clocks differ); modes, owners, sizes, content digests, link targets and xattrs stay.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import stat
import tarfile
from typing import Any

from overlaysim.testing.dockerd.ids import IdMap, _listdir, _read
from overlaysim.testing.observe import snapshot

PREFIX = "trusted.overlay."


def _dir_fact(o: Any, path: str) -> str:
    st = o.lstat(path)
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file"
    return f"{kind} {stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"


def overlay2_tree(o: Any, root: str, ids: IdMap, mounted: set[str], only: str = "") -> dict[str, str]:
    """``{normalised path: fact}`` for everything under ``<root>/overlay2`` (with ``only``, the
    directories whose role name starts with it); ``mounted`` holds the (raw) mount points, to
    report ``merged`` as mounted or not."""
    out: dict[str, str] = {}
    base = posixpath.join(root, "overlay2")
    for name in _listdir(o, base):
        path = posixpath.join(base, name)
        key = ids.text(name)
        if not key.startswith(only):
            continue
        out[key] = _dir_fact(o, path)
        if name == "l":
            for short in _listdir(o, path):
                link = posixpath.join(path, short)
                out[f"l/{ids.text(short)}"] = "-> " + ids.text(o.fsdecode(o.readlink(link)))
            continue
        for part in _listdir(o, path):
            sub = posixpath.join(path, part)
            where = f"{key}/{part}"
            if part == "diff":
                snap = snapshot(o, sub, upper_prefix=PREFIX)
                for rel, e in snap.entries.items():
                    fields = {k: v for k, v in vars(e).items() if v not in (None, ())}
                    fields.pop("listing", None)
                    fact = " ".join(f"{k}={ids.text(str(v))}" for k, v in sorted(fields.items()))
                    out[f"{where}/{rel}" if rel else where] = fact
            elif part in ("link", "lower"):
                text = _read(o, sub) or ""
                out[where] = f"{_dir_fact(o, sub)} {ids.text(text)!r}"
            elif part == "work":
                out[where] = _dir_fact(o, sub)
                for w in _listdir(o, sub):
                    out[f"{where}/{w}"] = _dir_fact(o, posixpath.join(sub, w))
                    if w == "work":
                        inner = _listdir(o, posixpath.join(sub, w))
                        out[f"{where}/{w}/*"] = f"{len(inner)} entries"
            elif part == "merged":
                out[where] = f"{_dir_fact(o, sub)} {'mounted' if sub in mounted else 'not mounted'}"
            else:
                out[where] = _dir_fact(o, sub) + f" {(_read(o, sub) or '')!r}"
    return out


def mounts_of(lines: list[tuple[str, str, str]], root: str, ids: IdMap) -> dict[str, str]:
    """Overlay mounts under ``root`` (target, fstype, options) as ``{target: options}``."""
    out = {}
    for target, fstype, options in lines:
        if fstype == "overlay" and target.startswith(root.rstrip("/") + "/"):
            out[ids.text(target)] = ids.text(options)
    return out


def tar_members(data: bytes, ids: IdMap | None = None) -> list[str]:
    """A tar archive as one line per member, in order: name, type, the raw header mode (with
    file-type bits, as Docker writes them), owners and names, size, link target, device
    numbers, PAX records except times, and a digest of the content; mtimes left out."""
    out = []
    norm = ids.text if ids is not None else (lambda s: s)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            raw_mode = _raw_mode(data, m.offset_data - 512)
            f = tf.extractfile(m) if m.isreg() else None
            body = f.read() if f is not None else b""
            digest = hashlib.sha256(body).hexdigest()[:16] if f is not None else "-"
            size = str(m.size)
            if ids is not None and _is_metadata(m.name, body):
                # configs, manifests, v1 json: compared by content with ids as roles, times out
                digest = _TIME.sub("<time>", ids.text(body.decode("utf-8", "replace")))
                size = "~"  # with the times' digits
            pax = {k: v for k, v in m.pax_headers.items() if k not in ("mtime", "atime", "ctime")}
            out.append(
                f"{norm(m.name)} type={m.type!r} mode={raw_mode} {m.uid}:{m.gid} "
                f"{m.uname or '-'}:{m.gname or '-'} size={size} link={norm(m.linkname) or '-'} "
                f"dev={m.devmajor},{m.devminor} pax={sorted(pax.items())} sha={digest}"
            )
    return out


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_METADATA = ("manifest.json", "repositories", "index.json", "oci-layout", "json", "VERSION")


def _is_metadata(name: str, body: bytes) -> bool:
    base = posixpath.basename(name)
    return (base in _METADATA or base.endswith(".json")
            or (name.startswith("blobs/") and body[:1] == b"{")) and len(body) < 1 << 20


def _raw_mode(data: bytes, offset: int) -> str:
    """The mode field of the member's own header (after any PAX or GNU long-name header),
    read raw: tarfile masks the type bits off."""
    field = data[offset + 100 : offset + 108].rstrip(b"\0 ").decode("ascii", "replace")
    return field.lstrip("0") or "0"
