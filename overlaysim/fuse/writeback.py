"""Writing the simulated upper (and work) dir back to the real one, all or nothing.

The tree is exported in the kernel's on-disk form (char 0/0 whiteouts, ``trusted.overlay.*``
xattrs, owners, modes, times, hard links: ``HostFS.export_tree(exact=True)``, what replay's
``--write-upper`` uses) to a temporary directory beside the real one, which is then swapped
in with ``renameat2(RENAME_EXCHANGE)``. A reader sees the old tree or the new one, never a
mix; a failure (full disk, killed daemon) leaves the real dir as it was and at most a
leftover ``.NAME.overlaysim-PID`` beside it, removed by the next mount or unmount.

The upper and work dirs are written back together (:func:`write_back_pair`): an index entry
(``work/index/...``, index=on, nfs_export=on) is a hard link of its upper file, so both trees
are exported first, the links between them restored, then both swapped in. Two swaps are not
one atomic step: between them a journal (``.UPPER.overlaysim-PID.commit``, naming the new
trees by inode) says the write-back is committed, and the next mount (:func:`recover`)
finishes the swap it names; without a journal the new trees are removed and both real dirs
are the old ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import os
import shutil
import stat
from typing import Any

from overlaysim.fuse.errors import MountError, WriteBackError
from overlaysim.fuse.runstate import start_time
from overlaysim.vfs.hostfs import HostFS

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_TAG = ".overlaysim-"


@functools.cache
def _renameat2() -> Any:
    fn = ctypes.CDLL(None, use_errno=True).renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: str, b: str) -> None:
    """Swap two directory entries atomically (both must exist)."""
    if _renameat2()(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), a, None, b)


def temp_name(real_dir: str, pid: int | None = None) -> str:
    parent, base = os.path.split(real_dir.rstrip("/"))
    return os.path.join(parent, f".{base}{_TAG}{os.getpid() if pid is None else pid}")


def write_back(fs: HostFS, sim_dir: str, real_dir: str) -> None:
    """Replace ``real_dir`` by ``sim_dir`` of ``fs``; on failure ``real_dir`` is untouched."""
    tmp = _export(fs, sim_dir, real_dir)
    try:
        _fsync_tree_top(tmp)
        old = _swap(tmp, real_dir)
    except OSError as e:
        _remove(tmp)
        raise WriteBackError(f"replacing {real_dir}: {e.strerror}; "
                             f"{real_dir} was left as it was") from None  # fmt: skip
    _remove(old)


def write_back_pair(fs: HostFS, sim_upper: str, upper: str, sim_work: str, work: str) -> None:
    """Replace ``upper`` and ``work`` together, keeping the hard links between them; on a
    failure before the journal both are untouched, after it the next :func:`recover` (or
    this call) completes both swaps."""
    tu = _export(fs, sim_upper, upper)
    try:
        tw = _export(fs, sim_work, work)
    except WriteBackError:
        _remove(tu)
        raise
    journal = journal_name(upper)
    try:
        _relink(fs, sim_upper, tu, sim_work, tw)
        _fsync_tree_top(tu)
        _fsync_tree_top(tw)
        _write_journal(journal, [(upper, tu), (work, tw)])
    except OSError as e:
        for path in (tu, tw, journal, journal + ".part"):
            _remove(path)
        raise WriteBackError(f"writing {upper} and {work} back: {e.strerror or e}; "
                             f"both were left as they were") from None  # fmt: skip
    try:
        olds = [_swap(tu, upper), _swap(tw, work)]
    except OSError as e:
        raise WriteBackError(f"replacing {upper} and {work}: {e.strerror}; the write-back is "
                             f"journalled in {journal}: the next mount completes it") from None  # fmt: skip
    _remove(journal)
    for old in olds:
        _remove(old)


def _export(fs: HostFS, sim_dir: str, real_dir: str) -> str:
    """Export ``sim_dir`` to a fresh temp dir beside ``real_dir``; return its path."""
    tmp = temp_name(real_dir)
    _remove(tmp)
    try:
        fs.export_tree(sim_dir, tmp, exact=True)
    except OSError as e:
        _remove(tmp)
        hint = " (trusted.* xattrs and devices need root)" if os.geteuid() else ""
        raise WriteBackError(f"writing {real_dir} back: {e.strerror or e}{hint}; "
                             f"{real_dir} was left as it was") from None  # fmt: skip
    return tmp


def _swap(tmp: str, real_dir: str) -> str:
    """Put ``tmp`` in ``real_dir``'s place; return where the old tree now is."""
    try:
        exchange(tmp, real_dir)
        return tmp
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    # A filesystem without RENAME_EXCHANGE: two renames, the old tree kept until the end.
    old = tmp + ".old"
    os.rename(real_dir, old)
    os.rename(tmp, real_dir)
    return old


def _links_of(fs: HostFS, top: str) -> dict[tuple[int, int], str]:
    """(st_dev, st_ino) -> path under ``top`` of every non-directory with more than one link."""
    o = fs.os
    found: dict[tuple[int, int], str] = {}
    todo = [""]
    while todo:
        rel = todo.pop()
        for name in sorted(o.listdir(top + rel)):
            s = o.lstat(f"{top}{rel}/{name}")
            if stat.S_ISDIR(s.st_mode):
                todo.append(f"{rel}/{name}")
            elif s.st_nlink > 1:
                found.setdefault((s.st_dev, s.st_ino), f"{rel}/{name}")
    return found


def _relink(fs: HostFS, sim_upper: str, real_upper: str, sim_work: str, real_work: str) -> None:
    """Make each work entry that is a hard link of an upper file (an index entry, a shared
    whiteout) a hard link of the exported upper file again, as the two exports cannot."""
    in_upper = _links_of(fs, sim_upper)
    for key, rel in _links_of(fs, sim_work).items():
        if key not in in_upper:
            continue
        for name in _names_of(fs, sim_work, key, rel):
            dst = real_work + name
            parent = os.path.dirname(dst)
            os.link(real_upper + in_upper[key], dst + ".~link", follow_symlinks=False)
            os.rename(dst + ".~link", dst)
            ps = fs.os.lstat(os.path.dirname(sim_work + name) or "/")
            os.utime(parent, ns=(ps.st_atime_ns, ps.st_mtime_ns), follow_symlinks=False)


def _names_of(fs: HostFS, top: str, key: tuple[int, int], first: str) -> list[str]:
    """Every name under ``top`` of the inode ``key`` (its first name, then the others)."""
    o = fs.os
    names: list[str] = []
    todo = [""]
    while todo:
        rel = todo.pop()
        for name in o.listdir(top + rel):
            s = o.lstat(f"{top}{rel}/{name}")
            if stat.S_ISDIR(s.st_mode):
                todo.append(f"{rel}/{name}")
            elif (s.st_dev, s.st_ino) == key:
                names.append(f"{rel}/{name}")
    return sorted(names, key=lambda n: n != first)


def journal_name(upper: str) -> str:
    return temp_name(upper) + ".commit"


def _write_journal(path: str, pairs: list[tuple[str, str]]) -> None:
    """Record, durably, which new tree (by its top's inode) goes to which real dir."""
    entries = [{"real": real, "new": tmp, "ino": os.lstat(tmp).st_ino} for real, tmp in pairs]
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        json.dump(entries, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(part, path)
    _fsync_dir(os.path.dirname(path) or ".")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(upper: str, work: str) -> list[str]:
    """Finish a write-back whose daemon died between its journal and its last swap (each real
    dir gets the new tree the journal names, unless it already has it), then remove the
    leftovers of any unfinished one. Returns what was done, one line each."""
    done: list[str] = []
    parent, base = os.path.split(upper.rstrip("/"))
    prefix = f".{base}{_TAG}"
    try:
        names = os.listdir(parent)
    except OSError:
        names = []
    for name in names:
        pid_text = name[len(prefix) :].removesuffix(".commit")
        if not (name.startswith(prefix) and name.endswith(".commit") and pid_text.isdigit()):
            continue
        if start_time(int(pid_text)) is not None:
            continue
        path = os.path.join(parent, name)
        try:
            with open(path, encoding="utf-8") as f:
                entries = json.load(f)
            for e in entries:
                done += _finish_swap(str(e["real"]), str(e["new"]), int(e["ino"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise MountError(f"cannot finish the interrupted write-back journalled in {path}: "
                             f"{e}; fix {upper} and {work} by hand, then remove it") from None  # fmt: skip
        os.unlink(path)
    for d in (upper, work):
        done += [f"removed {n}" for n in clean_leftovers(d)]
    return done


def _finish_swap(real: str, new: str, ino: int) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(real).st_ino == ino:
            return []  # swapped before the daemon died
    try:
        if os.lstat(new).st_ino != ino:
            return []
    except FileNotFoundError:
        return []
    if os.path.lexists(real):
        _swap(new, real)
    else:
        os.rename(new, real)  # the fallback's first rename had happened
    return [f"completed the write-back of {real}"]


def _fsync_tree_top(path: str) -> None:
    """Make the new tree's top durable before it replaces the old one (its files were
    written with plain writes; syncfs covers them in one call)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        with contextlib.suppress(AttributeError, OSError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syncfs(fd)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.unlink(path)


def clean_leftovers(real_dir: str) -> list[str]:
    """Remove temp trees of write-backs whose daemon is gone (killed mid-way)."""
    parent, base = os.path.split(real_dir.rstrip("/"))
    prefix = f".{base}{_TAG}"
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :]
        for suffix in (".part", ".commit", ".old"):
            pid_text = pid_text.removesuffix(suffix)
        if pid_text.isdigit() and start_time(int(pid_text)) is not None:
            continue
        _remove(os.path.join(parent, name))
        removed.append(name)
    return removed


class UpperLock:
    """An exclusive ``flock`` on the real upper dir for the daemon's lifetime: two mounts
    writing one upper dir back would overwrite each other."""

    def __init__(self, real_dir: str) -> None:
        self.fd = os.open(real_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise MountError(f"upperdir {real_dir} is in use by another overlaysim mount") from None

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
