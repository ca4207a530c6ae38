"""``docker info`` and ``docker version``: the machine as the chosen Docker release shows it.

The lines follow the docker CLI of each release (``prettyPrintInfo``, the version template's
tabwriter at 20 columns); which lines exist and what they say comes from
:mod:`overlaysim.docker.versions`. Machine facts are the simulated machine's: its kernel is
the simulator's, its overlay2 status comes from probing the simulated engine, its name from
its ``/etc/hostname``; CPUs and memory are the host's (the simulator runs there).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import TYPE_CHECKING, Any

from overlaysim.docker import files
from overlaysim.docker.versions import DockerVersion

if TYPE_CHECKING:
    from overlaysim.docker.daemon import Daemon

KERNEL = "6.18.0-overlaysim"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_LOG_DRIVERS = ("awslogs", "fluentd", "gcplogs", "gelf", "journald", "json-file", "local")


def _engine_id(seed: object, v: DockerVersion) -> str:
    """A stable engine ID for the world: a UUID (Docker 23+) or a libtrust key ID."""
    digest = hashlib.sha256(f"overlaysim-engine-{seed}".encode()).digest()
    if v.engine_id_uuid:
        return str(uuid.UUID(bytes=digest[:16], version=4))
    bits = int.from_bytes(digest[:30], "big")
    chars = [_BASE32[(bits >> (5 * i)) & 31] for i in range(48)]
    return ":".join("".join(chars[i : i + 4]) for i in range(0, 48, 4))


def _mem_total() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def bytes_size(n: float) -> str:
    """go-units ``BytesSize``: binary units, ``%.4g``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"


def info(d: Daemon) -> dict[str, Any]:
    """The fields of ``GET /info`` that ``docker info`` prints."""
    from overlaysim.docker.daemon import DOCKER_ROOT

    v = d.version
    cs = d.containers.all()
    running = sum(1 for c in cs if c.state["Running"] and not c.state["Paused"])
    paused = sum(1 for c in cs if c.state["Paused"])
    status = [list(p) for p in d.driver.probe()]
    if not v.driver_status_metacopy:
        status = [p for p in status if p[0] != "Using metacopy"]
    name = (files.read(d.o, "/etc/hostname") or b"").decode("utf-8", "replace").strip()
    comps = {c.name: c for c in v.components}
    logs = sorted(_LOG_DRIVERS + v.extra_log_drivers + ("splunk", "syslog"))
    return {
        "ID": _engine_id(d.seed, v),
        "Containers": len(cs),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(cs) - running - paused,
        "Images": len(d.images.ids()),
        "Driver": "overlay2",
        # dockerd's start-up probes, run against the simulated kernel's overlay engine
        "DriverStatus": status,
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"],
            "Authorization": None,
            "Log": logs,
        },
        "Debug": False,
        "LoggingDriver": "json-file",
        "CgroupDriver": "systemd",
        "CgroupVersion": "2",
        "KernelVersion": KERNEL,
        "OperatingSystem": "overlaysim simulated machine",
        "OSType": "linux",
        "Architecture": "x86_64",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "InsecureRegistryCIDRs": list(v.insecure_registries),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "DockerRootDir": DOCKER_ROOT,
        "Name": name or "localhost",
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": v.version,
        "Runtimes": {r: {"path": "runc"} for r in v.runtimes},
        "DefaultRuntime": "runc",
        "Swarm": {"LocalNodeState": "inactive"},
        "LiveRestoreEnabled": False,
        "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": comps["containerd"].commit},
        "RuncCommit": {"ID": comps["runc"].commit},
        "InitCommit": {"ID": comps["docker-init"].commit},
        "SecurityOptions": [f"name=seccomp,profile={v.seccomp_profile}", "name=cgroupns"],
    }


def info_text(i: dict[str, Any], v: DockerVersion) -> str:
    """``docker info`` as release ``v``'s CLI prints it (one space, two for nested lines)."""
    lines = ["Client:" + (f" {v.platform}" if v.platform else "")]
    if v.info_client_version:
        lines.append(f" Version:    {v.version}")
    lines += [" Context:    default", " Debug Mode: false", "", "Server:"]
    lines += [
        f" Containers: {i['Containers']}",
        f"  Running: {i['ContainersRunning']}",
        f"  Paused: {i['ContainersPaused']}",
        f"  Stopped: {i['ContainersStopped']}",
        f" Images: {i['Images']}",
        f" Server Version: {i['ServerVersion']}",
        f" Storage Driver: {i['Driver']}",
    ]
    lines += [f"  {k}: {val}" for k, val in i["DriverStatus"]]
    plugins = i["Plugins"]
    lines += [
        f" Logging Driver: {i['LoggingDriver']}",
        f" Cgroup Driver: {i['CgroupDriver']}",
        f" Cgroup Version: {i['CgroupVersion']}",
        " Plugins:",
        "  Volume: " + " ".join(plugins["Volume"]),
        "  Network: " + " ".join(plugins["Network"]),
        "  Log: " + " ".join(plugins["Log"]),
        f" Swarm: {i['Swarm']['LocalNodeState']}",
        " Runtimes: " + " ".join(i["Runtimes"]),
        f" Default Runtime: {i['DefaultRuntime']}",
        f" Init Binary: {i['InitBinary']}",
        f" containerd version: {i['ContainerdCommit']['ID']}",
        f" runc version: {i['RuncCommit']['ID']}",
        f" init version: {i['InitCommit']['ID']}",
        " Security Options:",
    ]
    for opt in i["SecurityOptions"]:
        kv = dict(p.split("=", 1) for p in opt.split(","))
        lines.append("  " + kv["name"])
        if "profile" in kv:
            lines.append("   Profile: " + kv["profile"])
    lines += [
        f" Kernel Version: {i['KernelVersion']}",
        f" Operating System: {i['OperatingSystem']}",
        f" OSType: {i['OSType']}",
        f" Architecture: {i['Architecture']}",
        f" CPUs: {i['NCPU']}",
        f" Total Memory: {bytes_size(i['MemTotal'])}",
        f" Name: {i['Name']}",
        f" ID: {i['ID']}",
        f" Docker Root Dir: {i['DockerRootDir']}",
        " Debug Mode: false",
    ]
    if v.info_registry_line:
        lines += [f" Registry: {i['IndexServerAddress']}", " Labels:"]
    lines += [" Experimental: false", " Insecure Registries:"]
    lines += ["  " + cidr for cidr in i["InsecureRegistryCIDRs"]]
    lines += [" Live Restore Enabled: false", ""]
    return "\n".join(lines)


def version_text(v: DockerVersion) -> str:
    """``docker version``: the client block and the server's components (tabwriter, 20)."""

    def row(label: str, value: object) -> str:
        return label.ljust(20) + str(value)

    plat = f" {v.platform}" if v.platform else ""
    lines = [
        "Client:" + plat,
        row(" Version:", v.version),
        row(" API version:", v.api_version),
        row(" Go version:", v.go_version),
        row(" Git commit:", v.cli_commit),
        row(" Built:", v.built),
        row(" OS/Arch:", "linux/amd64"),
        row(" Context:", "default"),
    ]
    if v.client_experimental:
        lines.append(row(" Experimental:", "true"))
    lines += [
        "",
        "Server:" + plat,
        " Engine:",
        row("  Version:", v.version),
        row("  API version:", f"{v.api_version} (minimum version {v.min_api_version})"),
        row("  Go version:", v.go_version),
        row("  Git commit:", v.engine_commit),
        row("  Built:", v.built),
        row("  OS/Arch:", "linux/amd64"),
        row("  Experimental:", "false"),
    ]
    for c in v.components:
        lines += [f" {c.name}:", row("  Version:", c.version), row("  GitCommit:", c.commit)]
    return "\n".join(lines)


__all__ = ["bytes_size", "info", "info_text", "version_text"]
