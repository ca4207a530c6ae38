"""The hostile corpus: every family of security.md, built in code, each with its expected outcome.

A case is a list of layer tars (applied as one image) or an image archive builder. ``strict``
is the typed error a strict import must raise (None: accepted); ``lenient`` the error that
even a lenient import must raise (None: neutralised); ``codes`` the finding codes the import
that succeeds must report.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import zstandard

from overlaysim.errors import (
    BadName,
    BadWhiteout,
    DanglingHardlink,
    DigestMismatch,
    DuplicateEntry,
    ImageError,
    LimitExceeded,
    NameTooLong,
    PathEscape,
    SymlinkLoop,
    Truncated,
    UnsupportedMediaType,
)
from overlaysim.image.errors import BadDigest, BadHeader, BadManifest
from overlaysim.image.limits import Limits
from tests.image import tarbuild as tb

T = tb.tar
M = tb.member
D = tb.dir_
S = tb.symlink
H = tb.hardlink
P = tb.pax


@dataclass
class LayerCase:
    id: str
    family: str
    layers: Callable[[], list[bytes]]
    strict: type[Exception] | None = None
    lenient: type[Exception] | None = None
    codes: set[str] = field(default_factory=set)
    limits: Limits = field(default_factory=Limits)


def L(*layers: bytes) -> Callable[[], list[bytes]]:
    return lambda: list(layers)


def _sparse_pax(real: int, frag: bytes) -> bytes:
    rec = {
        "GNU.sparse.major": "0",
        "GNU.sparse.minor": "1",
        "GNU.sparse.name": "big",
        "GNU.sparse.realsize": str(real),
        "GNU.sparse.numblocks": "1",
        "GNU.sparse.map": f"{real - len(frag)},{len(frag)}",
    }
    return T(P(rec), M("GNUSparseFile.0/big", frag))


def _many_sparse(n: int) -> bytes:
    rec = {
        "GNU.sparse.major": "0",
        "GNU.sparse.minor": "1",
        "GNU.sparse.name": "s",
        "GNU.sparse.realsize": str(2 * n),
        "GNU.sparse.numblocks": str(n),
        "GNU.sparse.map": ",".join(f"{2 * i},1" for i in range(n)),
    }
    return T(P(rec), M("GNUSparseFile.0/s", b"x" * n))


def _deep(n: int) -> bytes:
    return T(M("/".join(["d"] * n) + "/f", b"x"))


ESC = "../" * 6 + "etc/evil"

LAYER_CASES: list[LayerCase] = [
    # --- member names --------------------------------------------------------------------------
    LayerCase(
        "dotdot-escape", "names", L(T(M("../evil", b"x"))), PathEscape, codes={"name-escape"}
    ),
    LayerCase(
        "interior-dotdot-escape",
        "names",
        L(T(M("a/../../evil", b"x"))),
        PathEscape,
        codes={"name-escape"},
    ),
    LayerCase("bare-dotdot", "names", L(T(D(".."))), PathEscape, codes={"name-escape"}),
    LayerCase(
        "absolute-name", "names", L(T(M("/etc/passwd", b"x"))), None, codes={"absolute-name"}
    ),
    LayerCase(
        "interior-dotdot-inside", "names", L(T(M("a/../b", b"x"))), None, codes={"dotdot-name"}
    ),
    LayerCase("backslash", "names", L(T(M("..\\..\\evil", b"x"))), None, codes={"backslash-name"}),
    LayerCase("root-dot-slash", "names", L(T(D("./"), M("./f", b"x")))),
    LayerCase("root-empty-name", "names", L(T(D(""), M("f", b"x"))), None, codes={"root-entry"}),
    LayerCase("root-is-file", "names", L(T(M(".", b"x"))), BadName, codes={"root-not-dir"}),
    LayerCase(
        "nul-in-pax-path", "names", L(T(P(b"13 path=a\x00b\n"), M("x", b""))), BadHeader, BadHeader
    ),
    LayerCase(
        "nul-in-gnu-long-name",
        "names",
        L(T(tb.gnu_long(b"ok\x00../../evil"), M("x", b""))),
        None,
        codes={"nul-in-name"},
    ),
    LayerCase(
        "pax-path-escape",
        "names",
        L(T(P({"path": "../../x"}), M("x", b""))),
        PathEscape,
        codes={"name-escape"},
    ),
    LayerCase(
        "gnu-long-name-escape",
        "names",
        L(T(tb.gnu_long("../../" + "x" * 120), M("x", b""))),
        PathEscape,
        codes={"name-escape"},
    ),
    LayerCase(
        "component-too-long",
        "names",
        L(T(P({"path": "d/" + "n" * 256}), M("x", b""))),
        NameTooLong,
        NameTooLong,
    ),
    LayerCase(
        "path-too-long",
        "names",
        L(T(P({"path": "/".join(["a" * 200] * 21)}), M("x", b""))),
        NameTooLong,
        NameTooLong,
    ),
    LayerCase(
        "too-deep", "names", L(_deep(40)), LimitExceeded, LimitExceeded, limits=Limits(max_depth=32)
    ),
    # --- symlinks and hard links ---------------------------------------------------------------
    LayerCase(
        "write-through-symlink-same-layer",
        "links",
        L(T(D("etc/"), S("l", "/etc"), M("l/passwd", b"pw"))),
        None,
        codes={"through-symlink"},
    ),
    LayerCase(
        "relative-symlink-escape",
        "links",
        L(T(S("up", "../../../../.."), M("up/etc/x", b"x"))),
        PathEscape,
        codes={"symlink-escape", "through-symlink"},
    ),
    LayerCase(
        "symlink-to-root-across-layers",
        "links",
        L(T(S("l", "/")), T(M("l/x", b"x"))),
        None,
        codes={"through-symlink"},
    ),
    LayerCase(
        "symlink-standing-for-parent",
        "links",
        L(T(S("a", "."), M("a/a/a/f", b"x"))),
        None,
        codes={"through-symlink"},
    ),
    LayerCase(
        "symlink-loop",
        "links",
        L(T(S("a", "b"), S("b", "a"), M("a/f", b"x"))),
        SymlinkLoop,
        SymlinkLoop,
    ),
    LayerCase("symlink-empty-target", "links", L(T(S("l", ""))), BadName, codes={"empty-symlink"}),
    LayerCase(
        "symlink-target-too-long",
        "links",
        L(T(P({"linkpath": "x" * 5000}), S("l", "t"))),
        NameTooLong,
        NameTooLong,
    ),
    LayerCase(
        "hardlink-escape",
        "links",
        L(T(H("h", "../../etc/passwd"))),
        PathEscape,
        codes={"link-escape"},
    ),
    LayerCase(
        "hardlink-missing",
        "links",
        L(T(H("h", "nothere"))),
        DanglingHardlink,
        codes={"dangling-hardlink"},
    ),
    LayerCase(
        "hardlink-to-dir",
        "links",
        L(T(D("d/"), H("h", "d"))),
        DanglingHardlink,
        codes={"hardlink-to-dir"},
    ),
    LayerCase(
        "hardlink-to-symlink",
        "links",
        L(T(S("s", "x"), H("h", "s"))),
        None,
        codes={"hardlink-to-symlink"},
    ),
    LayerCase("hardlink-chain", "links", L(T(M("f", b"x"), H("a", "f"), H("b", "a")))),
    LayerCase("hardlink-absolute-target", "links", L(T(M("f", b"x"), H("h", "/f")))),
    LayerCase(
        "hardlink-forward-reference",
        "links",
        L(T(H("h", "f"), M("f", b"x"))),
        DanglingHardlink,
        codes={"dangling-hardlink"},
    ),
    LayerCase(
        "hardlink-through-symlinked-dir",
        "links",
        L(T(D("real/"), M("real/f", b"x"), S("d", "real"), H("h", "d/f"))),
        DanglingHardlink,
        codes={"dangling-hardlink"},
    ),
    LayerCase(
        "hardlink-to-lower-layer",
        "links",
        L(T(M("f", b"x")), T(H("h", "f"))),
        DanglingHardlink,
        codes={"dangling-hardlink"},
    ),
    # --- whiteouts -----------------------------------------------------------------------------
    LayerCase(
        "whiteout-dot-dot", "whiteouts", L(T(M("d/.wh..."))), BadWhiteout, codes={"bad-whiteout"}
    ),
    LayerCase("whiteout-dot", "whiteouts", L(T(M("d/.wh.."))), BadWhiteout, codes={"bad-whiteout"}),
    LayerCase("whiteout-bare", "whiteouts", L(T(M("d/.wh."))), BadWhiteout, codes={"bad-whiteout"}),
    LayerCase(
        "opaque-lookalike-one-dot",
        "whiteouts",
        L(T(M("d/.wh..wh.opq"))),
        BadWhiteout,
        codes={"whiteout-meta"},
    ),
    LayerCase(
        "opaque-lookalike-suffix",
        "whiteouts",
        L(T(M("d/.wh..wh..opqX"))),
        BadWhiteout,
        codes={"whiteout-meta"},
    ),
    LayerCase(
        "plnk-not-at-root",
        "whiteouts",
        L(T(M("d/.wh..wh..plnk"))),
        BadWhiteout,
        codes={"whiteout-meta"},
    ),
    LayerCase(
        "aufs-meta-at-root",
        "whiteouts",
        L(T(D(".wh..wh.plnk/"), M(".wh..wh.aufs"), M("f", b"x"))),
        None,
        codes={"aufs-meta"},
    ),
    LayerCase(
        "opaque-after-children",
        "whiteouts",
        L(T(D("d/"), M("d/f", b"x"), M("d/.wh..wh..opq"))),
        None,
        codes={"opaque-after-children"},
    ),
    LayerCase(
        "whiteout-then-file",
        "whiteouts",
        L(T(M("f", b"lower")), T(M(".wh.f"), M("f", b"up"))),
        DuplicateEntry,
        codes={"same-layer-conflict"},
    ),
    LayerCase(
        "file-then-whiteout",
        "whiteouts",
        L(T(M("f", b"lower")), T(M("f", b"up"), M(".wh.f"))),
        DuplicateEntry,
        codes={"same-layer-conflict"},
    ),
    LayerCase(
        "whiteout-of-missing",
        "whiteouts",
        L(T(M("a", b"x")), T(M(".wh.nothere"))),
        None,
        codes={"whiteout-of-missing"},
    ),
    LayerCase(
        "type-change-file-to-dir", "whiteouts", L(T(M("x", b"file")), T(M("x/y", b"in dir")))
    ),
    LayerCase(
        "naive-diff-whiteout",
        "whiteouts",
        L(T(M("f", b"x")), T(tb.header(".wh.f", typeflag=b"\x00", mode=0))),
        None,
        codes={"naive-whiteout"},
    ),
    LayerCase(
        "whiteout-with-data",
        "whiteouts",
        L(T(M("f", b"x")), T(M(".wh.f", b"payload"))),
        None,
        codes={"whiteout-data"},
    ),
    LayerCase(
        "whiteout-below-file",
        "whiteouts",
        L(T(M("f", b"x"), M("f/.wh.g"))),
        DuplicateEntry,
        codes={"same-layer-conflict"},
    ),
    LayerCase(
        "entry-below-whiteout",
        "whiteouts",
        L(T(D("d/"), M("d/a", b"1")), T(M(".wh.d"), M("d/b", b"2"))),
        DuplicateEntry,
        codes={"same-layer-conflict"},
    ),
    LayerCase(
        "opaque-at-root",
        "whiteouts",
        L(T(M("old", b"1")), T(M(".wh..wh..opq"), M("new", b"2"))),
        None,
        codes={"opaque-root"},
    ),
    LayerCase(
        "whiteout-as-directory",
        "whiteouts",
        L(T(M("f", b"x")), T(D(".wh.f/"))),
        None,
        codes={"whiteout-type"},
    ),
    # --- overlay-format injection -----------------------------------------------------------------
    LayerCase(
        "pax-trusted-overlay-opaque",
        "overlay",
        L(
            T(D("d/"), M("d/low", b"1")),
            T(P({"SCHILY.xattr.trusted.overlay.opaque": "y"}), D("d/")),
        ),
        None,
        codes={"overlay-xattr"},
    ),
    LayerCase(
        "pax-trusted-overlay-redirect",
        "overlay",
        L(T(P({"SCHILY.xattr.trusted.overlay.redirect": "/etc"}), D("d/"))),
        None,
        codes={"overlay-xattr"},
    ),
    LayerCase(
        "pax-user-overlay-whiteout",
        "overlay",
        L(T(M("f", b"x")), T(P({"SCHILY.xattr.user.overlay.whiteout": ""}), M("f", b""))),
        None,
        codes={"overlay-xattr"},
    ),
    LayerCase(
        "pax-xattr-whiteout-file",
        "overlay",
        L(T(M("g", b"x")), T(P({"SCHILY.xattr.trusted.overlay.whiteout": "y"}), M("g", b""))),
        None,
        codes={"overlay-xattr"},
    ),
    LayerCase(
        "char-0-0-in-oci-layer",
        "overlay",
        L(T(M("f", b"x")), T(tb.header("f", typeflag=b"3", mode=0o600))),
        None,
        codes={"char-0-0"},
    ),
    # --- metadata --------------------------------------------------------------------------------
    LayerCase(
        "setuid-root-shell",
        "metadata",
        L(T(M("bin/sh", b"#!", mode=0o4755))),
        None,
        codes={"setid"},
    ),
    LayerCase(
        "file-capability",
        "metadata",
        L(
            T(
                P({"SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16}),
                M("ping", b"x"),
            )
        ),
        None,
        codes={"file-capability"},
    ),
    LayerCase(
        "block-device",
        "metadata",
        L(T(tb.header("dev/sda", typeflag=b"4", devmajor=8, devminor=0))),
        None,
        codes={"device-node"},
    ),
    LayerCase(
        "uid-out-of-range",
        "metadata",
        L(T(P({"uid": str(1 << 32)}), M("f", b"x"))),
        BadHeader,
        codes={"bad-owner"},
    ),
    LayerCase("large-uid", "metadata", L(T(M("f", b"x", uid=100000))), None, codes={"large-id"}),
    LayerCase(
        "negative-mtime",
        "metadata",
        L(T(P({"mtime": "-100"}), M("f", b"x"))),
        None,
        codes={"negative-mtime"},
    ),
    LayerCase(
        "xattr-without-namespace",
        "metadata",
        L(T(P({"SCHILY.xattr.foo": "bar"}), M("f", b"x"))),
        BadName,
        codes={"xattr-namespace"},
    ),
    LayerCase(
        "xattr-value-too-large",
        "metadata",
        L(T(P({"SCHILY.xattr.user.big": "v" * 70000}), M("f", b"x"))),
        LimitExceeded,
        LimitExceeded,
    ),
    # --- parser differentials ----------------------------------------------------------------------
    LayerCase(
        "duplicate-file",
        "parser",
        L(T(M("f", b"one"), M("f", b"two"))),
        DuplicateEntry,
        codes={"same-layer-conflict"},
    ),
    LayerCase(
        "duplicate-dir",
        "parser",
        L(T(D("d/"), D("d/", mode=0o700))),
        DuplicateEntry,
        codes={"same-layer-conflict"},
    ),
    LayerCase(
        "pax-vs-ustar-name",
        "parser",
        L(T(P({"path": "real-name"}), M("decoy-name", b"x"))),
        None,
        codes={"pax-name-mismatch"},
    ),
    LayerCase(
        "gnu-and-pax-name",
        "parser",
        L(T(P({"path": "from-pax"}), tb.gnu_long("from-gnu"), M("x", b""))),
        None,
        codes={"gnu-and-pax-name"},
    ),
    LayerCase("sparse-file", "parser", L(_sparse_pax(4096, b"tail")), None, codes={"sparse"}),
    LayerCase("truncated-data", "parser", L(T(M("f", b"x" * 2000))[:1000]), Truncated, Truncated),
    LayerCase("truncated-header", "parser", L(T(M("f", b"x"))[:300]), Truncated, Truncated),
    LayerCase(
        "eof-inside-padding", "parser", L(T(M("f", b"x"))[:700]), None, codes={"no-end-marker"}
    ),
    LayerCase("bad-checksum", "parser", L(T(tb.header("f", chksum=1))), BadHeader, BadHeader),
    LayerCase(
        "trailing-garbage",
        "parser",
        L(T(M("f", b"x")) + b"hidden entry"),
        None,
        codes={"trailing-garbage"},
    ),
    LayerCase(
        "pax-global-header",
        "parser",
        L(T(P({"path": "elsewhere"}, typeflag=b"g", name="pax_global_header"), M("f", b"x"))),
        None,
        codes={"pax-global-header"},
    ),
    LayerCase(
        "zero-block-then-header",
        "parser",
        L(M("a", b"") + b"\x00" * 512 + M("b", b"")),
        BadHeader,
        BadHeader,
    ),
    LayerCase(
        "contiguous-file-type",
        "parser",
        L(T(M("f", b"x", typeflag=b"7"))),
        UnsupportedMediaType,
        codes={"type-7"},
    ),
    LayerCase(
        "volume-header-type",
        "parser",
        L(T(M("vol", b"", typeflag=b"V"))),
        UnsupportedMediaType,
        codes={"odd-type"},
    ),
    LayerCase("no-end-marker", "parser", L(M("f", b"x")), None, codes={"no-end-marker"}),
    # --- resource exhaustion ----------------------------------------------------------------------
    LayerCase(
        "gzip-bomb",
        "resources",
        L(gzip.compress(T(M("z", b"\x00" * (8 << 20))), mtime=0)),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_layer_bytes=1 << 20),
    ),
    LayerCase(
        "zstd-ratio-bomb",
        "resources",
        L(zstandard.ZstdCompressor(level=19).compress(T(M("z", b"\x00" * (24 << 20))))),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_ratio=50, ratio_grace_bytes=1 << 20),
    ),
    LayerCase(
        "huge-sparse-file",
        "resources",
        L(_sparse_pax(1 << 40, b"x")),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_layer_bytes=64 << 20),
    ),
    LayerCase(
        "many-sparse-fragments",
        "resources",
        L(_many_sparse(300)),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_sparse_entries=100),
    ),
    LayerCase(
        "many-entries",
        "resources",
        L(T(*[M(f"f{i}", b"") for i in range(300)])),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_entries=100),
    ),
    LayerCase(
        "huge-pax-record",
        "resources",
        L(T(P({"comment": "c" * (80 << 10)}), M("f", b""))),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_pax_bytes=64 << 10),
    ),
    LayerCase(
        "many-hardlinks",
        "resources",
        L(T(M("f", b"x"), *[H(f"h{i}", "f") for i in range(50)])),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_links_per_inode=20),
    ),
    LayerCase(
        "huge-gnu-long-name",
        "resources",
        L(T(tb.gnu_long("x" * (80 << 10)), M("f", b""))),
        LimitExceeded,
        LimitExceeded,
        limits=Limits(max_pax_bytes=64 << 10),
    ),
]


# --- image-level cases (archives on disk) --------------------------------------------------------
def _archive(tmp: str, members: list[bytes]) -> str:
    path = os.path.join(tmp, "image.tar")
    with open(path, "wb") as f:
        f.write(T(*members))
    return path


def _save(
    tmp: str,
    *,
    layers: list[bytes] | None = None,
    cfg_patch: dict | None = None,
    paths: list[str] | None = None,
    diff_ids: list[str] | None = None,
    cfg_name: str | None = None,
    raw_cfg: bytes | None = None,
    manifest: object = None,
    extra: list[bytes] | None = None,
) -> str:  # type: ignore[type-arg]
    layers = layers if layers is not None else [T(M("f", b"x"))]
    ids = (
        diff_ids
        if diff_ids is not None
        else ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    )
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}}
    cfg.update(cfg_patch or {})
    cb = raw_cfg if raw_cfg is not None else json.dumps(cfg).encode()
    cname = cfg_name or hashlib.sha256(cb).hexdigest() + ".json"
    lpaths = paths or [f"l{i}/layer.tar" for i in range(len(layers))]
    members = (
        [M(cname, cb)] + [M(f"l{i}/layer.tar", x) for i, x in enumerate(layers)] + (extra or [])
    )
    man = (
        manifest
        if manifest is not None
        else [{"Config": cname, "RepoTags": ["t:1"], "Layers": lpaths}]
    )
    members.append(M("manifest.json", json.dumps(man).encode()))
    return _archive(tmp, members)


def _oci(
    tmp: str,
    *,
    index: dict | None = None,
    blobs: dict[str, bytes] | None = None,
    layout: bytes = b'{"imageLayoutVersion":"1.0.0"}',
    nested: int = 0,
    layer_type: str = "application/vnd.oci.image.layer.v1.tar",
    size_delta: int = 0,
) -> str:  # type: ignore[type-arg]
    blobs = dict(blobs or {})
    layer = T(M("f", b"x"))
    did = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [did]}}
    ).encode()
    cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
    man = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cd,
                "size": len(cfg),
            },
            "layers": [{"mediaType": layer_type, "digest": did, "size": len(layer) + size_delta}],
        }
    ).encode()
    md = "sha256:" + hashlib.sha256(man).hexdigest()
    blobs.update({did: layer, cd: cfg, md: man})
    desc = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md,
        "size": len(man),
    }
    for _ in range(nested):
        idx = json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()
        d = "sha256:" + hashlib.sha256(idx).hexdigest()
        blobs[d] = idx
        desc = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d,
            "size": len(idx),
        }
    index = index if index is not None else {"schemaVersion": 2, "manifests": [desc]}
    members = [M("oci-layout", layout), M("index.json", json.dumps(index).encode())]
    members += [M("blobs/sha256/" + k.split(":")[1], v) for k, v in blobs.items()]
    return _archive(tmp, members)


@dataclass
class ImageCase:
    id: str
    build: Callable[[str], str]
    error: type[Exception]
    limits: Limits = field(default_factory=Limits)


_BAD = "sha256:" + "0" * 64
IMAGE_CASES: list[ImageCase] = [
    ImageCase(
        "manifest-layer-path-escape", lambda t: _save(t, paths=["../../../etc/passwd"]), PathEscape
    ),
    ImageCase(
        "manifest-config-path-escape",
        lambda t: _save(t, manifest=[{"Config": "../c.json", "RepoTags": None, "Layers": []}]),
        PathEscape,
    ),
    ImageCase(
        "config-name-digest-mismatch",
        lambda t: _save(t, cfg_name="0" * 64 + ".json"),
        DigestMismatch,
    ),
    ImageCase("diff-id-mismatch", lambda t: _save(t, diff_ids=[_BAD]), DigestMismatch),
    ImageCase("layer-count-mismatch", lambda t: _save(t, diff_ids=[_BAD, _BAD]), BadManifest),
    ImageCase("missing-layer", lambda t: _save(t, paths=["nothere/layer.tar"]), ImageError),
    ImageCase(
        "config-too-large",
        lambda t: _save(t, cfg_patch={"pad": "x" * 5000}),
        LimitExceeded,
        Limits(max_json_bytes=4096),
    ),
    ImageCase(
        "config-too-deep",
        lambda t: _save(t, raw_cfg=b"[" * 200 + b"]" * 200, cfg_name="c.json"),
        LimitExceeded,
    ),
    ImageCase("manifest-not-array", lambda t: _save(t, manifest={"Config": "x"}), BadManifest),
    ImageCase("invalid-diff-id-string", lambda t: _save(t, diff_ids=["sha256:xyz"]), BadDigest),
    ImageCase(
        "layer-symlink-out-of-archive",
        lambda t: _save(
            t, paths=["evil/layer.tar"], extra=[S("evil/layer.tar", "../../../../etc/passwd")]
        ),
        PathEscape,
    ),
    ImageCase(
        "layer-symlink-loop",
        lambda t: _save(
            t,
            paths=["a/layer.tar"],
            extra=[S("a/layer.tar", "../b/layer.tar"), S("b/layer.tar", "../a/layer.tar")],
        ),
        SymlinkLoop,
    ),
    ImageCase("oci-blob-size-mismatch", lambda t: _oci(t, size_delta=7), DigestMismatch),
    ImageCase("oci-nested-index-too-deep", lambda t: _oci(t, nested=12), LimitExceeded),
    ImageCase(
        "oci-unknown-layer-type",
        lambda t: _oci(t, layer_type="application/x-evil"),
        UnsupportedMediaType,
    ),
    ImageCase(
        "oci-layout-version",
        lambda t: _oci(t, layout=b'{"imageLayoutVersion":"9.9.9"}'),
        UnsupportedMediaType,
    ),
    ImageCase(
        "oci-missing-blob",
        lambda t: _oci(
            t,
            index={
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": _BAD,
                        "size": 10,
                    }
                ],
            },
        ),
        ImageError,
    ),
    ImageCase(
        "oci-bad-digest-algorithm",
        lambda t: _oci(
            t,
            index={
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "md5:abc",
                        "size": 10,
                    }
                ],
            },
        ),
        BadDigest,
    ),
    ImageCase(
        "not-an-archive",
        lambda t: _archive(t, [b"PK\x03\x04 zip, not tar" * 40]),
        UnsupportedMediaType,
    ),
]
