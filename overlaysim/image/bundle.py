"""runc bundles: ``config.json`` exactly as ``runc spec`` prints it, and a hardened rootfs export.

Writing to the real disk is the one step where a hostile image could do harm, so it is its
own careful function: a new top directory of mode 0700, every entry created relative to a
directory fd with O_NOFOLLOW/O_EXCL (a symlink in the image can never redirect a write),
no device nodes unless asked (and root), set-id bits and file capabilities stripped unless
asked, owners kept only when running as root.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass, field
from typing import Any

from overlaysim.image.findings import Findings
from overlaysim.image.gojson import dumps_indent

_OCI_VERSION = {"1.1": "1.0.2-dev", "1.2": "1.2.0", "1.3": "1.2.1", "1.4": "1.3.0", "1.5": "1.3.0"}
_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def runc_spec(runc_version: str = "1.4", cgroup_v2: bool = True) -> dict[str, Any]:
    """``specconv.Example()`` of the given runc minor version, in struct key order."""
    caps: dict[str, Any] = {"bounding": list(_CAPS), "effective": list(_CAPS)}
    if runc_version == "1.1":
        caps["inheritable"] = list(_CAPS)
    caps["permitted"] = list(_CAPS)
    if runc_version == "1.1":
        caps["ambient"] = list(_CAPS)
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    if cgroup_v2:
        namespaces.append({"type": "cgroup"})
    return {
        "ociVersion": _OCI_VERSION.get(runc_version, "1.3.0"),
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def runc_spec_json(
    runc_version: str = "1.4", cgroup_v2: bool = True, image_config: dict[str, Any] | None = None
) -> bytes:
    """The bytes of config.json (tab-indented, no trailing newline, as runc writes it)."""
    spec = runc_spec(runc_version, cgroup_v2)
    if image_config is not None:
        _apply_image_config(spec, image_config)
    return dumps_indent(spec).encode()


def _apply_image_config(spec: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Optional, umoci-style: take args/env/cwd from the image config (not what runc spec does)."""
    c = cfg.get("config") or {}
    if not isinstance(c, dict):
        return
    ep = c.get("Entrypoint") or []
    cmd = c.get("Cmd") or []
    args = (
        [str(x) for x in (list(ep) + list(cmd))]
        if isinstance(ep, list) and isinstance(cmd, list)
        else []
    )
    proc = spec["process"]
    if args:
        proc["args"] = args
    if isinstance(c.get("Env"), list) and c["Env"]:
        proc["env"] = [str(x) for x in c["Env"]]
    if isinstance(c.get("WorkingDir"), str) and c["WorkingDir"]:
        proc["cwd"] = c["WorkingDir"]


@dataclass
class ExportPolicy:
    devices: bool = False
    keep_setid: bool = False
    keep_caps: bool = False
    owners: bool = True
    findings: Findings = field(default_factory=Findings)


def write_tree(
    o: Any, src: str, dest: str, policy: ExportPolicy | None = None, top_mode: int = 0o700
) -> int:
    """Copy the tree at ``src`` (in ``o``) to the new real directory ``dest``; returns entries."""
    policy = policy or ExportPolicy()
    is_root = os.geteuid() == 0
    os.mkdir(dest, 0o700)
    top = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    count = 0
    inodes: dict[tuple[int, int], tuple[int, str]] = {}
    deferred: list[tuple[int, str, os.stat_result]] = []  # (dir fd, name, stat) of directories
    fds = [top]
    try:
        stack: list[tuple[str, int]] = [(src, top)]
        while stack:
            spath, dfd = stack.pop()
            for name in sorted(o.listdir(spath)):
                p = posixpath.join(spath, name)
                st = o.lstat(p)
                fmt = stat.S_IFMT(st.st_mode)
                mode = stat.S_IMODE(st.st_mode)
                if (
                    not policy.keep_setid
                    and mode & (stat.S_ISUID | stat.S_ISGID)
                    and fmt != stat.S_IFDIR
                ):
                    policy.findings.add(
                        "setid-stripped", "set-id bits removed on export", p, level="neutralised"
                    )
                    mode &= ~(stat.S_ISUID | stat.S_ISGID)
                key = (st.st_dev, st.st_ino)
                if fmt != stat.S_IFDIR and st.st_nlink > 1 and key in inodes:
                    ofd, oname = inodes[key]
                    os.link(oname, name, src_dir_fd=ofd, dst_dir_fd=dfd, follow_symlinks=False)
                    count += 1
                    continue
                if fmt == stat.S_IFDIR:
                    os.mkdir(name, 0o700, dir_fd=dfd)
                    cfd = os.open(
                        name,
                        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=dfd,
                    )
                    fds.append(cfd)
                    stack.append((p, cfd))
                    deferred.append((dfd, name, st))
                    count += 1
                    continue
                if fmt == stat.S_IFREG:
                    _copy_file(o, p, dfd, name)
                elif fmt == stat.S_IFLNK:
                    os.symlink(o.readlink(p), name, dir_fd=dfd)
                elif fmt == stat.S_IFIFO:
                    os.mkfifo(name, 0o600, dir_fd=dfd)
                elif fmt in (stat.S_IFCHR, stat.S_IFBLK) and policy.devices and is_root:
                    os.mknod(name, fmt | 0o600, st.st_rdev, dir_fd=dfd)
                else:
                    policy.findings.add(
                        "device-skipped", "device node not exported", p, level="neutralised"
                    )
                    continue
                if st.st_nlink > 1:
                    inodes[key] = (dfd, name)
                _finish(dfd, name, st, mode, fmt == stat.S_IFLNK, policy.owners and is_root)
                count += 1
        for dfd, name, st in reversed(deferred):
            _finish(dfd, name, st, stat.S_IMODE(st.st_mode), False, policy.owners and is_root)
        os.chmod(top, top_mode)
    finally:
        for fd in fds:
            os.close(fd)
    return count


def _copy_file(o: Any, path: str, dfd: int, name: str) -> None:
    sfd = o.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd
    )
    try:
        while True:
            b = o.read(sfd, 1 << 20)
            if not b:
                break
            view = memoryview(b)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
        o.close(sfd)


def _finish(
    dfd: int, name: str, st: os.stat_result, mode: int, is_link: bool, owners: bool
) -> None:
    if owners:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    if not is_link:
        os.chmod(name, mode, dir_fd=dfd)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def write_bundle(
    o: Any, rootfs: str, dest: str, spec_json: bytes, policy: ExportPolicy | None = None
) -> int:
    """A runc bundle: ``dest/config.json`` and ``dest/rootfs/`` (``dest`` must not exist)."""
    os.mkdir(dest, 0o700)
    dfd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(
            "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dfd
        )
        try:
            os.write(fd, spec_json)
        finally:
            os.close(fd)
    finally:
        os.close(dfd)
    return write_tree(o, rootfs, os.path.join(dest, "rootfs"), policy, top_mode=0o755)
