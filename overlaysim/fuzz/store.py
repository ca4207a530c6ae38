"""The ``--out`` directory of a campaign: its state file and its divergence reports.

``state.json`` holds the settings that define the campaign (target, profiles, seed, shard
size...), every finished shard with its counts, and every signature with its report
directory; it is rewritten atomically after each shard, so a campaign killed at any moment
resumes from its last finished shard and never redoes one. A lock file keeps two campaigns
from writing one directory at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from typing import Any

from overlaysim.errors import UsageError
from overlaysim.fuzz import reproduce
from overlaysim.fuzz.signature import dirname

STATE = "state.json"
STATE_VERSION = 1


class Store:
    """One campaign directory (created if needed)."""

    def __init__(self, out: str) -> None:
        self.out = os.path.abspath(out)
        self.path = os.path.join(self.out, STATE)
        try:
            os.makedirs(os.path.join(self.out, "divergences"), exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot use --out {out}: {e.strerror}") from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the directory; a :class:`UsageError` if a campaign holds it."""
        fd = os.open(os.path.join(self.out, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"another campaign is running in {self.out}") from None
            yield
        finally:
            os.close(fd)

    def load(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The saved state if it is for the same ``settings``, a fresh one if there is none;
        a :class:`UsageError` if the directory holds a campaign with other settings."""
        try:
            with open(self.path, encoding="utf-8") as f:
                state: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return {"version": STATE_VERSION, "settings": settings, "shards": {},
                    "signatures": {}, "coverage": [], "sessions": 0}  # fmt: skip
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read {self.path}: {e}") from None
        if state.get("version") != STATE_VERSION:
            raise UsageError(f"{self.path}: unknown state version {state.get('version')!r}")
        if state.get("settings") != settings:
            old = state.get("settings", {})
            what = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise UsageError(f"{self.out} holds a campaign with other settings "
                             f"({', '.join(what)}): use another --out")  # fmt: skip
        return state

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def divergence_dir(self, sig: str) -> str:
        return os.path.join(self.out, "divergences", dirname(sig))

    def write_divergence(self, sig: str, rec: dict[str, Any]) -> str:
        """Write (or replace) the reproducers of ``sig``; returns their directory."""
        d = self.divergence_dir(sig)
        reproduce.write(d, rec)
        return d
