"""Typed errors of the FUSE front end: each is one line for the user, never a traceback."""

from __future__ import annotations

from overlaysim.errors import OverlaySimError, UsageError


class FuseUnavailable(UsageError):
    """libfuse3, /dev/fuse or fusermount3 is missing or refused: nothing was mounted."""


class MountError(UsageError):
    """The mount was refused (bad options, layers, mount point); nothing was mounted."""


class WriteBackError(OverlaySimError):
    """The upper (or work) dir could not be written back; the real dir was left as it was."""


class UnmountError(UsageError):
    """An unmount was refused (busy, not ours) or its daemon ended without a write-back."""
