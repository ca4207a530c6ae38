"""What ``docker inspect`` and ``docker info`` report, built from the daemon's files.

Keys and their order follow the Engine API's ``ContainerJSON``/``ImageInspect`` (Docker 28,
graphdriver store: ``GraphDriver`` rather than containerd's ``Storage``, and ``ID`` inside a
container's ``GraphDriver.Data``). Values the simulator has no model for (networking,
security profiles) keep Docker's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from overlaysim.docker import imageops
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
    ip = "172.17.0.2" if st["Running"] else ""
    bridge = {
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
        "GraphDriver": {"Data": d.layers.rw_metadata(c.id), "Name": "overlay2"},
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
            "Networks": {"bridge": bridge},
        },
    }


def image(d: Daemon, iid: str) -> dict[str, Any]:
    cfg = d.images.config(iid)
    diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
    top = d.top_chain(iid)
    graph: dict[str, Any] = {"Name": "overlay2"}
    if top:
        layer = d.layers.lookup(top)
        if layer is not None:
            graph = {"Data": d.layers.metadata(layer), "Name": "overlay2"}
    out: dict[str, Any] = {
        "Id": iid,
        "RepoTags": d.images.refs_for(iid),
        "RepoDigests": [],
        "Parent": d.images.parent(iid),
        "Comment": cfg.get("comment") or "",
        "Created": cfg.get("created") or "",
        "DockerVersion": cfg.get("docker_version") or "",
        "Author": cfg.get("author") or "",
        "Config": cfg.get("config"),
        "Architecture": cfg.get("architecture") or "",
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    out["Os"] = cfg.get("os") or ""
    out["Size"] = imageops.image_size(d, iid)
    out["GraphDriver"] = graph
    out["RootFS"] = {"Type": "layers", "Layers": diff_ids}
    out["Metadata"] = {"LastTagTime": d.images.last_updated(iid) or "0001-01-01T00:00:00Z"}
    return out


def any_object(d: Daemon, name: str, kind: str | None = None) -> dict[str, Any]:
    """``docker inspect NAME``: a container first, then an image (``--type`` narrows it)."""
    if kind in (None, "container"):
        try:
            return container(d, d.container(name))
        except DaemonError:
            if kind == "container":
                raise DaemonError(f"No such container: {name}") from None
    if kind in (None, "image"):
        try:
            iid, _ = d.images.resolve(name)
            return image(d, iid)
        except DaemonError:
            if kind == "image":
                raise
    raise DaemonError(f"No such object: {name}")


def info(d: Daemon) -> dict[str, Any]:
    """The fields of ``GET /info`` that ``docker info`` prints (a realistic subset)."""
    from overlaysim.docker.daemon import DOCKER_ROOT, DOCKER_VERSION

    cs = d.containers.all()
    running = sum(1 for c in cs if c.state["Running"] and not c.state["Paused"])
    paused = sum(1 for c in cs if c.state["Paused"])
    return {
        "Containers": len(cs),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(cs) - running - paused,
        "Images": len(d.images.ids()),
        "Driver": "overlay2",
        # dockerd's start-up probes, run against the simulated kernel's overlay engine
        "DriverStatus": [list(p) for p in d.driver.probe()],
        "LoggingDriver": "json-file",
        "CgroupDriver": "systemd",
        "CgroupVersion": "2",
        "KernelVersion": "6.18.0-overlaysim",
        "OperatingSystem": "overlaysim simulated machine",
        "OSType": "linux",
        "Architecture": "x86_64",
        "DockerRootDir": DOCKER_ROOT,
        "ServerVersion": DOCKER_VERSION,
        "DefaultRuntime": "runc",
        "Runtimes": {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}},
    }


def info_text(i: dict[str, Any]) -> str:
    """The ``Server:`` block of ``docker info`` (one space, then two for nested lines)."""
    from overlaysim.docker.daemon import DOCKER_VERSION

    lines = [
        "Client:",
        f" Version:    {DOCKER_VERSION}",
        " Context:    default",
        " Debug Mode: false",
        "",
        "Server:",
        f" Containers: {i['Containers']}",
        f"  Running: {i['ContainersRunning']}",
        f"  Paused: {i['ContainersPaused']}",
        f"  Stopped: {i['ContainersStopped']}",
        f" Images: {i['Images']}",
        f" Server Version: {i['ServerVersion']}",
        f" Storage Driver: {i['Driver']}",
    ]
    lines += [f"  {k}: {v}" for k, v in i["DriverStatus"]]
    lines += [
        f" Logging Driver: {i['LoggingDriver']}",
        f" Cgroup Driver: {i['CgroupDriver']}",
        f" Cgroup Version: {i['CgroupVersion']}",
        " Runtimes: " + " ".join(sorted(i["Runtimes"])),
        f" Default Runtime: {i['DefaultRuntime']}",
        f" Kernel Version: {i['KernelVersion']}",
        f" Operating System: {i['OperatingSystem']}",
        f" OSType: {i['OSType']}",
        f" Architecture: {i['Architecture']}",
        f" Docker Root Dir: {i['DockerRootDir']}",
    ]
    return "\n".join(lines)
