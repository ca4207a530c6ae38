"""Where the layers of an overlay mount are checked: the filesystem half of ``ovl_fill_super``.

:mod:`overlaysim.overlay.params` parses the data string as ``params.c`` does; this module
resolves each layer through a :class:`LayerResolver` and applies the kernel's checks in the
kernel's order (in-use traps, same mount for upper and work, overlapping layers, stacking
depth, uuid fallbacks), so the errno and log line of a refused mount match Linux 6.18.
"""

from __future__ import annotations

import errno
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Protocol

from overlaysim.overlay.params import (
    MAX_STACK_DEPTH,
    LowerLayer,
    OverlayParams,
    Pairs,
    _Ctx,
    _fail,
    _parse,
    _prepare,
)


@dataclass(frozen=True)
class LayerRef:
    """What a :class:`LayerResolver` knows about one resolved layer directory.

    ``inode`` identifies the directory (equal inodes are the same layer even via a symlink or
    a bind mount); ``ancestors`` are the inodes of its parents *within its own filesystem*, up
    to that filesystem's root (dentry parents, not path components: a bind mount's parents are
    those of its source). ``fs`` identifies the superblock, ``mount`` the mount (upper and
    work must share it). ``stack_depth`` is 0 on a plain filesystem, 1 on an overlay.
    """

    inode: Hashable
    is_dir: bool = True
    fs: Hashable = 0
    mount: Hashable = 0
    read_only_mount: bool = False
    ancestors: tuple[Hashable, ...] = ()
    stack_depth: int = 0
    incompat_volatile: bool = False  # for a workdir: work/incompat/volatile is present
    fs_uuid: bytes | None = None  # the superblock uuid; bytes(16) is "null", None unknown
    name: str = ""  # for log lines: the last two path components, as the kernel's %pd2


class LayerResolver(Protocol):
    """Resolves mount-option paths the way ``kern_path(LOOKUP_FOLLOW)`` does."""

    def resolve(self, path: str) -> LayerRef:
        """Follow symlinks; raise ``OSError`` (ENOENT, ENOTDIR, ELOOP, EACCES...) on failure."""
        ...

    def in_use(self, inode: Hashable) -> bool:
        """Whether ``inode`` is the upper or work dir of a live overlay mount."""
        ...


@dataclass(frozen=True)
class LayerPlan:
    """The resolved layers of a mount that passed every check."""

    params: OverlayParams
    lowers: tuple[LayerRef, ...]
    upper: LayerRef | None
    work: LayerRef | None
    numfs: int
    same_fs: bool
    notes: tuple[str, ...] = ()

    def mount_options(self, *, upper_has_uuid: bool = False, upper_impure: bool = False) -> str:
        return self.params.mount_options(same_fs=self.same_fs, numfs=self.numfs,
                                         upper_has_uuid=upper_has_uuid,
                                         upper_impure=upper_impure)  # fmt: skip


def _report_in_use(params_index: bool, name: str, notes: list[str]) -> None:
    """``ovl_report_in_use``: EBUSY with index=on, otherwise only a warning."""
    if params_index:
        raise _fail(errno.EBUSY, f"overlayfs: {name} is in-use as upperdir/workdir of another "
                                 "mount, mount with '-o index=off' to override exclusive "
                                 "upperdir protection.")  # fmt: skip
    notes.append(f"overlayfs: {name} is in-use as upperdir/workdir of another mount, accessing "
                 "files from both mounts will result in undefined behavior.")  # fmt: skip


def _check_lower_uuid(
    p: OverlayParams, ref: LayerRef, seen: list[bytes | None], upper: bool, notes: list[str]
) -> OverlayParams:
    """``ovl_lower_uuid_ok``: file handles of a null or duplicate fs uuid cannot be trusted."""
    if not p.nfs_export and not upper:
        return p
    offline = p.allow_offline_changes
    null = ref.fs_uuid == bytes(16)
    if not ((offline and null) or (ref.fs_uuid is not None and ref.fs_uuid in seen)):
        return p
    q = replace(p, xino="off" if p.xino == "auto" else p.xino, index=False, nfs_export=False)
    if q != p:
        notes.append(f"overlayfs: {'null' if null else 'conflicting'} uuid detected in lower fs "
                     f"'{ref.name}', falling back to xino={q.xino},index=off,nfs_export=off.")  # fmt: skip
    return q


def _check_lower_fh(p: OverlayParams, lowers: list[LowerLayer], refs: list[LayerRef],
                    upper: bool, notes: list[str]) -> OverlayParams:  # fmt: skip
    """``ovl_lower_dir``: a lower fs without file handles (an overlay without nfs_export)
    turns xino=auto off when there is an upper layer: no persistent st_ino without decodable
    origins. (Its index=off fallback is super.py's, with the index.)"""
    for layer, ref in zip(lowers, refs, strict=True):
        if ref.stack_depth == 0:
            continue  # tmpfs, ext4...: ovl_can_decode_fh() says yes
        if p.xino == "auto" and upper:
            p = replace(p, xino="off")
            notes.append(f"overlayfs: fs on '{layer.path}' does not support file handles, "
                         "falling back to xino=off.")  # fmt: skip
    return p


def _fill_super(ctx: _Ctx, params: OverlayParams) -> LayerPlan | None:
    """The checks of ``ovl_fill_super``, in its order; filesystem steps need a resolver."""
    resolver = ctx.resolver
    notes = list(ctx.notes)
    if not ctx.lowers:
        raise _fail(errno.EINVAL, "no_lower")
    upper_ref: LayerRef | None = None
    work_ref: LayerRef | None = None
    traps: list[Hashable] = []
    if ctx.upper is not None:
        if ctx.work is None:
            raise _fail(errno.EINVAL, "no_work")
        upper_ref, work_ref = ctx.upper[2], ctx.work[2]
        if resolver is not None and upper_ref is not None and work_ref is not None:
            traps.append(upper_ref.inode)
            if resolver.in_use(upper_ref.inode):
                _report_in_use(params.index, "upperdir", notes)
            if upper_ref.mount != work_ref.mount:
                raise _fail(errno.EINVAL, "same_mount")
            if (work_ref.inode == upper_ref.inode or upper_ref.inode in work_ref.ancestors
                    or work_ref.inode in upper_ref.ancestors):  # fmt: skip
                raise _fail(errno.EINVAL, "subtrees")
            if resolver.in_use(work_ref.inode):
                _report_in_use(params.index, "workdir", notes)
            traps.append(work_ref.inode)
            if work_ref.incompat_volatile:
                raise _fail(errno.EINVAL, "incompat")
    if ctx.upper is None and len(ctx.lowers) == 1:
        raise _fail(errno.EINVAL, "two_lowers")
    if ctx.nr_data == len(ctx.lowers):
        raise _fail(errno.EINVAL, "non_data")
    if resolver is None:
        return None
    refs = [r for r in ctx.lower_refs if r is not None]
    params = _check_lower_fh(params, ctx.lowers, refs, ctx.upper is not None, notes)
    depth = max([r.stack_depth for r in refs] + [upper_ref.stack_depth if upper_ref else 0])
    if depth + 1 > MAX_STACK_DEPTH:
        raise _fail(errno.EINVAL, "depth")
    # fsid 0 is the upper fs (reserved even without one); data layers share a "null fs"
    fss: list[Hashable | None] = [upper_ref.fs if upper_ref else None]
    uuids: list[bytes | None] = []
    for layer, ref in zip(ctx.lowers, refs, strict=True):
        if not layer.is_data_only and ref.fs not in fss:
            fss.append(ref.fs)
            params = _check_lower_uuid(params, ref, uuids, upper_ref is not None, notes)
            uuids.append(ref.fs_uuid)
        if ref.inode in traps:
            raise _fail(errno.ELOOP, "conflicting")
        traps.append(ref.inode)
        if resolver.in_use(ref.inode):
            _report_in_use(params.index, "lowerdir", notes)
    numfs = len(fss)
    if params.uuid == "off" and numfs > 1:
        notes.append("overlayfs: The uuid=off requires a single fs for lower and upper, falling "
                     "back to uuid=null.")  # fmt: skip
    checked: list[tuple[LayerRef | None, str]] = [(upper_ref, "upperdir"), (work_ref, "workdir")]
    for layer_ref, name in checked + [(r, "lowerdir") for r in refs]:
        for parent in layer_ref.ancestors if layer_ref else ():
            if name == "lowerdir" and parent in traps:
                raise _fail(errno.ELOOP, "overlapping")
            if resolver.in_use(parent):
                _report_in_use(params.index, name, notes)
    same_fs = numfs - (0 if upper_ref else 1) == 1
    if params.xino == "on" and same_fs:
        notes.append('overlayfs: "xino=on" is useless with all layers on same fs, ignore.')
    elif params.xino != "off" and not same_fs:  # ilog2(numfs - 1) + 2 (see overlay/xino.py)
        notes.append(f'overlayfs: "xino" feature enabled using {(numfs - 1).bit_length() + 1} '
                     "upper inode bits.")  # fmt: skip
    return LayerPlan(
        params=replace(params, notes=tuple(notes)), lowers=tuple(refs), upper=upper_ref,
        work=work_ref, numfs=numfs, same_fs=same_fs, notes=tuple(notes),
    )  # fmt: skip


def parse_options(data: str | bytes | Pairs, *, flags: int = 0) -> OverlayParams:
    """Parse and verify a ``mount(2)`` data string without looking at any filesystem.

    Every path is assumed to exist and be a directory; use :func:`validate_mount` for the
    kernel's exact behaviour on real layers. A sequence of ``(key, value-or-None)`` pairs is
    taken as ``fsconfig(2)`` calls of the new mount API (no 4095-byte cut, no comma split).
    """
    text = _prepare(data)
    ctx = _parse(text, flags, None)
    params = ctx.params(text, flags)
    _fill_super(ctx, params)
    return params


def validate_mount(
    data: str | bytes | Pairs, resolver: LayerResolver, *, flags: int = 0
) -> LayerPlan:
    """Everything ``mount -t overlay`` checks, in the kernel's order."""
    text = _prepare(data)
    ctx = _parse(text, flags, resolver)
    plan = _fill_super(ctx, ctx.params(text, flags))
    assert plan is not None
    return plan


def check_layers(params: OverlayParams, resolver: LayerResolver) -> LayerPlan:
    """The filesystem checks for options that :func:`parse_options` accepted."""
    return validate_mount(params.data, resolver, flags=params.flags)
