"""Container records as dockerd keeps them: ``/var/lib/docker/containers/<id>/``.

``config.v2.json`` holds the container (state, config, name, image, paths) and
``hostconfig.json`` its host configuration; both are read back by every later command, so
a container outlives the process that created it exactly as it outlives a dockerd restart.
Keys are those of moby's ``container.Container`` and ``container.HostConfig`` (a subset).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from overlaysim.docker import files
from overlaysim.errors import DaemonError

ZERO_TIME = "0001-01-01T00:00:00Z"


def new_state() -> dict[str, Any]:
    return {
        "Running": False,
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "RemovalInProgress": False,
        "Dead": False,
        "Pid": 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": ZERO_TIME,
        "FinishedAt": ZERO_TIME,
        "Health": None,
    }


def host_config(auto_remove: bool, network_mode: str = "default") -> dict[str, Any]:
    return {
        "Binds": None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": network_mode,
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": [0, 0],
        "CapAdd": None,
        "CapDrop": None,
        "CgroupnsMode": "private",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": None,
        "GroupAdd": None,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": False,
        "SecurityOpt": None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 67108864,
        "Runtime": "runc",
        "Isolation": "",
        "MaskedPaths": [
            "/proc/asound",
            "/proc/acpi",
            "/proc/interrupts",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap",
        ],
        "ReadonlyPaths": [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ],
    }


class NoSuchContainer(DaemonError):
    """No container by that name or id: a 404, which some docker CLI commands reword."""


@dataclass
class Container:
    """``config.v2.json`` (as a dict, key order kept) and ``hostconfig.json``."""

    doc: dict[str, Any]
    host: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.doc["ID"])

    @property
    def name(self) -> str:
        return str(self.doc["Name"]).lstrip("/")

    @property
    def state(self) -> dict[str, Any]:
        st: dict[str, Any] = self.doc["State"]
        return st

    @property
    def image_id(self) -> str:
        return str(self.doc["Image"])

    @property
    def argv(self) -> list[str]:
        return [str(self.doc["Path"]), *[str(a) for a in self.doc["Args"]]]

    @property
    def status(self) -> str:
        """The ``State.Status`` docker inspect shows."""
        st = self.state
        if st.get("RemovalInProgress"):
            return "removing"
        if st["Running"]:
            return "paused" if st["Paused"] else "running"
        if st.get("Dead"):
            return "dead"
        if st["StartedAt"] == ZERO_TIME:
            return "created"
        return "exited"


class ContainerStore:
    def __init__(self, o: Any, root: str = "/var/lib/docker") -> None:
        self.o = o
        self.dir = posixpath.join(root, "containers")
        files.makedirs(o, self.dir, 0o710)

    def path(self, cid: str, *names: str) -> str:
        return posixpath.join(self.dir, cid, *names)

    def ids(self) -> list[str]:
        return [n for n in files.listdir(self.o, self.dir) if len(n) == 64]

    def load(self, cid: str) -> Container:
        raw = files.read(self.o, self.path(cid, "config.v2.json"))
        if raw is None:
            raise DaemonError(f"No such container: {cid}")
        host = files.read(self.o, self.path(cid, "hostconfig.json")) or b"{}"
        try:
            doc, hc = json.loads(raw), json.loads(host)
            if not isinstance(doc, dict) or not isinstance(hc, dict) or doc.get("ID") != cid:
                raise ValueError("not a container record")
        except ValueError as e:
            raise DaemonError(f"container {cid}: corrupt config.v2.json ({e})") from None
        return Container(doc, hc)

    def all(self) -> list[Container]:
        return [self.load(c) for c in self.ids()]

    def save(self, c: Container) -> None:
        files.makedirs(self.o, self.path(c.id), 0o710)
        for sub in ("checkpoints", "mounts"):
            files.makedirs(self.o, self.path(c.id, sub), 0o700)
        files.write_atomic(
            self.o,
            self.path(c.id, "config.v2.json"),
            json.dumps(c.doc, separators=(",", ":")).encode(),
            0o600,
        )
        files.write_atomic(
            self.o,
            self.path(c.id, "hostconfig.json"),
            json.dumps(c.host, separators=(",", ":")).encode(),
            0o600,
        )

    def delete(self, cid: str) -> None:
        files.rmtree(self.o, self.path(cid))

    def by_name(self, name: str) -> Container | None:
        want = "/" + name.lstrip("/")
        for c in self.all():
            if c.doc["Name"] == want:
                return c
        return None

    def resolve(self, text: str) -> Container:
        """Docker's lookup: full id, then exact name, then a unique id prefix."""
        if not text:
            raise DaemonError("No such container: ")
        ids = self.ids()
        if text in ids:
            return self.load(text)
        named = self.by_name(text)
        if named is not None:
            return named
        hits = [i for i in ids if i.startswith(text)]
        if len(hits) > 1:
            raise DaemonError(f"Multiple IDs found with provided prefix: {text}")
        if hits:
            return self.load(hits[0])
        raise NoSuchContainer(f"No such container: {text}")
