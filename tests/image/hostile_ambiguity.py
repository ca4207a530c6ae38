"""Issue 11's hardening classes: inputs that real tools read two ways, with their decisions.

Observed on Docker 20.10.24 (overlay2, ``docker load`` then ``docker export``) and read in
moby's go-archive and containerd's archive/tar.go:
- an empty member name is skipped; a trailing ``/`` on a non-directory is cleaned away and
  the type kept (GNU tar and Python's tarfile try to open ``f/`` and fail);
- any repeated name in one layer fails ``docker load`` ("duplicates of file paths not
  supported", tar-split); the appliers themselves (and containerd) let the later entry win;
- a whiteout with nothing beneath it stays in the diff dir as a char 0/0 device; a container
  never sees it (the kernel lists its name in a dir only that layer has, lstat is ENOENT);
- ``a/.wh.b/c`` makes a directory literally named ``.wh.b`` (only the last component is
  checked), which the next diff of that tree writes back as a whiteout of ``a/b``;
- containerd refuses a manifest/index blob that reads as the other kind (CVE-2021-41190).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from overlaysim.errors import BadName, BadWhiteout, DuplicateEntry
from overlaysim.image.errors import BadManifest
from overlaysim.image.model import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from tests.image import tarbuild as tb
from tests.image.hostile_cases import ImageCase, L, LayerCase, _archive

T, M, D, S, H, P = tb.tar, tb.member, tb.dir_, tb.symlink, tb.hardlink, tb.pax

BOTTOM_WHITEOUT = T(D("d/"), M("d/.wh.gone"), M("d/keep", b"k"), M(".wh.top"))

AMBIGUOUS_LAYER_CASES: list[LayerCase] = [
    # --- 1. names: empty, or a directory's trailing '/' on something else -------------------
    LayerCase(
        "empty-name-file", "names", L(T(M("", b"x"), M("ok", b"y"))), BadName, None, {"empty-name"}
    ),
    LayerCase("empty-name-symlink", "names", L(T(S("", "x"))), BadName, None, {"empty-name"}),
    LayerCase("slash-on-file", "names", L(T(M("f/", b"x"))), BadName, None, {"slash-non-dir"}),
    LayerCase("slash-on-symlink", "names", L(T(S("l/", "t"))), BadName, None, {"slash-non-dir"}),
    LayerCase(
        "slash-on-hardlink",
        "names",
        L(T(M("f", b"x"), H("h/", "f"))),
        BadName,
        None,
        {"slash-non-dir"},
    ),
    LayerCase(
        "slash-on-fifo",
        "names",
        L(T(tb.header("p/", typeflag=b"6"))),
        BadName,
        None,
        {"slash-non-dir"},
    ),
    LayerCase(
        "slash-on-pax-path",
        "names",
        L(T(P({"path": "f/"}), M("decoy", b"x"))),
        BadName,
        None,
        {"slash-non-dir"},
    ),
    LayerCase(
        "slash-on-whiteout-file",
        "names",
        L(T(M("f", b"x")), T(M(".wh.f/"))),
        BadName,
        None,
        {"slash-non-dir"},
    ),
    # --- 2. duplicates that disagree on type or attributes -----------------------------------
    LayerCase(
        "dup-file-then-dir",
        "parser",
        L(T(M("x", b"1"), D("x/"), M("x/k", b"k"))),
        DuplicateEntry,
        None,
        {"same-layer-conflict"},
    ),
    LayerCase(
        "dup-dir-then-file",
        "parser",
        L(T(D("x/"), M("x/k", b"k"), M("x", b"1"))),
        DuplicateEntry,
        None,
        {"same-layer-conflict"},
    ),
    LayerCase(
        "dup-file-two-modes",
        "parser",
        L(T(M("x", b"1", mode=0o644), M("x", b"1", mode=0o4755))),
        DuplicateEntry,
        None,
        {"same-layer-conflict"},
    ),
    LayerCase(
        "dup-dir-two-owners",
        "parser",
        L(T(D("d/"), D("d/", uid=1000))),
        DuplicateEntry,
        None,
        {"same-layer-conflict"},
    ),
    LayerCase(
        "dup-root-two-modes",
        "parser",
        L(T(D("./"), D("./", mode=0o777))),
        DuplicateEntry,
        None,
        {"same-layer-conflict"},
    ),
    LayerCase(
        "dup-dot-slash-spelling",
        "parser",
        L(T(M("./f", b"1"), M("f", b"2"))),
        DuplicateEntry,
        None,
        {"same-layer-conflict"},
    ),
    LayerCase(
        "dup-dir-identical",
        "parser",
        L(T(D("d/"), M("d/f", b"x"), D("d/"))),
        None,
        None,
        {"duplicate-dir"},
    ),
    # --- 3. whiteouts with nothing beneath, and type changes across layers --------------------
    LayerCase(
        "whiteout-in-bottom-layer",
        "whiteouts",
        L(BOTTOM_WHITEOUT),
        None,
        None,
        {"whiteout-of-missing"},
    ),
    LayerCase(
        "file-becomes-dir-next-layer", "whiteouts", L(T(M("x", b"1")), T(D("x/"), M("x/k", b"k")))
    ),
    # --- 4. '.wh.' on a directory component ---------------------------------------------------
    LayerCase(
        "whiteout-prefix-on-parent",
        "whiteouts",
        L(T(D("a/"), M("a/b", b"low")), T(M("a/.wh.b/c", b"x"))),
        BadWhiteout,
        None,
        {"whiteout-in-parent"},
    ),
    LayerCase(
        "whiteout-prefix-deep-parent",
        "whiteouts",
        L(T(M("a/.wh.b/c/d", b"x"))),
        BadWhiteout,
        None,
        {"whiteout-in-parent"},
    ),
    LayerCase(
        "opaque-name-on-parent",
        "whiteouts",
        L(T(M("a/.wh..wh..opq/c", b"x"))),
        BadWhiteout,
        None,
        {"whiteout-in-parent"},
    ),
    LayerCase(
        "aufs-plnk-member",
        "whiteouts",
        L(T(D(".wh..wh.plnk/"), M(".wh..wh.plnk/123", b"data"), H("h", ".wh..wh.plnk/123"))),
        None,
        None,
        {"aufs-meta", "aufs-hardlink"},
    ),
]


# --- 5. OCI documents that read as the other kind ----------------------------------------------
def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _layout(
    tmp: str,
    *,
    man_patch: dict[str, Any] | None = None,
    desc_type: str = OCI_MANIFEST,
    index_patch: dict[str, Any] | None = None,
) -> str:
    """A one-image OCI layout tar; ``None`` in a patch removes that key."""
    layer = T(M("f", b"x"))
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    ).encode()
    man: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(cfg), "size": len(cfg)},
        "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
    }
    man.update(man_patch or {})
    mb = json.dumps({k: v for k, v in man.items() if v is not None}).encode()
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": desc_type, "digest": _digest(mb), "size": len(mb)}],
    }
    index.update(index_patch or {})
    blobs = {_digest(x): x for x in (layer, cfg, mb)}
    members = [M("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    members.append(
        M("index.json", json.dumps({k: v for k, v in index.items() if v is not None}).encode())
    )
    members += [M("blobs/sha256/" + k.split(":")[1], v) for k, v in blobs.items()]
    return _archive(tmp, members)


_NESTED = [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 2}]
AMBIGUOUS_IMAGE_CASES: list[ImageCase] = [
    ImageCase(
        "oci-manifest-descriptor-over-an-index",
        lambda t: _layout(
            t,
            man_patch={
                "mediaType": OCI_INDEX,
                "manifests": _NESTED,
                "config": None,
                "layers": None,
            },
        ),
        BadManifest,
    ),
    ImageCase(
        "oci-untyped-blob-with-layers-and-manifests",
        lambda t: _layout(t, man_patch={"mediaType": None, "manifests": _NESTED}),
        BadManifest,
    ),
    ImageCase(
        "oci-untyped-blob-with-both-under-index-descriptor",
        lambda t: _layout(
            t, man_patch={"mediaType": None, "manifests": _NESTED}, desc_type=OCI_INDEX
        ),
        BadManifest,
    ),
    ImageCase(
        "oci-index-descriptor-over-a-manifest",
        lambda t: _layout(t, desc_type=OCI_INDEX),
        BadManifest,
    ),
    ImageCase(
        "oci-manifest-calling-itself-an-index",
        lambda t: _layout(t, man_patch={"mediaType": OCI_INDEX}),
        BadManifest,
    ),
    ImageCase(
        "oci-index-json-with-layers",
        lambda t: _layout(t, index_patch={"layers": [], "config": {}}),
        BadManifest,
    ),
]
