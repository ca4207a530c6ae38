"""runc's container state: ``<root>/<id>/state.json`` in the HostFS, status, list, kill, delete.

runc does not store a status: it derives one. A container whose state directory still holds
the ``exec.fifo`` is *created* (its init waits on the fifo), one whose init process lives is
*running*, otherwise *stopped*. We derive it the same way from the HostFS and the simulated
process table, so any process (a later ``overlaysim`` command) sees the same answer.
"""

from __future__ import annotations

import json
import posixpath
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import RuntimeStateError
from overlaysim.runtime.gofmt import rfc3339nano
from overlaysim.runtime.process import (
    DEFAULT_PATH,
    NotFound,
    check_executable,
    lifetime,
    run_in_root,
)
from overlaysim.runtime.procs import ProcessTable, parse_signal

RUNC_ROOT = "/run/runc"
_ID = re.compile(r"^[\w+\-.]+$")
_NAMESPACE_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
                    "mount": "mnt", "cgroup": "cgroup", "user": "user"}  # fmt: skip
_NS_KEYS = {"pid": "NEWPID", "network": "NEWNET", "ipc": "NEWIPC", "uts": "NEWUTS",
            "mount": "NEWNS", "cgroup": "NEWCGROUP", "user": "NEWUSER"}  # fmt: skip


@dataclass
class RuncContainer:
    """One row of ``runc list`` (and the body of ``runc state``)."""

    oci_version: str
    id: str
    pid: int
    status: str
    bundle: str
    rootfs: str
    created: str
    owner: str
    annotations: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """Keys in the order of runc's containerState struct."""
        out: dict[str, Any] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        out["owner"] = self.owner
        return out


class Runc:
    """runc with ``--root root`` over a HostFS; ``meta`` holds the process table."""

    def __init__(
        self,
        fs: Any,
        meta: dict[str, Any],
        root: str = RUNC_ROOT,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.fs = fs
        self.o = fs.os
        self.root = root
        self.clock = clock or fs.clock
        self.procs = ProcessTable(meta, self.clock)

    # --- state files ----------------------------------------------------------------------
    def _dir(self, cid: str) -> str:
        return posixpath.join(self.root, cid)

    def _read_state(self, cid: str) -> dict[str, Any]:
        if not _ID.match(cid):
            raise RuntimeStateError(f"invalid id format: {cid}")
        path = posixpath.join(self._dir(cid), "state.json")
        try:
            with self.fs.open(path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            raise RuntimeStateError("container does not exist") from None
        except ValueError:
            raise RuntimeStateError(f"load container {cid}: corrupt state.json") from None
        if not isinstance(data, dict):
            raise RuntimeStateError(f"load container {cid}: corrupt state.json")
        return data

    def _write_state(self, cid: str, state: dict[str, Any]) -> None:
        d = self._dir(cid)
        tmp = posixpath.join(d, ".state.json.tmp")
        with self.fs.open(tmp, "wb") as f:
            f.write(json.dumps(state, separators=(",", ":")).encode())
        self.o.chmod(tmp, 0o600)
        self.o.rename(tmp, posixpath.join(d, "state.json"))

    def config(self, cid: str) -> dict[str, Any]:
        """The whole state.json (``config``: libcontainer's config, ``process``: the spec's)."""
        return self._read_state(cid)

    def exists(self, cid: str) -> bool:
        try:
            self.o.lstat(posixpath.join(self._dir(cid), "state.json"))
        except OSError:
            return False
        return True

    def status(self, cid: str) -> str:
        state = self._read_state(cid)
        return self._status(cid, state)

    def _status(self, cid: str, state: dict[str, Any]) -> str:
        pid = int(state.get("init_process_pid") or 0)
        try:
            st = self.o.lstat(posixpath.join(self._dir(cid), "exec.fifo"))
            if stat.S_ISFIFO(st.st_mode) and self.procs.alive(pid):
                return "created"
        except OSError:
            pass
        if self.procs.alive(pid):
            return "paused" if state.get("paused") else "running"
        return "stopped"

    def load(self, cid: str) -> RuncContainer:
        state = self._read_state(cid)
        status = self._status(cid, state)
        cfg = state.get("config") or {}
        labels = {}
        for item in cfg.get("labels") or []:
            k, _, v = str(item).partition("=")
            labels[k] = v
        try:
            uid = self.o.stat(self._dir(cid)).st_uid
        except OSError:
            uid = 0
        return RuncContainer(
            oci_version=str(cfg.get("version") or ""),
            id=cid,
            pid=int(state.get("init_process_pid") or 0) if status != "stopped" else 0,
            status=status,
            bundle=labels.get("bundle", ""),
            rootfs=str(cfg.get("rootfs") or ""),
            created=str(state.get("created") or ""),
            owner="root" if uid == 0 else f"#{uid}",
            annotations={k: v for k, v in labels.items() if k != "bundle"},
        )

    def list(self) -> tuple[list[RuncContainer], list[str]]:
        """Every container under the root (sorted by id) and the errors runc prints for others."""
        try:
            names = sorted(self.o.listdir(self.root))
        except FileNotFoundError:
            return [], []
        rows, errors = [], []
        for name in names:
            if not stat.S_ISDIR(self.o.lstat(posixpath.join(self.root, name)).st_mode):
                continue
            try:
                rows.append(self.load(name))
            except RuntimeStateError as e:
                errors.append(f"load container {name}: {e}")
        return rows, errors

    # --- lifecycle ------------------------------------------------------------------------
    def create(
        self,
        cid: str,
        bundle: str,
        spec: dict[str, Any],
        *,
        detach: bool = True,
        extra_labels: dict[str, str] | None = None,
    ) -> RuncContainer:
        """``runc create``: state dir, state.json and the exec fifo; the init waits on it."""
        if not cid:
            raise RuntimeStateError("container id cannot be empty")
        if not _ID.match(cid):
            raise RuntimeStateError(f"invalid id format: {cid}")
        if self.exists(cid):
            raise RuntimeStateError("container with given ID already exists")
        proc = spec.get("process") or {}
        if detach and proc.get("terminal"):
            raise RuntimeStateError(
                "cannot allocate tty if runc will detach without setting console socket"
            )
        args = proc.get("args") or []
        if not args:
            raise RuntimeStateError("args must not be empty")
        rootfs = self.rootfs_of(bundle, spec)
        try:
            if not stat.S_ISDIR(self.o.stat(rootfs).st_mode):
                raise RuntimeStateError(f"rootfs ({rootfs}) is not a directory")
        except FileNotFoundError:
            raise RuntimeStateError(f"rootfs ({rootfs}) does not exist") from None
        try:
            check_executable([str(a) for a in args], self.fs, rootfs, _path_of(proc))
        except NotFound as e:
            raise RuntimeStateError(
                f"unable to start container process: error during container init: {e}"
            ) from None
        self.o.makedirs(self.root, 0o700, exist_ok=True)
        d = self._dir(cid)
        self.o.mkdir(d, 0o711)
        self.o.chmod(d, 0o711)
        self.o.mkfifo(posixpath.join(d, "exec.fifo"), 0o622)
        now = self.clock()
        pid = self.procs.spawn(list(args), now, f"runc:{self.root}:{cid}")
        self._write_state(cid, self._state_json(cid, pid, now, bundle, rootfs, spec, extra_labels))
        return self.load(cid)

    def start(self, cid: str, *, stdout: Any, stderr: Any, stdin_open: bool = True) -> int | None:
        """``runc start``: open the fifo, the init execs the user process.

        A process that keeps running (see :func:`lifetime`) stays alive; one that runs to
        completion runs now, its output going to ``stdout``/``stderr`` (the stdio runc
        inherited); then its exit status is returned.
        """
        status = self.status(cid)
        if status == "stopped":
            raise RuntimeStateError("cannot start a container that has stopped")
        if status != "created":
            raise RuntimeStateError("cannot start an already running container")
        self.o.unlink(posixpath.join(self._dir(cid), "exec.fifo"))
        state = self._read_state(cid)
        pid = int(state["init_process_pid"])
        keeps, secs = lifetime(list((state.get("process") or {}).get("args") or []), stdin_open)
        if keeps:
            if secs is not None:
                self.procs.set_end(pid, self.clock() + int(secs * 10**9))
            return None
        code = self._execute(state, stdout, stderr, b"")
        self.procs.exit(pid, code)
        return code

    def run_foreground(
        self,
        cid: str,
        *,
        stdout: Any,
        stderr: Any,
        stdin: bytes = b"",
        lines: Callable[[], str] | None = None,
        keep: bool = False,
    ) -> int:
        """The rest of ``runc run`` without ``-d``: run the process, then destroy the container."""
        self.o.unlink(posixpath.join(self._dir(cid), "exec.fifo"))
        state = self._read_state(cid)
        pid = int(state["init_process_pid"])
        code = self._execute(state, stdout, stderr, stdin, lines)
        self.procs.exit(pid, code)
        if not keep:
            self.destroy(cid)
        return code

    def _execute(
        self,
        state: dict[str, Any],
        stdout: Any,
        stderr: Any,
        stdin: bytes,
        lines: Callable[[], str] | None = None,
    ) -> int:
        cfg = state.get("config") or {}
        proc = state.get("process") or {}
        user = proc.get("user") or {}
        return run_in_root(
            self.fs,
            str(cfg.get("rootfs")),
            list(proc.get("args") or []),
            stdout=stdout,
            stderr=stderr,
            stdin=stdin,
            lines=lines,
            env=list(proc.get("env") or []),
            cwd=str(proc.get("cwd") or "/"),
            uid=int(user.get("uid", 0)),
            gid=int(user.get("gid", 0)),
            hostname=str(cfg.get("hostname") or ""),
            readonly=bool(cfg.get("readonlyfs")),
        )

    def kill(self, cid: str, signal: str = "SIGTERM") -> bool:
        """``runc kill``: deliver the signal to the init; True if it ended."""
        sig = parse_signal(signal)
        state = self._read_state(cid)
        if self._status(cid, state) == "stopped":
            raise RuntimeStateError("container not running")
        return self.procs.signal(int(state.get("init_process_pid") or 0), sig)

    def delete(self, cid: str, force: bool = False) -> None:
        state = self._read_state(cid)
        status = self._status(cid, state)
        pid = int(state.get("init_process_pid") or 0)
        if status in ("running", "paused") and not force:
            raise RuntimeStateError(f"cannot delete container {cid} that is not stopped: {status}")
        if status != "stopped":
            self.procs.signal(pid, parse_signal("KILL"))
        self.destroy(cid)

    def destroy(self, cid: str) -> None:
        state = self._read_state(cid)
        self.procs.reap(int(state.get("init_process_pid") or 0))
        d = self._dir(cid)
        for name in self.o.listdir(d):
            self.o.unlink(posixpath.join(d, name))
        self.o.rmdir(d)

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def rootfs_of(bundle: str, spec: dict[str, Any]) -> str:
        path = str((spec.get("root") or {}).get("path") or "rootfs")
        return posixpath.normpath(posixpath.join(bundle, path))

    def _state_json(
        self,
        cid: str,
        pid: int,
        now: int,
        bundle: str,
        rootfs: str,
        spec: dict[str, Any],
        extra_labels: dict[str, str] | None,
    ) -> dict[str, Any]:
        """libcontainer's State (a realistic subset, real key names) plus the process spec."""
        linux = spec.get("linux") or {}
        namespaces = [str(n.get("type")) for n in linux.get("namespaces") or []]
        labels = [f"bundle={bundle}"] + [f"{k}={v}" for k, v in (extra_labels or {}).items()]
        root = spec.get("root") or {}
        proc = spec.get("process") or {}
        return {
            "id": cid,
            "init_process_pid": pid,
            "init_process_start": now // 10**7,  # clock ticks since boot, 100 Hz
            "created": rfc3339nano(now),
            "config": {
                "no_pivot_root": False,
                "parent_death_signal": 0,
                "rootfs": rootfs,
                "umask": None,
                "readonlyfs": bool(root.get("readonly")),
                "rootPropagation": 0,
                "mounts": [_mount(m) for m in spec.get("mounts") or []],
                "mount_label": "",
                "hostname": spec.get("hostname") or "",
                "namespaces": [{"type": _NS_KEYS.get(n, n), "path": ""} for n in namespaces],
                "capabilities": {
                    k.capitalize(): v for k, v in (proc.get("capabilities") or {}).items()
                },
                "networks": None,
                "routes": None,
                "cgroups": {"path": "", "name": cid, "parent": "", "Resources": {}},
                "oom_score_adj": None,
                "uid_mappings": None,
                "gid_mappings": None,
                "mask_paths": list(linux.get("maskedPaths") or []),
                "readonly_paths": list(linux.get("readonlyPaths") or []),
                "sysctl": None,
                "seccomp": None,
                "no_new_privileges": bool(proc.get("noNewPrivileges")),
                "Hooks": None,
                "version": spec.get("ociVersion") or "",
                "labels": labels,
                "no_new_keyring": False,
            },
            "rootless": False,
            "cgroup_paths": {"": f"/sys/fs/cgroup/{cid}"},
            "namespace_paths": {
                _NS_KEYS.get(n, n): f"/proc/{pid}/ns/{_NAMESPACE_FILES.get(n, n)}"
                for n in namespaces
            },
            "external_descriptors": ["/dev/null", "/dev/null", "/dev/null"],
            "intel_rdt_path": "",
            # not in libcontainer's State: the process spec, so a later command can run it
            "process": proc,
        }


def _path_of(proc: dict[str, Any]) -> str:
    for item in proc.get("env") or []:
        if str(item).startswith("PATH="):
            return str(item)[5:]
    return DEFAULT_PATH


def _mount(m: dict[str, Any]) -> dict[str, Any]:
    data = ",".join(o for o in m.get("options") or [] if "=" in o)
    return {
        "source": m.get("source"),
        "destination": m.get("destination"),
        "device": m.get("type"),
        "flags": 0,
        "data": data,
    }


def load_spec_file(path: str) -> dict[str, Any]:
    """Read ``config.json`` of a bundle on the real disk, with runc's messages."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise RuntimeStateError(
            f"JSON specification file {posixpath.basename(path)} not found"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RuntimeStateError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise RuntimeStateError(f"{path}: the spec is not a JSON object")
    return data


__all__ = ["RUNC_ROOT", "Runc", "RuncContainer", "load_spec_file"]
