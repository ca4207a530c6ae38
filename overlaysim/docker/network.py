"""``--network`` of ``docker run``/``create``: what dockerd 20.10 records and when it refuses.

The simulated machine has docker's three built-in networks (``bridge``, ``host``, ``none``);
no packets are simulated, only what the daemon writes and reports. As on dockerd 20.10.24:
the CLI sends ``default`` when no ``--network`` is given and the daemon keeps that in
``HostConfig.NetworkMode`` (its endpoint is named ``bridge``); any other name is recorded
as given and only checked at start, which then fails with ``network NAME not found``
(the container stays ``created`` with that error and exit code 128); ``container:NAME``
joins another container's network namespace and has no endpoint of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overlaysim.errors import DaemonError

BUILTIN = ("bridge", "host", "none")
DEFAULT = "default"


class NetworkNotFound(DaemonError):
    """Start refused: the container names a network the daemon does not have."""


def check_option(value: str | None) -> str:
    """The ``NetworkMode`` the CLI sends for ``--network VALUE`` (refusing what it refuses)."""
    if value is None:
        return DEFAULT
    if value == "":
        raise DaemonError("no name set for network")
    return value


def endpoint_name(mode: str) -> str | None:
    """The key of ``NetworkSettings.Networks``: ``default`` is the bridge; none for
    ``container:NAME``."""
    if mode.startswith("container:"):
        return None
    return "bridge" if mode == DEFAULT else mode


def resolve_mode(mode: str, find: Callable[[str], Any]) -> str:
    """``container:NAME`` is stored with the other container's full ID when it exists."""
    if mode.startswith("container:"):
        other = mode.partition(":")[2]
        try:
            return "container:" + str(find(other).id)
        except DaemonError:
            return mode
    return mode


def endpoint(running_bridge: bool) -> dict[str, Any]:
    """One entry of ``NetworkSettings.Networks`` (an IP only on a running bridge)."""
    ip = "172.17.0.2" if running_bridge else ""
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "MacAddress": "02:42:ac:11:00:02" if ip else "",
        "DriverOpts": None,
        "GwPriority": 0,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "172.17.0.1" if ip else "",
        "IPAddress": ip,
        "IPPrefixLen": 16 if ip else 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def networks(mode: str, running: bool) -> dict[str, Any]:
    """``NetworkSettings.Networks`` of a container in ``mode``."""
    name = endpoint_name(mode)
    if name is None:
        return {}
    return {name: endpoint(running and name == "bridge")}


def check_start(mode: str, find: Callable[[str], Any]) -> None:
    """Refuse to start a container whose network does not exist (dockerd's messages)."""
    if mode.startswith("container:"):
        other = mode.partition(":")[2]
        try:
            c = find(other)
        except DaemonError:
            raise NetworkNotFound(f"No such container: {other}") from None
        if not c.state["Running"]:
            raise NetworkNotFound(f"cannot join network of a non running container: {c.id}")
        return
    name = endpoint_name(mode)
    if name not in BUILTIN:
        raise NetworkNotFound(f"network {name} not found")


def hosts_file(hostname: str, mode: str) -> str:
    """``/etc/hosts`` docker writes: the container's own address only on the bridge."""
    text = (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
    )
    if endpoint_name(mode) == "bridge":
        text += f"172.17.0.2\t{hostname}\n"
    return text
