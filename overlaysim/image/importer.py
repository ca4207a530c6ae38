"""Import an image into a filesystem (HostFS or a real directory), per layer and/or flattened.

Layers are parsed and validated one at a time (so memory is one layer's data), then applied:
natively into ``<target>/layers/<n>`` (Docker overlay2's diff dirs) and/or flattened into
``<target>/rootfs``. ``target`` must not exist: if anything fails, everything created below
it is removed again, so a failed import leaves the filesystem exactly as it was.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Literal

from overlaysim.errors import DigestMismatch, LimitExceeded
from overlaysim.image.apply import Applier, ApplyResult
from overlaysim.image.findings import Findings
from overlaysim.image.layer import LayerPlan, parse_layer
from overlaysim.image.limits import Limits
from overlaysim.image.model import LAYER_TYPES, ImageRef
from overlaysim.image.resolve import rmtree
from overlaysim.image.source import Source
from overlaysim.image.tarsplit import TarSplit
from overlaysim.image.tree import Divergence, compare, overlay_merge, snapshot

How = Literal["native", "flat", "both"]


@dataclass
class ImportedLayer:
    index: int
    diff_id: str
    blob_digest: str
    compression: str
    stats: dict[str, int]
    dir: str | None
    tarsplit: TarSplit | None
    applied: list[ApplyResult] = field(default_factory=list)


@dataclass
class ImportResult:
    image: ImageRef
    target: str
    layers: list[ImportedLayer]
    findings: Findings
    rootfs: str | None = None

    @property
    def layer_dirs(self) -> list[str]:
        return [x.dir for x in self.layers if x.dir is not None]


def layer_dir(target: str, i: int) -> str:
    return posixpath.join(target, "layers", f"{i:03d}")


def import_image(
    o: Any,
    src: Source,
    image: ImageRef,
    target: str,
    *,
    how: How = "native",
    limits: Limits | None = None,
    strict: bool = True,
    keep_tarsplit: bool = True,
) -> ImportResult:
    """Verify and apply every layer of ``image``; roll back on any error."""
    limits = limits or src.limits
    findings = Findings()
    try:
        o.lstat(target)
    except FileNotFoundError:
        pass
    else:
        raise FileExistsError(17, "File exists", target)
    parent = posixpath.dirname(target.rstrip("/")) or "/"
    pst = o.lstat(parent)
    o.mkdir(target, 0o700)
    result = ImportResult(image, target, [], findings)
    try:
        if how in ("native", "both"):
            o.mkdir(posixpath.join(target, "layers"), 0o700)
        flat: Applier | None = None
        if how in ("flat", "both"):
            result.rootfs = posixpath.join(target, "rootfs")
            o.mkdir(result.rootfs, 0o755)
            # one applier for every layer: what it knows of the tree it built stays true
            flat = Applier(o, result.rootfs, "flat", findings, limits.max_symlink_hops)
        total = 0
        for ref in image.layers:
            what = f"layer {ref.index} ({ref.path})"
            with src.open(ref.path) as raw:
                plan = parse_layer(
                    raw, limits, index=ref.index, strict=strict, capture=keep_tarsplit, what=what
                )
            total += plan.uncompressed_size
            if total > limits.max_total_bytes:
                raise LimitExceeded(f"image: more than {limits.max_total_bytes} decompressed bytes")
            _check_digests(plan, ref, findings)
            findings.extend(plan.findings)
            imported = ImportedLayer(
                ref.index,
                plan.diff_id,
                plan.blob_digest,
                plan.compression,
                plan.stats,
                None,
                plan.tarsplit,
            )
            if how in ("native", "both"):
                imported.dir = layer_dir(target, ref.index)
                o.mkdir(imported.dir, 0o755)
                imported.applied.append(
                    Applier(o, imported.dir, "native", findings, limits.max_symlink_hops).apply(
                        plan
                    )
                )
            if flat is not None:
                imported.applied.append(flat.apply(plan))
            _drop_data(plan)
            result.layers.append(imported)
    except BaseException:
        try:
            rmtree(o, target)
            # leave even the parent's timestamps as they were (its ctime still moves)
            o.utime(parent, ns=(pst.st_atime_ns, pst.st_mtime_ns), follow_symlinks=False)
        except OSError:
            pass
        raise
    return result


def _check_digests(plan: LayerPlan, ref: Any, findings: Findings) -> None:
    if ref.digest is not None and plan.blob_digest != ref.digest:
        raise DigestMismatch(
            f"layer {ref.index}: blob hashes to {plan.blob_digest}, expected {ref.digest}"
        )
    if ref.size is not None and plan.blob_size != ref.size:
        raise DigestMismatch(
            f"layer {ref.index}: blob has {plan.blob_size} bytes, the descriptor says {ref.size}"
        )
    if plan.diff_id != ref.diff_id:
        raise DigestMismatch(
            f"invalid diffID for layer {ref.index}: expected {ref.diff_id}, got {plan.diff_id}"
        )
    declared = LAYER_TYPES.get(ref.media_type)
    if declared is not None and declared != plan.compression:
        findings.add(
            "compression-mismatch",
            f"media type says {declared}, the blob is {plan.compression}",
            ref.path,
            ref.index,
        )


def _drop_data(plan: LayerPlan) -> None:
    for e in plan.entries:
        e.data = b""


def merged_view(o: Any, result: ImportResult) -> dict[str, Any]:
    """The overlay merge of the native layer dirs (uppermost last in ``layer_dirs``)."""
    return overlay_merge([snapshot(o, d) for d in reversed(result.layer_dirs)])


def divergence(o: Any, result: ImportResult) -> list[Divergence]:
    """Every path where overlay2's merged view and the flattened rootfs disagree."""
    if result.rootfs is None or not result.layer_dirs:
        raise ValueError("divergence needs an import done with how='both'")
    return compare(merged_view(o, result), snapshot(o, result.rootfs))
