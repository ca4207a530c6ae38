"""Is a manifest or index blob the kind of document its descriptor says it is?

One digest must have one reading (CVE-2021-41190): a blob that a "manifest" descriptor points
to but that holds ``manifests`` or calls itself an index, or an "index" blob that holds
``config``/``layers`` or calls itself a manifest, is refused, as containerd's
``validateMediaType`` refuses it. A blob without ``mediaType`` that holds both ``layers`` and
``manifests`` is refused whatever points to it. Within one kind (an OCI descriptor over a
Docker schema 2 manifest, as in go-containerregistry's test layouts) the descriptor is
respected and the disagreement is a finding, as the image-spec's "Media Type Conflicts" asks.
"""

from __future__ import annotations

from typing import Any

from overlaysim.image.errors import BadManifest
from overlaysim.image.findings import Findings
from overlaysim.image.model import INDEX_TYPES, MANIFEST_TYPES


def check_kind(
    doc: dict[str, Any], expected: str | None, what: str, findings: Findings, *, index: bool
) -> None:
    """Refuse ``doc`` when it reads as the other kind; note a same-kind ``mediaType`` clash.

    ``index`` is the kind the caller is about to read it as; ``expected`` the media type of
    the descriptor that led here (None for ``index.json``, which no descriptor names).
    """
    own = doc.get("mediaType")
    if own is not None and not isinstance(own, str):
        raise BadManifest(f"{what}: mediaType must be a string")
    as_manifest = "config" in doc or "layers" in doc or own in MANIFEST_TYPES
    as_index = "manifests" in doc or own in INDEX_TYPES
    if as_manifest and as_index:
        raise BadManifest(f"{what}: the document is both a manifest and an index (ambiguous)")
    if index and as_manifest:
        raise BadManifest(f"{what}: expected an index but found a manifest")
    if not index and as_index:
        raise BadManifest(f"{what}: expected a manifest but found an index")
    if own is not None and expected is not None and own != expected:
        findings.add(
            "media-type-mismatch",
            f"the document says {own!r}, its descriptor {expected!r}; the descriptor is used",
            what,
        )
