"""Finer image errors, all subclasses of ``overlaysim.errors.ImageError``.

Callers that only care "is this image bad?" catch ImageError; tests and the CLI can tell a
checksum failure from a corrupt gzip stream or a manifest that is not what it claims.
"""

from __future__ import annotations

from overlaysim.errors import ImageError, UnsupportedMediaType


class BadHeader(ImageError):
    """A tar header Go's reader refuses (checksum, number field, PAX record, sparse map)."""


class CorruptData(ImageError):
    """A compressed stream is not valid for its format (bad header, CRC, garbage after it)."""


class BadDigest(ImageError):
    """A digest string is not ``algorithm:encoded`` of a supported algorithm."""


class BadManifest(ImageError):
    """A JSON document (manifest, index, config, manifest.json) is invalid or has a bad shape."""


class MissingMember(UnsupportedMediaType):
    """An archive lacks a file a reader needs; ``member`` is its path inside the archive
    (dockerd reports it as ``open <its temp dir>/<member>: no such file or directory``)."""

    def __init__(self, message: str, member: str) -> None:
        super().__init__(message)
        self.member = member


class NotATar(UnsupportedMediaType):
    """The input is neither a tar archive (plain or compressed) nor an image directory."""
