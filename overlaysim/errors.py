"""Typed errors for everything that is not a filesystem call.

Filesystem calls raise ``OSError(errno, message, path)`` exactly as Linux's ``os`` would;
these classes are for bad *input* (images, traces, world files, options), so that a caller
can tell "the kernel would refuse this" from "this file is not what it claims to be".
"""

from __future__ import annotations


class OverlaySimError(Exception):
    """Base of every non-``OSError`` error raised by overlaysim."""


# --- images (security.md policy, section 2) -------------------------------------------------
class ImageError(OverlaySimError):
    """An image, layer or archive is malformed or hostile; nothing was changed."""


class PathEscape(ImageError):
    """A member name or link target would leave the image root."""


class BadName(ImageError):
    """A member name is empty, contains NUL, or is otherwise unusable."""


class NameTooLong(ImageError):
    """A name component exceeds 255 bytes or a path 4096 bytes."""


class BadWhiteout(ImageError):
    """A whiteout marker is malformed (``.wh.``, ``.wh..``, an opaque look-alike...)."""


class DuplicateEntry(ImageError):
    """The same path appears twice in one layer in a way that changes meaning."""


class DanglingHardlink(ImageError):
    """A hard link points to a member that does not exist (yet) in the layer."""


class SymlinkLoop(ImageError):
    """Resolving a name inside the image followed more than 40 symlinks."""


class LimitExceeded(ImageError):
    """A configured resource limit (bytes, entries, depth, JSON size...) was hit."""


class Truncated(ImageError):
    """An archive or blob ends before its declared size."""


class DigestMismatch(ImageError):
    """A blob, layer or config does not hash to the digest that names it."""


class UnsupportedMediaType(ImageError):
    """A media type or archive shape overlaysim does not know."""


# --- other inputs -----------------------------------------------------------------------------
class TraceError(OverlaySimError):
    """A trace (JSONL or strace log) cannot be parsed."""


class WorldError(OverlaySimError):
    """A saved world file is missing, corrupt, or of an unknown version."""


class UsageError(OverlaySimError):
    """A request that makes no sense (unknown container, bad argument combination)."""


class TargetError(UsageError):
    """A fuzz target (``--against``) is unknown, unusable here, or broke its protocol."""


# --- docker / runc / skopeo commands ------------------------------------------------------------
class DaemonError(UsageError):
    """The simulated Docker daemon refused a request; the text is the daemon's own message."""


class RuntimeStateError(UsageError):
    """The simulated runc refused a request (unknown container, wrong state, bad bundle)."""
