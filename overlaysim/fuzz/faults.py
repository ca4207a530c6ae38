"""Planted faults: a test-only switch proving that the fuzzer finds and shrinks real bugs.

Each fault is put into the engine from outside, by monkeypatching one engine function for
the duration of :func:`planted` and restoring it afterwards; the engine itself reads no
flag. Every fault mimics a plausible bug of a union filesystem (a copy-up that drops
xattrs, an unlink that forgets its whiteout...) and names the option profile where cases
reach it often. The benchmark and ``tests/fuzz/test_faults.py`` check that a campaign finds
each one and shrinks it to at most five operations.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from overlaysim.errors import UsageError

Planter = Callable[[contextlib.ExitStack], None]


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    profile: str  # a strategies.PROFILES name whose cases reach the fault often
    plant: Planter


def _swap(stack: contextlib.ExitStack, owner: Any, attr: str, new: Any) -> Any:
    """Set ``owner.attr = new`` until the stack closes; returns the old value."""
    old = getattr(owner, attr)
    setattr(owner, attr, new)
    stack.callback(setattr, owner, attr, old)
    return old


def _swap_function(stack: contextlib.ExitStack, module: str, name: str,
                   make: Callable[[Any], Any]) -> None:  # fmt: skip
    """Replace a module-level engine function everywhere it is bound: in its module and in
    every engine module that imported it by name (``from ... import name``)."""
    mod = sys.modules.get(module) or __import__(module, fromlist=[name])
    old = getattr(mod, name)
    new = make(old)
    for other in list(sys.modules.values()):
        if getattr(other, "__name__", "").startswith("overlaysim.overlay") and \
                getattr(other, name, None) is old:  # fmt: skip
            _swap(stack, other, name, new)


def _copy_up_drops_xattrs(stack: contextlib.ExitStack) -> None:
    def make(orig: Any) -> Any:
        def copy_up(ino: Any, reason: str, flags: int = 0) -> Any:
            fresh = ino.upper is None
            upper = orig(ino, reason, flags)
            if fresh:
                for xname in upper.listxattr():
                    if not xname.startswith(ino.ofs.prefix):
                        upper.removexattr(xname)
            return upper

        return copy_up

    _swap_function(stack, "overlaysim.overlay.copy_up", "copy_up", make)


def _unlink_forgets_whiteout(stack: contextlib.ExitStack) -> None:
    def make(orig: Any) -> Any:
        def make_whiteout(ofs: Any, ud: Any, name: str, path: str, reason: str) -> None:
            if reason != "unlink":
                orig(ofs, ud, name, path, reason)

        return make_whiteout

    _swap_function(stack, "overlaysim.overlay.dir", "make_whiteout", make)


def _readdir_shows_whiteouts(stack: contextlib.ExitStack) -> None:
    from overlaysim.overlay import readdir as rd
    from overlaysim.vfs.node import DT_CHR

    def make(orig: Any) -> Any:
        def readdir(d: Any) -> list[tuple[str, int, int]]:
            out: list[tuple[str, int, int]] = orig(d)
            shown = {name for name, _, _ in out}
            for e in rd.merged_entries(d):
                if e.is_whiteout and e.name not in shown:
                    out.append((e.name, DT_CHR, 0))
                    shown.add(e.name)
            return out

        return readdir

    _swap_function(stack, "overlaysim.overlay.readdir", "readdir", make)


def _mkdir_over_whiteout_not_opaque(stack: contextlib.ExitStack) -> None:
    def make(orig: Any) -> Any:
        def drop_whiteout(ud: Any, name: str, ofs: Any) -> bool:
            orig(ud, name, ofs)
            return False  # "there was none": the new directory is not made opaque

        return drop_whiteout

    _swap_function(stack, "overlaysim.overlay.dir", "_drop_whiteout", make)


def _chmod_without_copy_up(stack: contextlib.ExitStack) -> None:
    from overlaysim.overlay.inode import OvlInode

    orig = OvlInode.setattr

    def setattr(self: Any, **kw: Any) -> None:
        only_mode = kw.get("mode") is not None and all(
            v is None for k, v in kw.items() if k != "mode")  # fmt: skip
        if only_mode and self.upper is None and self.lowers and self.ofs.upper_root is not None:
            return  # "succeeds" without copying up: the mode never changes
        orig(self, **kw)

    _swap(stack, OvlInode, "setattr", setattr)


def _listxattr_leaks_private(stack: contextlib.ExitStack) -> None:
    def make(orig: Any) -> Any:
        def listx(ino: Any) -> list[str]:
            names = list(orig(ino))
            real = ino.upper if ino.upper is not None else ino.lowers[0][1]
            try:
                names += [n for n in real.listxattr() if n.startswith(ino.ofs.prefix)]
            except OSError:
                pass
            return names

        return listx

    _swap_function(stack, "overlaysim.overlay.xattrs", "listx", make)


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("copyup-drops-xattrs", "copy-up copies no user/trusted xattrs", "default",
          _copy_up_drops_xattrs),
    Fault("unlink-forgets-whiteout", "unlink of a lower file leaves no whiteout", "default",
          _unlink_forgets_whiteout),
    Fault("readdir-shows-whiteouts", "readdir lists whited-out names", "default",
          _readdir_shows_whiteouts),
    Fault("mkdir-over-whiteout-not-opaque", "mkdir over a whiteout makes no opaque dir",
          "default", _mkdir_over_whiteout_not_opaque),
    Fault("chmod-without-copy-up", "chmod of a lower object succeeds without copy-up",
          "default", _chmod_without_copy_up),
    Fault("listxattr-leaks-private", "listxattr shows the overlay's private xattrs",
          "default", _listxattr_leaks_private),
)}  # fmt: skip


@contextlib.contextmanager
def planted(name: str) -> Iterator[Fault]:
    """Plant the fault ``name`` in the engine until the block ends."""
    fault = FAULTS.get(name)
    if fault is None:
        raise UsageError(f"unknown fault {name!r} (known: {', '.join(sorted(FAULTS))})")
    with contextlib.ExitStack() as stack:
        fault.plant(stack)
        yield fault
