"""Digests, diff_ids, ChainIDs and image IDs, computed exactly as Docker computes them."""

from __future__ import annotations

import hashlib
import re

from overlaysim.image.errors import BadDigest

_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
_ALG = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")


def parse(d: object, what: str = "digest") -> tuple[str, str]:
    """Split and validate ``alg:hex``; only sha256 and sha512 are accepted."""
    if not isinstance(d, str) or ":" not in d:
        raise BadDigest(f"{what}: {d!r} is not a digest")
    alg, enc = d.split(":", 1)
    if not _ALG.fullmatch(alg):
        raise BadDigest(f"{what}: {d!r} has an invalid algorithm")
    pat = _ENCODED.get(alg)
    if pat is None:
        raise BadDigest(f"{what}: unsupported digest algorithm {alg!r}")
    if not pat.fullmatch(enc):
        raise BadDigest(f"{what}: {d!r} is not a valid {alg} digest")
    return alg, enc


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(d: str) -> str:
    return d.split(":", 1)[1]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256(f"{out[-1]} {d}".encode()))
    return out


def image_id(config_bytes: bytes) -> str:
    """Docker's image ID: the digest of the config JSON bytes exactly as stored."""
    return sha256(config_bytes)


EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
"""diff_id of a tar holding only the two end blocks (1024 zero bytes), Docker's empty layer."""
