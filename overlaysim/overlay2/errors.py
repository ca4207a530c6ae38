"""Typed errors of the overlay2 driver and the layer store, with Docker's own messages.

Each is an ``OverlaySimError`` (via ``UsageError``), so the CLI prints it as one line; the
text is what dockerd returns (``max depth exceeded``, ``layer does not exist``...), so a user
who knows Docker recognises it.
"""

from __future__ import annotations

from overlaysim.errors import UsageError


class StorageError(UsageError):
    """Base of the graph driver and layer store errors."""


class MaxDepthExceeded(StorageError):
    """A layer chain would exceed 128 lower entries (driver) or 125 layers (layer store)."""

    def __init__(self, message: str = "max depth exceeded") -> None:
        super().__init__(message)


class LayerDoesNotExist(StorageError):
    """No layer (driver id or chain id) of that name."""

    def __init__(self, message: str = "layer does not exist") -> None:
        super().__init__(message)


class LayerNotRetained(StorageError):
    """A release without a matching reference."""

    def __init__(self, message: str = "layer not retained") -> None:
        super().__init__(message)


class MountDoesNotExist(StorageError):
    """No read-write layer of that name."""

    def __init__(self, message: str = "mount does not exist") -> None:
        super().__init__(message)


class MountNameConflict(StorageError):
    """A read-write layer of that name exists already."""

    def __init__(self, message: str = "mount already exists with name") -> None:
        super().__init__(message)


class MountTooLarge(StorageError):
    """Even the relative form of the mount options does not fit in a page."""


class LayerExists(StorageError):
    """The driver was asked to create a layer directory that is already there."""
