"""Image formats: layer tars, docker save (every generation), OCI layouts, runc bundles.

Reading is hardened (security.md): Go-compatible tar parsing with limits, every digest
verified, names resolved with chroot semantics, strict typed rejections or lenient findings.
Writing reproduces Docker's bytes (checked against real saves of Docker 18.09, 20.10 and 25).
"""

from __future__ import annotations

from overlaysim.image.apply import Applier
from overlaysim.image.bundle import (
    ExportPolicy,
    runc_spec,
    runc_spec_json,
    write_bundle,
    write_tree,
)
from overlaysim.image.differential import tarfile_differential
from overlaysim.image.digest import chain_ids, image_id
from overlaysim.image.entry import Entry
from overlaysim.image.export import Change, changes, layer_tar, rootfs_tar
from overlaysim.image.findings import Finding, Findings
from overlaysim.image.formats import open_archive, select
from overlaysim.image.importer import ImportResult, divergence, import_image, merged_view
from overlaysim.image.layer import LayerPlan, parse_layer
from overlaysim.image.limits import DEFAULT_LIMITS, Limits
from overlaysim.image.model import ImageArchive, ImageRef, LayerRef
from overlaysim.image.save import (
    SaveOptions,
    oci_archive,
    oci_layout_files,
    save_v12,
    save_v25,
    write_oci_dir,
)
from overlaysim.image.tree import Divergence, Node, compare, overlay_merge, snapshot
from overlaysim.image.verify import verify_image

__all__ = [
    "DEFAULT_LIMITS",
    "Applier",
    "Change",
    "Divergence",
    "Entry",
    "ExportPolicy",
    "Finding",
    "Findings",
    "ImageArchive",
    "ImageRef",
    "ImportResult",
    "LayerPlan",
    "LayerRef",
    "Limits",
    "Node",
    "SaveOptions",
    "chain_ids",
    "changes",
    "compare",
    "divergence",
    "image_id",
    "import_image",
    "layer_tar",
    "merged_view",
    "oci_archive",
    "oci_layout_files",
    "open_archive",
    "overlay_merge",
    "parse_layer",
    "rootfs_tar",
    "runc_spec",
    "runc_spec_json",
    "save_v12",
    "save_v25",
    "select",
    "snapshot",
    "tarfile_differential",
    "verify_image",
    "write_bundle",
    "write_oci_dir",
    "write_tree",
]
