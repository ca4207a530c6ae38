"""Engine events in plain words, each with the kernel function a reader can look up.

Shared by ``explain`` (what the next operation would do) and ``sh --explain`` / ``docker exec
--explain`` (what a command just did). Only what the event carries is said: nothing predicted.
"""

from __future__ import annotations

from typing import Any

from overlaysim.events import Event

#: event kinds that are bookkeeping, not a decision about a path
QUIET = frozenset({"mount", "umount"})


def _bytes(n: int) -> str:
    return f"{n} byte{'s' if n != 1 else ''}"


def kernel_function(e: Event) -> str:
    """The fs/overlayfs function that makes this decision in Linux."""
    d = e.detail
    if e.kind == "copy_up":
        if e.reason.startswith("data copy-up of a metacopy"):
            return "ovl_copy_up_meta_inode_data"
        return "ovl_copy_up -> ovl_copy_up_one"
    if e.kind == "whiteout":
        if "rename" in e.reason:
            return "ovl_rename (RENAME_WHITEOUT)"
        return "ovl_remove_and_whiteout -> ovl_do_whiteout" if not d.get("moved") else "ovl_rename"
    return {
        "opaque": "ovl_set_opaque",
        "redirect": "ovl_set_redirect",
        "exdev": "ovl_rename",
        "origin": "ovl_fix_origin",
        "index": "ovl_create_index / ovl_link_up",
        "mount": "ovl_fill_super",
        "umount": "ovl_put_super",
    }.get(e.kind, "")


def _inside(e: Event) -> Event:
    """The event with its path relative to the overlay's root (explain shows the mount once)."""
    top = e.mount.rstrip("/")
    if top and (e.path == top or e.path.startswith(top + "/")):
        return Event(e.kind, e.path[len(top) :] or "/", e.mount, e.reason, e.detail)
    return e


def sentence(e: Event, relative: bool = False) -> str:
    """One line a learner can read: what happened, to which path, and why."""
    if relative:
        e = _inside(e)
    d = e.detail
    why = f" ({e.reason})" if e.reason else ""
    if e.kind == "copy_up":
        kind = d.get("type", "object")
        if d.get("metadata_only"):
            what = f"metadata-only copy-up of {kind} {e.path} from {d.get('layer', 'a lower')}: " \
                   f"0 bytes of data copied, the data stays below (metacopy)"  # fmt: skip
        else:
            n = int(d.get("bytes", 0))
            what = f"copy-up of {kind} {e.path} from {d.get('layer', 'a lower')}: " \
                   f"{_bytes(n)} copied to the upper layer"  # fmt: skip
        extra = []
        if d.get("origin"):
            extra.append("origin xattr written")
        if d.get("indexed"):
            extra.append("indexed")
        return what + (f", {', '.join(extra)}" if extra else "") + why
    if e.kind == "whiteout":
        if d.get("moved"):
            return f"whiteout at {e.path}: an existing upper whiteout was moved here{why}"
        shared = ", a link to the shared whiteout" if d.get("shared") else ""
        return f"whiteout (char 0/0) created at {e.path} in the upper layer{shared}{why}"
    if e.kind == "opaque":
        return f"opaque xattr (opaque=y) set on {e.path}: lower layers are no longer merged{why}"
    if e.kind == "redirect":
        return f"redirect xattr set on {e.path} -> {d.get('redirect')!r}: lower layers are " \
               f"looked up under the old name{why}"  # fmt: skip
    if e.kind == "exdev":
        return f"rename of {e.path} refused with EXDEV{why}: user space (mv) copies instead"
    if e.kind == "origin":
        return f"origin xattr written on {e.path}{why}"
    if e.kind == "index":
        return f"index entry for {e.path}{why}"
    return e.describe()


def phrase(e: Event) -> str:
    """An event as a short phrase to set beside another (compare): what, where relative to
    the mount, and the numbers that matter; :func:`sentence` is the long form."""
    d, where = e.detail, _inside(e).path
    if e.kind == "copy_up":
        if d.get("metadata_only"):
            return f"copy-up {where}: metadata only (0 data bytes)"
        kind = str(d.get("type", ""))
        if kind.startswith("dir"):
            return f"copy-up {where} (directory)"
        return f"copy-up {where}: {int(d.get('bytes', 0))} bytes"
    if e.kind == "redirect":
        return f"redirect {where} -> {d.get('redirect')!r}"
    if e.kind == "whiteout":
        return f"whiteout {where}"
    if e.kind == "exdev":
        return f"EXDEV {where}"
    return f"{e.kind} {where}"


def as_json(e: Event, relative: bool = False) -> dict[str, Any]:
    return {
        "kind": e.kind, "path": e.path, "mount": e.mount, "reason": e.reason,
        "detail": dict(e.detail), "text": sentence(e, relative), "kernel": kernel_function(e),
    }  # fmt: skip


def lines(events: list[Event], relative: bool = False) -> list[str]:
    """The sentences of the decisions among ``events``, with their kernel functions."""
    out = []
    for e in events:
        if e.kind in QUIET:
            continue
        fn = kernel_function(e)
        out.append(sentence(e, relative) + (f"  [{fn}]" if fn else ""))
    return out
