"""What ``docker inspect`` and ``docker info`` report, built from the daemon's files.

Keys and their order follow the Engine API's ``ContainerJSON``/``ImageInspect`` of the Docker
release the daemon speaks as (graphdriver store: ``GraphDriver`` rather than containerd's
``Storage``; ``ID`` inside a container's ``GraphDriver.Data`` from 28). Images are shaped by
:mod:`imageinspect`, ``docker info`` by :mod:`sysinfo`. Values the simulator has no model for
(networking, security profiles) keep Docker's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from overlaysim.docker import imageinspect, network, sysinfo, versions
from overlaysim.docker.containers import Container
from overlaysim.errors import DaemonError

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon


def container(d: Daemon, c: Container) -> dict[str, Any]:
    st = c.state
    doc = c.doc
    state = {
        "Status": c.status,
        "Running": st["Running"],
        "Paused": st["Paused"],
        "Restarting": st["Restarting"],
        "OOMKilled": st["OOMKilled"],
        "Dead": st["Dead"],
        "Pid": st["Pid"],
        "ExitCode": st["ExitCode"],
        "Error": st["Error"],
        "StartedAt": st["StartedAt"],
        "FinishedAt": st["FinishedAt"],
    }
    mode = str(c.host.get("NetworkMode") or "default")
    nets = network.networks(mode, bool(st["Running"]))
    bridge = nets.get("bridge") or network.endpoint(False)
    ip = bridge["IPAddress"]
    return {
        "Id": c.id,
        "Created": doc["Created"],
        "Path": doc["Path"],
        "Args": doc["Args"],
        "State": state,
        "Image": doc["Image"],
        "ResolvConfPath": doc["ResolvConfPath"],
        "HostnamePath": doc["HostnamePath"],
        "HostsPath": doc["HostsPath"],
        "LogPath": doc["LogPath"],
        "Name": doc["Name"],
        "RestartCount": doc["RestartCount"],
        "Driver": doc["Driver"],
        "Platform": doc["OS"],
        "MountLabel": doc["MountLabel"],
        "ProcessLabel": doc["ProcessLabel"],
        "AppArmorProfile": doc["AppArmorProfile"],
        "ExecIDs": None,
        "HostConfig": c.host,
        "GraphDriver": {
            "Data": d.layers.rw_metadata(c.id, with_id=d.version.container_layer_id),
            "Name": "overlay2",
        },
        "Mounts": [],
        "Config": doc["Config"],
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": bridge["Gateway"],
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": ip,
            "IPPrefixLen": bridge["IPPrefixLen"],
            "IPv6Gateway": "",
            "MacAddress": bridge["MacAddress"],
            "Networks": nets,
        },
    }


def image(d: Daemon, iid: str) -> dict[str, Any]:
    """The image object, shaped as the Docker release the daemon speaks as (imageinspect)."""
    return imageinspect.image(d, iid, d.version)


class NoSuchObject(DaemonError):
    """Not found. The 20.10 CLI prints ``Error: No such image: NAME``; later ones print the
    daemon's own message (``daemon``) after ``Error response from daemon:``."""

    def __init__(self, message: str, daemon: str | None = None) -> None:
        super().__init__(message)
        self.daemon = daemon


def any_object(d: Daemon, name: str, kind: str | None = None) -> dict[str, Any]:
    """``docker inspect NAME``: a container first, then an image (``--type`` narrows it).

    ``docker image inspect``/``container inspect`` are ``kind`` "image"/"container"."""
    if kind in (None, "container"):
        try:
            return container(d, d.container(name))
        except DaemonError as e:
            if not str(e).startswith("No such"):
                raise
            if kind == "container":
                raise NoSuchObject(f"No such container: {name}", str(e)) from None
    if kind in (None, "image"):
        try:
            iid, _ = d.images.resolve(name)
            return image(d, iid)
        except DaemonError as e:
            if not str(e).startswith("No such"):
                raise
            if kind == "image":
                raise NoSuchObject(f"No such image: {name}", str(e)) from None
    raise NoSuchObject(f"No such object: {name}")


def info(d: Daemon) -> dict[str, Any]:
    """The fields of ``GET /info`` that ``docker info`` prints (see ``sysinfo``)."""
    return sysinfo.info(d)


def info_text(i: dict[str, Any], v: versions.DockerVersion | None = None) -> str:
    """``docker info``'s text, as the chosen Docker release prints it."""
    return sysinfo.info_text(i, v or versions.current())
