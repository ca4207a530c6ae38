"""The Docker version the simulated machine speaks as: every fact that differs, in one place.

A teacher compares the simulator with the dockerd students have, and Docker changed its face
over the years: ``docker save`` writes an OCI layout since 25, ``image inspect`` dropped
``VirtualSize`` (API 1.44) and ``Container``/``ContainerConfig`` (1.45) and now omits empty
config fields, the docker CLI stopped turning a 404 into ``Error: No such image: NAME``,
``docker info`` lost its ``Registry:`` line. Code that differs asks :func:`current` for a
:class:`DockerVersion` and reads a flag; nothing else compares version strings.

The setting is ``overlaysim docker --docker-version V`` or ``$OVERLAYSIM_DOCKER_VERSION``;
``20.10`` and ``28`` (any release of those series) are known, ``28`` is the default. The
``20.10`` profile is the judge of the test suite, Debian 12's ``docker.io`` 20.10.24+dfsg1
(its ``docker version`` values as observed); ``28`` is upstream's 28.5.1 (moby/cli tags:
commits, Go and API versions from the release, component versions from its installers).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass

from overlaysim.errors import UsageError

ENV = "OVERLAYSIM_DOCKER_VERSION"


class UnknownDockerVersion(UsageError):
    """The requested Docker version has no profile here."""


@dataclass(frozen=True)
class Component:
    """A line group of ``docker version``'s Server block (containerd, runc, docker-init)."""

    name: str
    version: str
    commit: str


@dataclass(frozen=True)
class DockerVersion:
    """What one Docker release shows; flags name the behaviour, not the version."""

    series: str  # "20.10", "28": what the setting accepts
    version: str  # dockerversion.Version: `docker version`, `info`, a commit's docker_version
    api_version: str
    min_api_version: str
    go_version: str
    cli_commit: str
    engine_commit: str
    built: str  # BuildTime as `docker version` prints it
    platform: str  # "Docker Engine - Community" after "Client:"/"Server:", or ""
    client_experimental: bool  # the client block of `docker version` has "Experimental:"
    components: tuple[Component, ...]
    runtimes: tuple[str, ...]
    seccomp_profile: str  # the profile name `docker info` shows under Security Options
    insecure_registries: tuple[str, ...]
    # --- behaviour ------------------------------------------------------------------------------
    save_layout: str  # "v1.2" (legacy docker save) or "v25" (OCI layout + manifest.json)
    inspect_legacy_fields: bool  # API < 1.44: VirtualSize, Container, ContainerConfig
    inspect_full_config: bool  # API < 1.50: every container.Config field, "Config" in place
    cli_wraps_not_found: bool  # the CLI prints a 404 as "Error: No such image: NAME"
    info_client_version: bool  # `docker info`'s Client block starts with " Version:"
    info_registry_line: bool  # `docker info` prints " Registry:" and an empty " Labels:"
    engine_id_uuid: bool  # the engine ID is a UUID (23+), else a libtrust key ID
    container_layer_id: bool  # a container's GraphDriver.Data has "ID" (its layer's name, 28+)
    driver_status_metacopy: bool  # overlay2's `docker info` lines include "Using metacopy"
    extra_log_drivers: tuple[str, ...]  # log drivers beyond today's set (logentries: < 25)
    load_rejects_null_manifest: bool  # `docker load` of a "null" manifest.json fails (else no-op)
    missing_time_is_epoch: bool  # an image/history without "created" is 1970 (28), else year 1
    history_hides_old_times: bool  # `docker history` shows N/A for times <= 1970 (CLI 23+)
    # archive headers of commit/export/save: S_IF* bits in modes and looked-up user names
    # (Go's FileInfoHeader + fillGo18FileTypeBits, Docker <= 22)
    tar_legacy_headers: bool = False
    network_default_mode: str = "bridge"  # HostConfig.NetworkMode without --network
    format_json_shorthand: bool = True  # `--format json` means {{json .}} (CLI 24+)
    images_quiet_unique: bool = True  # `docker images -q` prints each image ID once
    # the daemon's texts before moby 23: "Container X is not running", "You cannot remove a
    # running container X. ..."; the CLI's create failed like any command (exit 1, no
    # "docker:" prefix) where run exits 125
    legacy_container_errors: bool = False

    @property
    def label(self) -> str:
        return f"Docker {self.version}"


V20_10 = DockerVersion(
    series="20.10",
    version="20.10.24+dfsg1",
    api_version="1.41",
    min_api_version="1.12",
    go_version="go1.19.8",
    cli_commit="297e128",
    engine_commit="5d6db84",
    built="Thu May  7 21:09:36 2026",
    platform="",
    client_experimental=True,
    components=(
        Component("containerd", "1.6.20~ds1", "1.6.20~ds1-1+deb12u3"),
        Component("runc", "1.1.5+ds1", "1.1.5+ds1-1+deb12u1"),
        Component("docker-init", "0.19.0", ""),
    ),
    runtimes=("io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"),
    seccomp_profile="default",
    insecure_registries=("127.0.0.0/8",),
    save_layout="v1.2",
    inspect_legacy_fields=True,
    inspect_full_config=True,
    cli_wraps_not_found=True,
    info_client_version=False,
    info_registry_line=True,
    engine_id_uuid=False,
    container_layer_id=False,
    driver_status_metacopy=False,
    extra_log_drivers=("logentries",),
    load_rejects_null_manifest=False,
    missing_time_is_epoch=False,
    history_hides_old_times=False,
    tar_legacy_headers=True,
    network_default_mode="default",
    format_json_shorthand=False,
    images_quiet_unique=False,
    legacy_container_errors=True,
)

V28 = DockerVersion(
    series="28",
    version="28.5.1",
    api_version="1.51",
    min_api_version="1.24",
    go_version="go1.24.8",
    cli_commit="e180ab8",
    engine_commit="f8215cc",
    built="Wed Oct  8 02:50:32 2025",
    platform="Docker Engine - Community",
    client_experimental=False,
    components=(
        Component("containerd", "v1.7.28", "v1.7.28"),
        Component("runc", "1.3.0", "v1.3.0"),
        Component("docker-init", "0.19.0", "de40ad0"),
    ),
    runtimes=("io.containerd.runc.v2", "runc"),
    seccomp_profile="builtin",
    insecure_registries=("::1/128", "127.0.0.0/8"),
    save_layout="v25",
    inspect_legacy_fields=False,
    inspect_full_config=False,
    cli_wraps_not_found=False,
    info_client_version=True,
    info_registry_line=False,
    engine_id_uuid=True,
    container_layer_id=True,
    driver_status_metacopy=True,
    extra_log_drivers=(),
    load_rejects_null_manifest=True,
    missing_time_is_epoch=True,
    history_hides_old_times=True,
)

KNOWN: dict[str, DockerVersion] = {v.series: v for v in (V20_10, V28)}
DEFAULT = V28

_chosen: ContextVar[DockerVersion | None] = ContextVar("docker_version", default=None)


def lookup(text: str) -> DockerVersion:
    """The profile for ``20.10``, ``20.10.24``, ``28``, ``28.5.1``... (a series and any
    release of it); :class:`UnknownDockerVersion` names the known ones otherwise."""
    t = text.strip().removeprefix("v")
    for series, v in KNOWN.items():
        if t == series or t.startswith(series + "."):
            return v
    known = " or ".join(KNOWN)
    raise UnknownDockerVersion(f"unknown Docker version {text!r}: the simulator speaks as {known}")


def use(text: str | None) -> DockerVersion:
    """Speak as ``text`` (None: ``$OVERLAYSIM_DOCKER_VERSION`` or the default) from now on,
    in this context (one CLI invocation)."""
    v = lookup(text) if text else from_env()
    _chosen.set(v)
    return v


def from_env() -> DockerVersion:
    text = os.environ.get(ENV, "").strip()
    return lookup(text) if text else DEFAULT


def current() -> DockerVersion:
    """The version chosen by :func:`use`, else the environment's, else the default."""
    return _chosen.get() or from_env()


__all__ = ["DEFAULT", "ENV", "KNOWN", "Component", "DockerVersion", "current", "lookup", "use"]
