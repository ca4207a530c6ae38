"""A FUSE mount served from a thread of the calling process: real programs on the mount,
the Python API on the same HostFS at the same time (tests, notebooks).

    with FuseMount(fs, "/merged", "/mnt/x") as m:
        subprocess.run(["git", "status"], cwd="/mnt/x")
        with m.locked():              # the API, between two FUSE requests
            fs.os.unlink("/merged/a")
        os.path.exists("/mnt/x/a")    # False at once: nothing is cached by the kernel

The simulation is not thread-safe: hold :meth:`locked` around API calls while mounted, and
never touch the mount point while holding it (the serving thread would wait for you).
Names and attributes are never cached (timeouts 0: the high-level libfuse cannot invalidate
a name, and an API call can change any), pages are dropped at each open, and leaving
:meth:`locked` drops the pages of every file open on the mount, so a process that keeps a
file open across an API change reads the new data. Changes made without :meth:`locked`
reach open files after :meth:`invalidate` (or their next open).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from overlaysim.fuse import binding, umount
from overlaysim.fuse.daemon import check_fuse
from overlaysim.fuse.errors import MountError
from overlaysim.fuse.ops import Operations
from overlaysim.vfs.hostfs import HostFS


class FuseMount:
    """Serve directory ``path`` of ``fs`` (usually an overlay's mount point) on the real
    directory ``mountpoint`` until :meth:`close`."""

    def __init__(self, fs: HostFS, path: str, mountpoint: str, *, options: tuple[str, ...] = (),
                 after: Callable[[int], None] | None = None, timeout: float = 30.0) -> None:  # fmt: skip
        check_fuse()
        self.mountpoint = os.path.realpath(mountpoint)
        proc = fs.fork()
        proc.os.chroot(path)
        proc.os.chdir("/")
        self._ready = threading.Event()
        self._depth = 0  # nesting of locked()
        self._handle = 0
        self.ops = Operations(proc, binding.context, after=after, ready=self._on_ready,
                              caching=False, root=path)  # fmt: skip
        opts = ["fsname=overlaysim", "subtype=overlaysim", *options]
        if os.geteuid() == 0:
            opts.append("allow_other")
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(opts,), daemon=True,
                                        name=f"fuse {self.mountpoint}")  # fmt: skip
        self._thread.start()
        if not self._ready.wait(timeout) or not self._handle:
            why = self._error or "no answer from libfuse"
            raise MountError(f"cannot mount {self.mountpoint}: {why}")

    def _on_ready(self) -> None:
        self._handle = binding.session_handle()
        self._ready.set()

    def _run(self, opts: list[str]) -> None:
        try:
            binding.serve(self.ops, self.mountpoint, opts)
        except BaseException as e:
            self._error = e
        finally:
            self._ready.set()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the simulation (no FUSE request runs meanwhile); on leaving,
        the kernel drops the pages of the files open on the mount. That happens after the
        lock is released: a reader waiting for a page the kernel holds locked needs a
        request served first."""
        paths: list[str] = []
        with self.ops.mutex:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if not self._depth:
                    paths = self.ops.open_paths()
        self.ops.invalidate(paths, wait=30.0)

    def invalidate(self, path: str) -> None:
        """Forget what the kernel cached for ``path`` (relative to the mount's root)."""
        binding.invalidate(self._handle, "/" + path.lstrip("/"))

    def close(self, *, lazy: bool = False) -> None:
        if self._thread.is_alive():
            umount.detach(self.mountpoint, lazy)
            self._thread.join(30)

    def __enter__(self) -> FuseMount:
        return self

    def __exit__(self, tp: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:  # fmt: skip
        self.close()
        return None
