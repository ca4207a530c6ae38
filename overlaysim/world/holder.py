"""A long-lived holder of a world file, named so that other commands refuse at once.

A command holds the world for a moment (``store.Session``: SQLite's write lock); a FUSE mount
of a container (``overlaysim docker mount``) holds it for as long as it is mounted, and saves
the world only at unmount. A second command meanwhile would wait for the lock and then fail,
or, worse, save a world that the unmount then overwrites. So the holder leaves a note beside
the world file (``.NAME.holder``: its pid, start time and what it is doing) and
``store.Session`` refuses while a live process holds the note: one clear line, no waiting.
A note whose process is gone (killed) is ignored and removed.
"""

from __future__ import annotations

import contextlib
import json
import os

from overlaysim.errors import WorldError


def note_path(world_path: str) -> str:
    folder, base = os.path.split(os.path.realpath(world_path))  # one note however it is named
    return os.path.join(folder, f".{base}.holder")


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def hold(world_path: str, what: str) -> None:
    """Name this process as the world's holder (``what``: a sentence for the refusal)."""
    pid = os.getpid()
    path = note_path(world_path)
    tmp = f"{path}.{pid}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"pid": pid, "started": _start_time(pid), "what": what}, f)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WorldError(f"{world_path}: cannot record the world's holder in {path} "
                         f"({e.strerror})") from None  # fmt: skip


def holder(world_path: str) -> str | None:
    """What a live process other than this one holds the world for, if any."""
    path = note_path(world_path)
    try:
        with open(path, encoding="utf-8") as f:
            note = json.load(f)
        pid, started, what = int(note["pid"]), note["started"], str(note["what"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: not a holder we can name; SQLite's lock still protects
    if pid == os.getpid():
        return None
    if _start_time(pid) != started:
        with contextlib.suppress(OSError):
            os.unlink(path)  # its holder died (killed): nothing holds the world any more
        return None
    return what


def check(world_path: str) -> None:
    """Refuse (``WorldError``) while another live process holds the world."""
    what = holder(world_path)
    if what is not None:
        raise WorldError(f"{world_path}: {what}")


def release(world_path: str) -> None:
    """Drop this process's note (someone else's is left alone)."""
    path = note_path(world_path)
    try:
        with open(path, encoding="utf-8") as f:
            mine = int(json.load(f)["pid"]) == os.getpid()
    except (OSError, ValueError, KeyError, TypeError):
        return
    if mine:
        with contextlib.suppress(OSError):
            os.unlink(path)
