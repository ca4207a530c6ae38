"""Resource limits for everything that reads images: one frozen dataclass, passed explicitly.

Why a single object: hostile archives attack several resources at once (a gzip bomb of tiny
entries with huge PAX records), so every reader checks the same budget and a caller can tighten
all of them for a test or relax one for a giant real image. Defaults are far above anything a
real image needs (security.md, policy 6) and far below what would exhaust the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from overlaysim.errors import LimitExceeded

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Configurable ceilings; hitting one raises :class:`LimitExceeded` naming it."""

    #: decompressed bytes of one layer (tar stream, including headers and sparse expansion)
    max_layer_bytes: int = 16 * GiB
    #: decompressed bytes of all layers of one image together
    max_total_bytes: int = 64 * GiB
    #: compressed-to-decompressed ratio above which a stream counts as a bomb (0 = off);
    #: only checked once more than ``ratio_grace_bytes`` came out.
    max_ratio: int = 1000
    ratio_grace_bytes: int = 64 * MiB
    #: entries (members) in one tar, metadata headers included
    max_entries: int = 2_000_000
    #: one path component / one whole path, in bytes (Linux NAME_MAX / PATH_MAX)
    max_name_bytes: int = 255
    max_path_bytes: int = 4096
    #: directory depth of a member path
    max_depth: int = 1024
    #: size of one PAX extended header or GNU long name (Go's archive/tar also stops at 1 MiB)
    max_pax_bytes: int = 1 * MiB
    #: fragments in one sparse map
    max_sparse_entries: int = 100_000
    #: symlinks followed while resolving one name (Linux MAXSYMLINKS)
    max_symlink_hops: int = 40
    #: hard links to one file within one layer
    max_links_per_inode: int = 65_000
    #: bytes and nesting depth of one JSON document (manifest, config, index)
    max_json_bytes: int = 8 * MiB
    max_json_depth: int = 64
    #: layers of one image (Docker's layer store caps at 125; the kernel at 500 lowers)
    max_layers: int = 500
    #: nesting of image indexes and manifest lists
    max_index_depth: int = 8
    #: manifests reachable from one index.json (all levels)
    max_manifests: int = 10_000
    #: zstd window (memory a decoder must allocate)
    max_zstd_window: int = 1 << 27
    #: members of an outer archive (docker save / oci-archive)
    max_archive_members: int = 1_000_000
    #: bytes of an outer archive kept in memory when it is compressed (not seekable)
    max_archive_bytes: int = 64 * GiB

    def but(self, **changes: int) -> Limits:
        """A copy with some limits changed (``Limits().but(max_entries=10)``)."""
        return replace(self, **changes)


DEFAULT_LIMITS = Limits()


def check(value: int, limit: int, what: str) -> None:
    """Raise LimitExceeded when ``value`` is above ``limit`` (both in the same unit)."""
    if value > limit:
        raise LimitExceeded(f"{what}: {value} exceeds the limit of {limit}")
