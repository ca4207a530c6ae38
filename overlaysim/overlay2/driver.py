"""Docker's overlay2 graph driver (moby ``daemon/graphdriver/overlay2``) over a HostFS.

It writes ``<root>/overlay2`` exactly as dockerd does: one directory per layer named by its
cache-id (or mount-id, or ``<mount-id>-init``) with ``diff/``, ``link``, ``lower``, ``work/``
and ``committed``; short symlinks in ``l/``; ``merged/`` only while mounted. ``get`` mounts the
overlay with the option string Docker builds, switching to relative ``l/...`` paths mounted
from the home directory when the absolute string would not fit in a page. Diffs, changes and
the init layer live in :mod:`overlaysim.overlay2.diff` and :mod:`overlaysim.overlay2.initlayer`.

dockerd's in-memory state (mount reference counts, the id sequence) is kept in the state file
of :mod:`overlaysim.overlay2.state`, so a later process continues where this one stopped.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from overlaysim.overlay2.errors import LayerExists, MaxDepthExceeded, MountTooLarge, StorageError
from overlaysim.overlay2.ids import IdGen
from overlaysim.overlay2.state import STATE_NAME, StateFile
from overlaysim.vfs.cred import ROOT
from overlaysim.vfs.hostfs import HostFS, Process

if TYPE_CHECKING:
    from overlaysim.image.export import Change
    from overlaysim.image.limits import Limits

DRIVER_NAME = "overlay2"
LINK_DIR = "l"
MAX_DEPTH = 128  # entries of a layer's ``lower`` chain
PAGE_SIZE = 4096
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class MountData:
    """What ``get`` passes to mount(2): ``data``, ``target``, and the cwd it mounts from."""

    data: str
    target: str
    cwd: str
    relative: bool
    readonly: bool


def _go_error(e: OSError) -> str:
    """Go's spelling of an errno ("no such file or directory")."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


class Overlay2Driver:
    """The overlay2 storage driver of one Docker root (``/var/lib/docker`` by default)."""

    def __init__(
        self,
        fs: HostFS,
        root: str = "/var/lib/docker",
        *,
        ids: IdGen,
        index_off: bool = True,
        userxattr: bool = False,
        backing_fs: str = "extfs",
        native_diff: bool = True,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.fs = fs
        self.root = posixpath.normpath(root)
        self.home = posixpath.join(self.root, DRIVER_NAME)
        # dockerd: root, umask 022, its own cwd (a process of its own, as the real daemon)
        self.proc = Process(fs, fs.task.fork(ROOT))
        self.o = self.proc.os
        self.o.umask(0o022)
        self.o.chdir("/")
        self.index_off = index_off
        self.userxattr = userxattr
        self.backing_fs = backing_fs
        self.native_diff = native_diff
        # how Diff writes tar headers: Docker <= 20.10 adds S_IF* bits and looked names up
        self.tar_type_bits = False
        self.tar_names: Callable[[int, int], tuple[str, str]] | None = None
        self.metacopy = False
        self.naive_diff_reason: str | None = None
        self.page_size = page_size
        self.mkdir_all(self.root, 0o710)
        self.mkdir_all(self.home, 0o710)
        self.mkdir_all(posixpath.join(self.home, LINK_DIR), 0o700)
        self.state = StateFile(self.o, posixpath.join(self.root, STATE_NAME))
        self.ids = ids.bind(self.state)

    # --- small file helpers -------------------------------------------------------------------
    def mkdir_all(self, path: str, mode: int) -> None:
        """MkdirAllAndChown: create missing components with ``mode`` (existing ones are kept)."""
        try:
            st = self.o.stat(path)
        except FileNotFoundError:
            parent = posixpath.dirname(path)
            if parent != path:
                self.mkdir_all(parent, 0o755)
            self.o.mkdir(path, mode)
            self.o.chmod(path, mode)
            return
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)

    def read(self, path: str) -> bytes | None:
        """The whole file, or None if it does not exist."""
        try:
            fd = self.o.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            parts = []
            while chunk := self.o.read(fd, 1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        finally:
            self.o.close(fd)

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        """atomicwriter.WriteFile: a temp file beside it, chmod to exactly ``mode``, rename."""
        d, base = posixpath.split(path)
        tmp = posixpath.join(d, f".tmp-{base}")
        fd = self.o.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, mode)
        try:
            if data:
                self.o.write(fd, data)
            self.o.fchmod(fd, mode)
        finally:
            self.o.close(fd)
        self.o.rename(tmp, path)

    def rmtree(self, path: str) -> None:
        """os.RemoveAll that first detaches anything mounted below (EnsureRemoveAll)."""
        try:
            st = self.o.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if self._mounted_on(path):
                self.detach(path)
            for name in self.o.listdir(path):
                self.rmtree(posixpath.join(path, name))
            self.o.rmdir(path)
        else:
            self.o.unlink(path)

    # --- layout -------------------------------------------------------------------------------
    def dir(self, id: str) -> str:
        return posixpath.join(self.home, id)

    def _check_id(self, id: str) -> None:
        if not id or "/" in id or id in (".", "..", LINK_DIR) or "\0" in id:
            raise StorageError(f"invalid layer id {id!r}")

    def exists(self, id: str) -> bool:
        try:
            self.o.stat(self.dir(id))
        except OSError:
            return False
        return True

    def create(
        self, id: str, parent: str | None = None, storage_opt: dict[str, str] | None = None
    ) -> None:
        """Create an image layer directory (``Create``)."""
        if storage_opt and "size" in storage_opt:
            raise StorageError("--storage-opt size is only supported for ReadWrite Layers")
        self._create(id, parent or "")

    def create_read_write(
        self, id: str, parent: str | None = None, storage_opt: dict[str, str] | None = None
    ) -> None:
        """Create a container (or init) layer directory (``CreateReadWrite``)."""
        if storage_opt and "size" in storage_opt:
            raise StorageError(
                "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
            )
        self._create(id, parent or "")

    def _create(self, id: str, parent: str) -> None:
        self._check_id(id)
        if parent:
            self._check_id(parent)
        d = self.dir(id)
        self.mkdir_all(self.home, 0o710)
        try:
            self.o.mkdir(d, 0o710)
        except FileExistsError:
            raise LayerExists(f"layer {id} already exists in {self.home}") from None
        self.o.chmod(d, 0o710)
        try:
            self.o.mkdir(posixpath.join(d, "diff"), 0o755)
            lid = self.ids.link_id()
            self.o.symlink(
                posixpath.join("..", id, "diff"), posixpath.join(self.home, LINK_DIR, lid)
            )
            self.write_file(posixpath.join(d, "link"), lid.encode(), 0o644)
            if not parent:
                return
            self.o.mkdir(posixpath.join(d, "work"), 0o700)
            self.write_file(posixpath.join(self.dir(parent), "committed"), b"", 0o600)
            lower = self._get_lower(parent)
            if lower:
                self.write_file(posixpath.join(d, "lower"), lower.encode(), 0o644)
        except BaseException:
            # as moby: only the layer directory is removed (an l/ link made already stays)
            self.rmtree(d)
            raise

    def _get_lower(self, parent: str) -> str:
        pdir = self.dir(parent)
        self.o.lstat(pdir)
        link = self.read(posixpath.join(pdir, "link"))
        if link is None:
            raise FileNotFoundError(
                errno.ENOENT, "No such file or directory", posixpath.join(pdir, "link")
            )
        lowers = [posixpath.join(LINK_DIR, link.decode())]
        plower = self.read(posixpath.join(pdir, "lower"))
        if plower is not None:
            lowers += plower.decode().split(":")
        if len(lowers) > MAX_DEPTH:
            raise MaxDepthExceeded()
        return ":".join(lowers)

    def link(self, id: str) -> str:
        """The layer's 26-character link id."""
        data = self.read(posixpath.join(self.dir(id), "link"))
        if data is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", self.dir(id))
        return data.decode()

    def lower(self, id: str) -> list[str]:
        """The ``l/<link>`` entries of the layer's ``lower`` file, uppermost first."""
        data = self.read(posixpath.join(self.dir(id), "lower"))
        return data.decode().split(":") if data else []

    def lower_dirs(self, id: str) -> list[str]:
        """Each lower entry resolved through its symlink (``getLowerDirs``), uppermost first."""
        out = []
        for s in self.lower(id):
            target = self.o.readlink(posixpath.join(self.home, s))
            out.append(posixpath.normpath(posixpath.join(self.home, LINK_DIR, target)))
        return out

    def parent_id(self, id: str) -> str:
        """The id of the layer directly below ``id`` ('' for a base layer), from the link."""
        dirs = self.lower_dirs(id)
        return posixpath.basename(posixpath.dirname(dirs[0])) if dirs else ""

    def remove(self, id: str) -> None:
        """``Remove``: drop ``l/<link>`` then the layer directory (unmounting it if needed)."""
        if not id:
            raise StorageError("refusing to remove the directories: id is empty")
        self._check_id(id)
        d = self.dir(id)
        lid = self.read(posixpath.join(d, "link"))
        if lid:  # an empty link file is refused (moby logs it and goes on)
            self.rmtree(posixpath.join(self.home, LINK_DIR, lid.decode()))
        self._set_count(id, 0)
        self.rmtree(d)

    def ids_on_disk(self) -> list[str]:
        """Every layer directory of the home, sorted."""
        return sorted(n for n in self.o.listdir(self.home) if n != LINK_DIR)

    # --- mounting -----------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        data = self.state.get("mounts")
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _set_count(self, id: str, n: int) -> None:
        counts = self._counts()
        if n > 0:
            counts[id] = n
        elif id in counts:
            del counts[id]
        else:
            return
        self.state.set("mounts", counts)

    def _mounted_on(self, path: str) -> bool:
        return any(m.target == path for m in self.proc.mounts())

    def ref_count(self, id: str) -> int:
        """How many ``get`` calls are not yet matched by a ``put`` (mountref.Counter).

        As moby's counter after a daemon restart: a merged dir found mounted with no count
        recorded counts once; a recorded count without a mount is stale and counts nothing.
        """
        merged = posixpath.join(self.dir(id), "merged")
        if not self._mounted_on(merged):
            return 0
        return max(1, self._counts().get(id, 0))

    def is_mounted(self, id: str) -> bool:
        return self._mounted_on(posixpath.join(self.dir(id), "merged"))

    def mount_data(self, id: str, mount_label: str = "") -> MountData:
        """The mount(2) arguments ``get`` uses for ``id`` (absolute or relative form)."""
        d = self.dir(id)
        lowers = self.read(posixpath.join(d, "lower"))
        if lowers is None:
            raise StorageError(f"layer {id} has no parent: it is used as is, never mounted")
        readonly = self.read(posixpath.join(d, "committed")) is not None
        prefix = ("index=off," if self.index_off else "") + ("userxattr," if self.userxattr else "")
        split = lowers.decode().split(":")
        abs_lowers = ":".join(posixpath.join(self.home, s) for s in split)
        diff, work = posixpath.join(d, "diff"), posixpath.join(d, "work")
        if readonly:
            opts = f"{prefix}lowerdir={diff}:{abs_lowers}"
        else:
            opts = f"{prefix}lowerdir={abs_lowers},upperdir={diff},workdir={work}"
        data = _with_label(opts, mount_label)
        merged = posixpath.join(d, "merged")
        if len(data.encode()) <= self.page_size - 1:
            return MountData(data, merged, "/", False, readonly)
        rel_lowers = lowers.decode()
        if readonly:
            opts = f"{prefix}lowerdir={id}/diff:{rel_lowers}"
        else:
            opts = f"{prefix}lowerdir={rel_lowers},upperdir={id}/diff,workdir={id}/work"
        data = _with_label(opts, mount_label)
        if len(data.encode()) > self.page_size - 1:
            raise MountTooLarge(f"cannot mount layer, mount label too large {len(data.encode())}")
        return MountData(data, f"{id}/merged", self.home, True, readonly)

    def get(self, id: str, mount_label: str = "") -> str:
        """Mount the layer and return its root (``Get``): ``merged/``, or ``diff/`` of a base."""
        self._check_id(id)
        d = self.dir(id)
        self.o.stat(d)
        diff = posixpath.join(d, "diff")
        if self.read(posixpath.join(d, "lower")) is None:
            return diff
        merged = posixpath.join(d, "merged")
        count = self.ref_count(id)
        if count > 0:
            self._set_count(id, count + 1)
            return merged
        md = self.mount_data(id, mount_label)
        try:
            self.o.mkdir(merged, 0o700)
        except FileExistsError:
            pass
        try:
            if md.relative:
                # moby's mountFrom: a thread that unshares its fs context and chdirs to the home
                mounter = Process(self.fs, self.proc.task.fork(ROOT))
                mounter.os.chdir(md.cwd)
                mounter.mount("overlay", md.target, "overlay", md.data)
            else:
                self.proc.mount("overlay", md.target, "overlay", md.data)
        except OSError as e:
            try:
                self.o.rmdir(merged)
            except OSError:
                pass
            raise OSError(
                e.errno, f"error creating overlay mount to {merged}: {_go_error(e)}"
            ) from None
        self._set_count(id, 1)
        return merged

    def put(self, id: str) -> None:
        """Release one ``get``; at zero unmount (detaching, like MNT_DETACH) and rmdir merged."""
        self._check_id(id)
        d = self.dir(id)
        if self.read(posixpath.join(d, "lower")) is None:
            return
        merged = posixpath.join(d, "merged")
        count = self.ref_count(id) - 1
        self._set_count(id, count)
        if count > 0:
            return
        if self._mounted_on(merged):
            self.detach(merged)
        try:
            self.o.rmdir(merged)
        except OSError:
            pass

    def detach(self, path: str) -> None:
        """umount2(path, MNT_DETACH): a busy mount is taken out of the tree all the same."""
        try:
            self.proc.umount(path)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                return
        mnt, node = self.o._resolve(path)
        if node is not mnt.root or mnt.parent is None:
            return
        try:
            self.fs.mount_table.detach(mnt)
        except OSError:
            return
        hook = getattr(mnt.private, "on_umount", None)
        if hook is not None:
            hook()

    def mount_line(self, id: str) -> str | None:
        """The /proc/self/mounts line of the layer's merged mount, if mounted."""
        merged = posixpath.join(self.dir(id), "merged")
        for m in reversed(self.proc.mounts()):
            if m.target == merged:
                return m.line()
        return None

    # --- docker inspect / docker info ---------------------------------------------------------
    def metadata(self, id: str) -> dict[str, str]:
        """``GetMetadata``: GraphDriver.Data of ``docker inspect`` (keys in JSON order)."""
        d = self.dir(id)
        self.o.stat(d)
        data = {
            "MergedDir": posixpath.join(d, "merged"),
            "UpperDir": posixpath.join(d, "diff"),
            "WorkDir": posixpath.join(d, "work"),
        }
        lowers = self.lower_dirs(id)
        if lowers:
            data["LowerDir"] = ":".join(lowers)
        return dict(sorted(data.items()))

    def status(self) -> list[tuple[str, str]]:
        """The driver's lines of ``docker info`` (below ``Storage Driver: overlay2``)."""
        return [
            ("Backing Filesystem", self.backing_fs),
            ("Supports d_type", "true"),
            ("Using metacopy", "true" if self.metacopy else "false"),
            ("Native Overlay Diff", "true" if self.native_diff else "false"),
            ("userxattr", "true" if self.userxattr else "false"),
        ]

    def probe(self) -> list[tuple[str, str]]:
        """Run dockerd's start-up probes on the engine (temp dirs in the home); new status.

        Sets ``native_diff`` (moby's ``useNaiveDiff`` check) and ``metacopy``; the reason a
        native diff is refused, if any, is kept in ``naive_diff_reason``.
        """
        from overlaysim.overlay2 import probes

        self.metacopy = probes.uses_metacopy(self)
        self.naive_diff_reason = probes.native_diff_problem(self)
        self.native_diff = self.naive_diff_reason is None
        return self.status()

    def __str__(self) -> str:
        return DRIVER_NAME

    # --- layer contents (see diff.py / initlayer.py) ------------------------------------------
    def is_parent(self, id: str, parent: str | None) -> bool:
        """moby's ``isParent``: is ``parent`` the layer directly below ``id``?"""
        try:
            lowers = self.lower_dirs(id)
        except OSError:
            return False
        if not parent:
            return not lowers
        return bool(lowers) and posixpath.dirname(lowers[0]) == self.dir(parent)

    def apply_diff(
        self, id: str, parent: str | None, tar: bytes | Any, *, limits: Limits | None = None
    ) -> int:
        """Unpack a layer tar into the layer (``ApplyDiff``); returns the layer's size."""
        from overlaysim.overlay2 import diff

        return diff.apply_diff(self, id, parent or "", tar, limits=limits)

    def diff(self, id: str, parent: str | None = None) -> bytes:
        """The layer tar of ``id`` against ``parent`` (``Diff``, native or naive)."""
        from overlaysim.overlay2 import diff

        return diff.diff(self, id, parent or "")

    def changes(self, id: str, parent: str | None = None) -> list[Change]:
        """``docker diff``: A/C/D between the mounted layer and its parent (always naive)."""
        from overlaysim.overlay2 import diff

        return diff.changes(self, id, parent or "")

    def diff_size(self, id: str, parent: str | None = None) -> int:
        """``DiffSize``: bytes of the layer's own files (native) or of its changes (naive)."""
        from overlaysim.overlay2 import diff

        return diff.diff_size(self, id, parent or "")

    def create_init(self, mount_id: str, parent: str | None) -> str:
        """Create ``<mount_id>-init`` on ``parent`` with Docker's init files; returns its id."""
        from overlaysim.overlay2 import initlayer

        return initlayer.create_init(self, mount_id, parent or "")


def _with_label(opts: str, label: str) -> str:
    """go-selinux FormatMountLabel: ``,context="<label>"`` appended when a label is set."""
    if not label:
        return opts
    return f'{opts},context="{label}"' if opts else f'context="{label}"'
