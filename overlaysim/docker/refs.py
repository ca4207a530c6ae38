"""Image references as the docker CLI reads them (distribution/reference, simplified).

``busybox`` means ``docker.io/library/busybox:latest``; the daemon stores and prints the
*familiar* form (``busybox:latest``, ``me/app:1.0``, ``localhost:5000/x:y``), which is also
the key form of ``repositories.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from overlaysim.errors import DaemonError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
DEFAULT_DOMAIN = "docker.io"


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``domain/path`` with a tag and/or a digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return self.name

    def familiar(self) -> str:
        out = self.familiar_name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def full(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out


def parse(text: str, *, default_tag: bool = True) -> Ref:
    """``ParseNormalizedNamed`` (+ ``TagNameOnly`` when ``default_tag``)."""
    if not text or text != text.strip():
        raise DaemonError("invalid reference format")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise DaemonError("invalid reference format")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise DaemonError("invalid reference format")
    first, sep, remainder = rest.partition("/")
    if sep and (("." in first or ":" in first or first == "localhost") or first != first.lower()):
        domain, path = first, remainder
        if not re.fullmatch(_DOMAIN, domain):
            raise DaemonError("invalid reference format")
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if path != path.lower():
        raise DaemonError(f"invalid reference format: repository name ({path}) must be lowercase")
    if not _PATH.match(path):
        raise DaemonError("invalid reference format")
    if default_tag and tag is None and digest is None:
        tag = "latest"
    return Ref(domain, path, tag, digest)


def is_full_id(text: str) -> bool:
    t = text.removeprefix("sha256:")
    return bool(_HEX64.match(t))


def looks_like_id_prefix(text: str) -> bool:
    t = text.removeprefix("sha256:")
    return bool(re.fullmatch(r"[a-f0-9]{1,64}", t))
