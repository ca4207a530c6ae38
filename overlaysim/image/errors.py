"""Finer image errors, all subclasses of ``overlaysim.errors.ImageError``.

Callers that only care "is this image bad?" catch ImageError; tests and the CLI can tell a
checksum failure from a corrupt gzip stream or a manifest that is not what it claims.
"""

from __future__ import annotations

from overlaysim.errors import ImageError


class BadHeader(ImageError):
    """A tar header Go's reader refuses (checksum, number field, PAX record, sparse map)."""


class CorruptData(ImageError):
    """A compressed stream is not valid for its format (bad header, CRC, garbage after it)."""


class BadDigest(ImageError):
    """A digest string is not ``algorithm:encoded`` of a supported algorithm."""


class BadManifest(ImageError):
    """A JSON document (manifest, index, config, manifest.json) is invalid or has a bad shape."""
