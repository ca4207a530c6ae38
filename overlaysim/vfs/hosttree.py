"""Copying trees between HostFS and the real disk: the bridge to the kernel oracle.

Import reads a real directory and recreates it (types, modes, owners, ns times, xattrs, device
numbers, hard links). Export writes a HostFS subtree to a *new* real directory without ever
following a symlink (every call is relative to a directory fd, with O_NOFOLLOW), and by default
drops what a hostile tree could abuse: device nodes other than whiteouts, setuid/setgid bits and
file capabilities (security.md section 7). ``exact=True`` keeps everything (the oracle's mode).
"""

from __future__ import annotations

import errno
import os
import stat as st
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from overlaysim.vfs.hostfs import HostFS
    from overlaysim.vfs.osmodule import OsModule

_PRIV_XATTRS = ("security.capability",)


@dataclass
class ExportReport:
    """What export_tree wrote and what it refused to write (one line per finding)."""

    entries: int = 0
    findings: list[str] = field(default_factory=list)


# --- import -----------------------------------------------------------------------------------
def import_tree(fs: HostFS, real_dir: str, dest: str, *, xattrs: bool = True) -> None:
    o = fs.os
    top = os.lstat(real_dir)
    if not st.S_ISDIR(top.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), real_dir)
    if not o.path.isdir(dest):
        o.makedirs(dest)
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, str]] = [(real_dir, dest)]
    _import_dir(o, real_dir, dest, links, dirs, xattrs)
    # Directory metadata last (deepest first), so adding children does not disturb mtimes.
    for real, sim in reversed(dirs):
        _copy_meta(o, real, sim, os.lstat(real), xattrs)


def _import_dir(
    o: OsModule,
    real: str,
    sim: str,
    links: dict[tuple[int, int], str],
    dirs: list[tuple[str, str]],
    xattrs: bool,
) -> None:
    with os.scandir(real) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rp = os.path.join(real, entry.name)
        sp = o.path.join(sim, entry.name)
        s = os.lstat(rp)
        mode = s.st_mode
        key = (s.st_dev, s.st_ino)
        if not st.S_ISDIR(mode) and s.st_nlink > 1 and key in links:
            o.link(links[key], sp, follow_symlinks=False)
            continue
        if st.S_ISDIR(mode):
            o.mkdir(sp, 0o700)
            dirs.append((rp, sp))
            _import_dir(o, rp, sp, links, dirs, xattrs)
            continue
        if st.S_ISREG(mode):
            fd = o.open(sp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with open(rp, "rb") as f:
                    while chunk := f.read(1 << 20):
                        o.write(fd, chunk)
            finally:
                o.close(fd)
        elif st.S_ISLNK(mode):
            o.symlink(os.readlink(rp), sp)
        else:
            o.mknod(sp, st.S_IFMT(mode) | 0o600, s.st_rdev)
        if s.st_nlink > 1:
            links[key] = sp
        _copy_meta(o, rp, sp, s, xattrs)


def _copy_meta(o: OsModule, rp: str, sp: str, s: os.stat_result, xattrs: bool) -> None:
    if xattrs:
        for name in list_real_xattrs(rp):
            try:
                value = os.getxattr(rp, name, follow_symlinks=False)
            except OSError:
                continue
            o.setxattr(sp, name, value, follow_symlinks=False)
    o.chown(sp, s.st_uid, s.st_gid, follow_symlinks=False)
    if not st.S_ISLNK(s.st_mode):
        o.chmod(sp, st.S_IMODE(s.st_mode))
    o.utime(sp, ns=(s.st_atime_ns, s.st_mtime_ns), follow_symlinks=False)


def list_real_xattrs(path: str | int, follow: bool = False) -> list[str]:
    """The xattr names of a real file; none where its filesystem keeps none (or refuses)."""
    try:
        return os.listxattr(path, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return []
        raise


# --- export -----------------------------------------------------------------------------------
def export_tree(
    fs: HostFS,
    src: str,
    real_dir: str,
    *,
    exact: bool = False,
    devices: bool | None = None,
    keep_privileges: bool | None = None,
    xattrs: bool = True,
) -> ExportReport:
    """Write ``src`` to ``real_dir``, which must not exist yet (created with mode 0700).

    ``devices`` allows device nodes other than 0/0 whiteouts (needs root); ``keep_privileges``
    keeps setuid/setgid and ``security.capability``; ``exact`` turns both on and gives the top
    directory ``src``'s own mode, owner, times and xattrs.
    """
    devices = exact if devices is None else devices
    keep_privileges = exact if keep_privileges is None else keep_privileges
    o = fs.os
    top = o.lstat(src)
    if not st.S_ISDIR(top.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), src)
    os.mkdir(real_dir, 0o700)
    report = ExportReport()
    root_fd = os.open(real_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        ex = _Exporter(o, root_fd, report, devices, keep_privileges, xattrs)
        ex.export_dir(src, root_fd, "")
        if exact:
            ex.apply_meta(root_fd, None, top, src)
            os.utime(root_fd, ns=(top.st_atime_ns, top.st_mtime_ns))
    finally:
        os.close(root_fd)
    return report


class _Exporter:
    def __init__(
        self,
        o: OsModule,
        root_fd: int,
        report: ExportReport,
        devices: bool,
        keep_privileges: bool,
        xattrs: bool,
    ) -> None:
        self.o = o
        self.root_fd = root_fd
        self.report = report
        self.devices = devices
        self.keep_priv = keep_privileges
        self.xattrs = xattrs
        self.links: dict[tuple[int, int], str] = {}  # (st_dev, st_ino): mounts may be crossed
        self.root_uid = os.geteuid() == 0

    def export_dir(self, sim: str, dfd: int, rel: str) -> None:
        o = self.o
        for name in sorted(o.listdir(sim)):
            sp = o.path.join(sim, name)
            s = o.lstat(sp)
            mode = s.st_mode
            rel_child = f"{rel}/{name}" if rel else name
            if not st.S_ISDIR(mode) and s.st_nlink > 1 and (s.st_dev, s.st_ino) in self.links:
                os.link(self.links[(s.st_dev, s.st_ino)], name, src_dir_fd=self.root_fd, dst_dir_fd=dfd,
                        follow_symlinks=False)  # fmt: skip
                self.report.entries += 1
                continue
            if st.S_ISDIR(mode):
                os.mkdir(name, 0o700, dir_fd=dfd)
                cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    self.export_dir(sp, cfd, rel_child)
                    self.apply_meta(cfd, None, s, sp)
                finally:
                    os.close(cfd)
                os.utime(name, ns=(s.st_atime_ns, s.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
                self.report.entries += 1
                continue
            if not self._write_leaf(sp, name, dfd, s):
                continue
            if s.st_nlink > 1:
                self.links[(s.st_dev, s.st_ino)] = rel_child
            self.report.entries += 1

    def _write_leaf(self, sp: str, name: str, dfd: int, s: os.stat_result) -> bool:
        o = self.o
        mode = s.st_mode
        if st.S_ISREG(mode):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                         dir_fd=dfd)  # fmt: skip
            try:
                sfd = o.open(sp, os.O_RDONLY)
                try:
                    while chunk := o.read(sfd, 1 << 20):
                        os.write(fd, chunk)
                finally:
                    o.close(sfd)
                self.apply_meta(fd, None, s, sp)
            finally:
                os.close(fd)
            os.utime(name, ns=(s.st_atime_ns, s.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
            return True
        if st.S_ISLNK(mode):
            os.symlink(o.readlink(sp), name, dir_fd=dfd)
        else:
            whiteout = st.S_ISCHR(mode) and s.st_rdev == 0
            if (st.S_ISCHR(mode) or st.S_ISBLK(mode)) and not whiteout and not (
                self.devices and self.root_uid
            ):
                self.report.findings.append(f"{sp}: device node not exported (devices=False)")
                return False
            os.mknod(name, st.S_IFMT(mode) | 0o600, s.st_rdev, dir_fd=dfd)
        self.apply_meta(dfd, name, s, sp)
        os.utime(name, ns=(s.st_atime_ns, s.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        return True

    def apply_meta(self, fd: int, name: str | None, s: os.stat_result, sp: str) -> None:
        """Owner, xattrs, mode: on ``fd`` itself, or on ``name`` inside dir ``fd`` (no follow)."""
        target: int | str = fd if name is None else f"/proc/self/fd/{fd}/{name}"
        if self.root_uid:
            if name is None:
                os.fchown(fd, s.st_uid, s.st_gid)
            else:
                os.chown(name, s.st_uid, s.st_gid, dir_fd=fd, follow_symlinks=False)
        if self.xattrs:
            for xname in self.o.listxattr(sp, follow_symlinks=False):
                if xname in _PRIV_XATTRS and not self.keep_priv:
                    self.report.findings.append(f"{sp}: {xname} dropped")
                    continue
                value = self.o.getxattr(sp, xname, follow_symlinks=False)
                os.setxattr(target, xname, value, follow_symlinks=isinstance(target, int))
        mode = st.S_IMODE(s.st_mode)
        if not self.keep_priv and mode & (st.S_ISUID | st.S_ISGID) and not st.S_ISDIR(s.st_mode):
            self.report.findings.append(f"{sp}: setuid/setgid bits dropped")
            mode &= ~(st.S_ISUID | st.S_ISGID)
        if st.S_ISLNK(s.st_mode):
            return
        if name is None:
            os.fchmod(fd, mode)
        else:
            os.chmod(name, mode, dir_fd=fd)
