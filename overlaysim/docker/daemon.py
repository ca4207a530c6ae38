"""The simulated Docker daemon (graphdriver mode, overlay2): containers and their lifecycle.

``Daemon(fs, meta, seed)`` is dockerd after a restart: everything it knows is read back from
``/var/lib/docker`` (image store, layerdb, overlay2, containers) and from the runc state under
``/run/docker/runtime-runc/moby``, so each overlaysim command is one API call to a daemon that
remembers. Container states follow moby's transitions and messages; a container's main
process is simulated (``overlaysim.runtime``): commands that run to completion are executed
by the overlaysim shell inside the merged directory, long-running ones (a shell with open
stdin, ``sleep``, ``tail -f``) stay alive until stopped.

Image operations (load, save, commit, rmi) are in :mod:`overlaysim.docker.imageops`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import IO, Any

from overlaysim.docker import files, logs, network, users, versions
from overlaysim.docker import names as namegen
from overlaysim.docker.containers import (
    ZERO_TIME,
    Container,
    ContainerStore,
    host_config,
    new_state,
)
from overlaysim.docker.images import ImageStore
from overlaysim.errors import DaemonError, RuntimeStateError
from overlaysim.image import digest as dg
from overlaysim.image.bundle import runc_spec
from overlaysim.image.gojson import dumps_indent
from overlaysim.overlay2 import IdGen, LayerStore, Overlay2Driver
from overlaysim.runtime.gofmt import rfc3339nano
from overlaysim.runtime.process import NotFound, check_executable, lifetime, run_in_root
from overlaysim.runtime.procs import parse_signal
from overlaysim.runtime.state import Runc

DOCKER_ROOT = "/var/lib/docker"
DOCKER_VERSION = versions.DEFAULT.version  # the default; a daemon speaks as ``Daemon.version``
RUNC_ROOT = "/run/docker/runtime-runc/moby"
BUNDLES = "/run/containerd/io.containerd.runtime.v2.task/moby"
STOP_TIMEOUT = 10
OCI_CREATE = (
    "failed to create task for container: failed to create shim task: OCI runtime create "
    "failed: runc create failed: "
)


class ExecFailed(DaemonError):
    """A container process could not start; ``status`` is the exit code docker reports, and
    ``raw`` messages are printed without the daemon prefix (``docker exec``'s OCI errors)."""

    def __init__(self, message: str, status: int, raw: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.raw = raw


class Daemon:
    """One simulated dockerd over ``fs``; ``meta`` holds the process table, ``seed`` the ids."""

    def __init__(
        self,
        fs: Any,
        meta: dict[str, Any],
        seed: int | str = 0,
        version: versions.DockerVersion | None = None,
    ) -> None:
        self.fs = fs
        #: the Docker release this daemon speaks as (``overlaysim docker --docker-version``)
        self.version = version or versions.current()
        self.seed = seed
        self.meta = meta
        self.clock: Callable[[], int] = fs.clock
        self.driver = Overlay2Driver(fs, DOCKER_ROOT, ids=IdGen(seed))
        if self.version.tar_legacy_headers:
            # a commit's layer tar: S_IF* bits and the machine's own user names (dockerd 20.10)
            self.driver.tar_type_bits = True
            self.driver.tar_names = users.tar_names(fs, "/")
        self.layers = LayerStore(fs, self.driver)
        self.o = self.driver.o
        self.images = ImageStore(self.o, DOCKER_ROOT)
        self.containers = ContainerStore(self.o, DOCKER_ROOT)
        self.runc = Runc(fs, meta, root=RUNC_ROOT, clock=self.clock)
        self.procs = self.runc.procs
        self.reconcile()

    def now(self) -> int:
        return self.clock()

    def advance(self, seconds: float) -> None:
        """Let simulated time pass (a deterministic clock moves on; a wall clock needn't)."""
        if hasattr(self.clock, "now"):
            self.clock.now += int(seconds * 10**9)

    # --- lookups ----------------------------------------------------------------------------
    def container(self, text: str) -> Container:
        return self.containers.resolve(text)

    def top_chain(self, image_id: str) -> str | None:
        diff_ids = ((self.images.config(image_id).get("rootfs") or {}).get("diff_ids")) or []
        return dg.chain_ids(list(diff_ids))[-1] if diff_ids else None

    def merged(self, c: Container) -> str:
        mount_id = self.layers.get_mount_id(c.id)
        return posixpath.join(self.driver.dir(mount_id), "merged")

    # --- state reconciliation -------------------------------------------------------------------
    def reconcile(self) -> None:
        """Containers whose main process ended since the last command become exited."""
        for c in self.containers.all():
            st = c.state
            if st["Running"] and not self.procs.alive(int(st["Pid"])):
                pid = int(st["Pid"])
                code = self.procs.exit_status(pid)
                self._exited(c, 0 if code is None else code, self.procs.ended_at(pid))

    # --- create ------------------------------------------------------------------------------------
    def create(
        self,
        image: str,
        cmd: list[str] | None = None,
        *,
        name: str | None = None,
        entrypoint: str | None = None,
        env: list[str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        tty: bool = False,
        interactive: bool = False,
        attach: bool = False,
        auto_remove: bool = False,
        network_mode: str = network.DEFAULT,
    ) -> Container:
        image_id, _ref = self.images.resolve(image)
        img_cfg = self.images.config(image_id).get("config") or {}
        ep = [entrypoint] if entrypoint else list(img_cfg.get("Entrypoint") or [])
        if entrypoint == "":
            ep = []
        command = list(cmd) if cmd else (list(img_cfg.get("Cmd") or []) if not entrypoint else [])
        argv = ep + command
        if not argv:
            raise DaemonError("No command specified")
        if name is not None:
            if not namegen.valid(name):
                raise DaemonError(
                    f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            clash = self.containers.by_name(name)
            if clash is not None:
                raise DaemonError(
                    f'Conflict. The container name "/{name.lstrip("/")}" is already in use by '
                    f'container "{clash.id}". You have to remove (or rename) that container to '
                    "be able to reuse that name."
                )
        cid = self.driver.ids.random_id()
        if name is None:
            attempt = 0
            name = namegen.generate(cid)
            while self.containers.by_name(name) is not None:
                attempt += 1
                name = namegen.generate(cid, attempt)
        self.layers.create_rw_layer(cid, self.top_chain(image_id))
        # dockerd mounts the new rootfs once at create (to set up the working dir and volumes)
        # and unmounts it: the kernel's first mount writes the upper dir's uuid xattr and
        # work/work, which a real /var/lib/docker shows before the first start.
        self.layers.mount(cid)
        self.layers.unmount(cid)
        now = self.now()
        cdir = self.containers.path(cid)
        if network_mode == network.DEFAULT:
            network_mode = self.version.network_default_mode
        network_mode = network.resolve_mode(network_mode, self.container)
        if not hostname and network_mode == "host":
            hostname = self._host_name()
        config = {
            "Hostname": hostname or cid[:12],
            "Domainname": "",
            "User": user if user is not None else str(img_cfg.get("User") or ""),
            "AttachStdin": attach and interactive,
            "AttachStdout": attach,
            "AttachStderr": attach,
            "Tty": tty,
            "OpenStdin": interactive,
            "StdinOnce": attach and interactive,
            "Env": list(img_cfg.get("Env") or []) + list(env or []),
            "Cmd": command or None,
            "Image": image,
            "Volumes": img_cfg.get("Volumes"),
            "WorkingDir": workdir if workdir is not None else str(img_cfg.get("WorkingDir") or ""),
            "Entrypoint": ep or None,
            "OnBuild": img_cfg.get("OnBuild"),
            "Labels": dict(img_cfg.get("Labels") or {}),
        }
        doc = {
            "StreamConfig": {},
            "State": new_state(),
            "ID": cid,
            "Created": rfc3339nano(now),
            "Managed": False,
            "Path": argv[0],
            "Args": argv[1:],
            "Config": config,
            "Image": image_id,
            "ImageManifest": None,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "Ports": {},
                "Networks": network.networks(network_mode, False),
            },
            "LogPath": posixpath.join(cdir, f"{cid}-json.log"),
            "Name": "/" + name,
            "Driver": "overlay2",
            "OS": "linux",
            "RestartCount": 0,
            "HasBeenStartedBefore": False,
            "HasBeenManuallyStopped": False,
            "MountPoints": {},
            "SecretReferences": None,
            "ConfigReferences": None,
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "docker-default",
            "SeccompProfile": "",
            "NoNewPrivileges": False,
            "HostnamePath": "",
            "HostsPath": "",
            "ShmPath": "",
            "ResolvConfPath": posixpath.join(cdir, "resolv.conf"),
            "LocalLogCacheMeta": {"HaveNotifyEnabled": False},
        }
        c = Container(doc, host_config(auto_remove, network_mode))
        self.containers.save(c)
        return c

    def _host_name(self) -> str:
        """The machine's own name (``--network host`` containers take it)."""
        raw = files.read(self.o, "/etc/hostname") or b""
        return raw.decode("utf-8", "replace").strip() or "localhost"

    def _check_network(self, c: Container) -> None:
        """dockerd checks the network at start: the container keeps the error (exit 128)."""
        try:
            network.check_start(str(c.host.get("NetworkMode") or "default"), self.container)
        except network.NetworkNotFound as e:
            c.state.update(Error=str(e), ExitCode=128)
            self.containers.save(c)
            raise

    # --- start / run ---------------------------------------------------------------------------
    def _spec(self, c: Container, merged: str) -> dict[str, Any]:
        spec = runc_spec("1.4", True)
        cfg = c.doc["Config"]
        uid, gid = users.lookup(self.fs, merged, str(cfg.get("User") or ""))
        spec["process"].update(
            terminal=bool(cfg.get("Tty")),
            user={"uid": uid, "gid": gid},
            args=c.argv,
            env=[*list(cfg.get("Env") or []), f"HOSTNAME={cfg['Hostname']}"],
            cwd=str(cfg.get("WorkingDir") or "/"),
        )
        spec["root"] = {"path": merged}
        spec["hostname"] = cfg["Hostname"]
        return spec

    def _write_host_files(self, c: Container) -> None:
        o, cfg = self.o, c.doc["Config"]
        hosts = network.hosts_file(cfg["Hostname"], str(c.host.get("NetworkMode") or "default"))
        for name, text in (
            ("hostname", cfg["Hostname"] + "\n"),
            ("hosts", hosts),
            ("resolv.conf", "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
        ):
            files.write_atomic(o, self.containers.path(c.id, name), text.encode(), 0o644)
        c.doc["HostnamePath"] = self.containers.path(c.id, "hostname")
        c.doc["HostsPath"] = self.containers.path(c.id, "hosts")

    def _prepare(self, c: Container) -> str:
        """Mount the rootfs and create the runc container (state ``created``)."""
        merged = self.layers.mount(c.id)
        self._write_host_files(c)
        bundle = posixpath.join(BUNDLES, c.id)
        files.makedirs(self.o, bundle, 0o711)
        try:
            spec = self._spec(c, merged)
        except users.UserNotFound as e:
            raise self._failed_start(
                c, f"{OCI_CREATE}unable to start container process: {e}: unknown"
            ) from None
        files.write_atomic(
            self.o, posixpath.join(bundle, "config.json"), dumps_indent(spec).encode(), 0o644
        )
        if self.runc.exists(c.id):
            self.runc.destroy(c.id)
        try:
            self.runc.create(c.id, bundle, spec, detach=False)
        except RuntimeStateError as e:
            raise self._failed_start(c, f"{OCI_CREATE}{e}: unknown") from None
        return merged

    def _failed_start(self, c: Container, message: str) -> ExecFailed:
        """Undo a start that failed; the container keeps the error (status ``created``)."""
        self._cleanup_failed_start(c)
        # the docker CLI's mapping of start errors to exit codes (else 125)
        if "executable file not found" in message or "no such file or directory" in message:
            status = 127
        elif "permission denied" in message:
            status = 126
        else:
            status = 125
        c.state.update(Error=message, ExitCode=status)
        self.containers.save(c)
        return ExecFailed(message, status)

    def start(self, text: str) -> Container:
        """``docker start`` (detached): the main process starts, or runs to completion."""
        c = self.container(text)
        if c.state["Running"]:
            return c
        self._check_network(c)
        self._prepare(c)
        out, err = logs.Tee("stdout"), logs.Tee("stderr")
        try:
            code = self.runc.start(
                c.id, stdout=out, stderr=err, stdin_open=bool(c.doc["Config"]["OpenStdin"])
            )
        except RuntimeStateError as e:
            raise self._failed_start(c, f"failed to create task for container: {e}") from None
        self._running(c)
        logs.append(self.o, c.doc["LogPath"], [out, err], self.now())
        if code is not None:
            self._exited(c, code, None)
        return self.container(c.id) if self._exists(c.id) else c

    def run_attached(
        self,
        c: Container,
        *,
        stdout: IO[Any],
        stderr: IO[Any],
        stdin: bytes = b"",
        lines: Callable[[], str] | None = None,
    ) -> int | None:
        """The foreground part of ``docker run``: the command runs now, attached.

        A process that would never end by itself (``sleep infinity``, ``tail -f``) is left
        running, as if detached: the return value is then None instead of its exit status.
        """
        keeps, secs = lifetime(c.argv, False)  # attached stdin ends (EOF or exit)
        if keeps and secs is None:
            self.start(c.id)
            return None
        self._check_network(c)
        self._prepare(c)
        self.o.unlink(posixpath.join(RUNC_ROOT, c.id, "exec.fifo"))
        self._running(c)
        out, err = logs.Tee("stdout", stdout), logs.Tee("stderr", stderr)
        cfg = c.doc["Config"]
        uid, gid = users.lookup(self.fs, self.merged(c), str(cfg.get("User") or ""))
        code = run_in_root(
            self.fs,
            self.merged(c),
            c.argv,
            stdout=out,
            stderr=err,
            stdin=stdin,
            lines=lines,
            env=list(cfg.get("Env") or []),
            cwd=str(cfg.get("WorkingDir") or "/"),
            uid=uid,
            gid=gid,
            hostname=str(cfg["Hostname"]),
        )
        logs.append(self.o, c.doc["LogPath"], [out, err], self.now())
        self.procs.exit(int(c.state["Pid"]), code)
        self._exited(c, code, None)
        return code

    def _running(self, c: Container) -> None:
        st = c.state
        rc = self.runc.load(c.id)
        st.update(Running=True, Paused=False, Pid=rc.pid, ExitCode=0, Error="")
        st["StartedAt"] = rfc3339nano(self.now())
        st["FinishedAt"] = ZERO_TIME
        c.doc["HasBeenStartedBefore"] = True
        c.doc["HasBeenManuallyStopped"] = False
        self.containers.save(c)

    def _cleanup_failed_start(self, c: Container) -> None:
        if self.runc.exists(c.id):
            self.runc.destroy(c.id)
        files.rmtree(self.o, posixpath.join(BUNDLES, c.id))
        self.layers.unmount(c.id)

    def _exited(self, c: Container, code: int, finished_ns: int | None) -> None:
        """The main process ended: record it, delete the runc container, unmount the rootfs."""
        st = c.state
        st.update(Running=False, Paused=False, Pid=0, ExitCode=code)
        st["FinishedAt"] = rfc3339nano(finished_ns if finished_ns is not None else self.now())
        if self.runc.exists(c.id):
            self.runc.destroy(c.id)
        files.rmtree(self.o, posixpath.join(BUNDLES, c.id))
        if self.driver.is_mounted(self.layers.get_mount_id(c.id)):
            self.layers.unmount(c.id)
        self.containers.save(c)
        if c.host.get("AutoRemove"):
            self._remove(c)

    def _exists(self, cid: str) -> bool:
        return cid in self.containers.ids()

    # --- exec / stop / kill / rm ----------------------------------------------------------------
    def exec(
        self,
        text: str,
        argv: list[str],
        *,
        stdout: IO[Any],
        stderr: IO[Any],
        stdin: bytes = b"",
        lines: Callable[[], str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
        env: list[str] | None = None,
    ) -> int:
        c = self.container(text)
        if not c.state["Running"]:
            if self.version.legacy_container_errors:
                raise DaemonError(f"Container {c.id} is not running")
            raise DaemonError(f"container {c.id} is not running")
        if c.state["Paused"]:
            raise DaemonError(f"Container {c.id} is paused, unpause the container before exec")
        cfg = c.doc["Config"]
        oci = "OCI runtime exec failed: exec failed: unable to start container process: "
        try:
            uid, gid = users.lookup(
                self.fs, self.merged(c), user if user is not None else str(cfg.get("User") or "")
            )
        except users.UserNotFound as e:
            raise ExecFailed(f"{oci}{e}: unknown", 126, raw=True) from None
        try:
            check_executable(argv, self.fs, self.merged(c))
        except NotFound as e:
            raise ExecFailed(f"{oci}{e}: unknown", 127, raw=True) from None
        return run_in_root(
            self.fs,
            self.merged(c),
            argv,
            stdout=stdout,
            stderr=stderr,
            stdin=stdin,
            lines=lines,
            env=list(cfg.get("Env") or []) + list(env or []),
            cwd=workdir or str(cfg.get("WorkingDir") or "/"),
            uid=uid,
            gid=gid,
            hostname=str(cfg["Hostname"]),
        )

    def stop(self, text: str, timeout: int = STOP_TIMEOUT, signal: str | None = None) -> Container:
        """SIGTERM (or the image's StopSignal), then SIGKILL after ``timeout`` seconds."""
        c = self.container(text)
        if not c.state["Running"]:
            return c
        pid = int(c.state["Pid"])
        sig = signal or str(c.doc["Config"].get("StopSignal") or "SIGTERM")
        if not self.procs.signal(pid, parse_signal(sig)):
            self.advance(max(timeout, 0))
            self.procs.signal(pid, parse_signal("SIGKILL"))
        c.doc["HasBeenManuallyStopped"] = True
        self._exited(c, self.procs.exit_status(pid) or 0, None)
        return c

    def kill(self, text: str, signal: str = "SIGKILL") -> Container:
        c = self.container(text)
        if not c.state["Running"]:
            raise DaemonError(f"cannot kill container: {text}: container {c.id} is not running")
        pid = int(c.state["Pid"])
        if self.procs.signal(pid, parse_signal(signal)):
            self._exited(c, self.procs.exit_status(pid) or 0, None)
        return c

    def rm(self, text: str, force: bool = False) -> None:
        c = self.container(text)
        if c.state["Running"]:
            if not force and self.version.legacy_container_errors:
                raise DaemonError(
                    f"You cannot remove a running container {c.id}. Stop the container before "
                    "attempting removal or force remove"
                )
            if not force:
                raise DaemonError(
                    f'cannot remove container "{c.doc["Name"]}": container is running: stop '
                    "the container before removing or force remove"
                )
            self.procs.signal(int(c.state["Pid"]), parse_signal("SIGKILL"))
            self._exited(c, 137, None)
            if not self._exists(c.id):
                return
        self._remove(c)

    def _remove(self, c: Container) -> None:
        self.layers.release_rw_layer(c.id)
        self.containers.delete(c.id)

    # --- queries ---------------------------------------------------------------------------------
    def ps(self, all_: bool = False) -> list[Container]:
        cs = [c for c in self.containers.all() if all_ or c.state["Running"]]
        return sorted(cs, key=lambda c: str(c.doc["Created"]), reverse=True)

    def diff(self, text: str) -> list[Any]:
        c = self.container(text)
        return list(self.layers.changes(c.id))

    def export(self, text: str, out: Any) -> None:
        """``docker export``: a tar of the container's whole merged view (init files too)."""
        from overlaysim.image.export import rootfs_tar

        c = self.container(text)
        merged = self.layers.mount(c.id)
        try:
            legacy = self.version.tar_legacy_headers
            # dockerd 20.10 tars chrooted in the rootfs: names come from the container's files
            names = users.tar_names(self.fs, merged) if legacy else None
            rootfs_tar(self.o, merged, out, legacy_mode_bits=legacy, names=names)
        finally:
            self.layers.unmount(c.id)

    def logs(self, text: str) -> list[tuple[str, str]]:
        c = self.container(text)
        return logs.read(self.o, str(c.doc["LogPath"]))
