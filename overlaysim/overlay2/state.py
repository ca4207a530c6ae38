"""The little state dockerd keeps in memory, kept as one JSON file inside the HostFS.

dockerd is a long-lived process: its mount reference counts and layer reference counts live
in memory, and its random ids come from the kernel. overlaysim runs one command per process
and saves the machine between them, so these must live in the simulated filesystem to
survive: ``<root>/.overlaysim-state.json`` holds them, one top-level key per component
(``ids``, ``mounts``, ``layers``). Everything else overlay2 knows is read back from the very
files Docker writes.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

from overlaysim.errors import WorldError

STATE_NAME = ".overlaysim-state.json"


class StateFile:
    """Read-modify-write access to one JSON object in a file of an os-like module."""

    def __init__(self, o: Any, path: str) -> None:
        self.o = o
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            fd = self.o.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        try:
            chunks = []
            while chunk := self.o.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            self.o.close(fd)
        try:
            data = json.loads(b"".join(chunks) or b"{}")
        except ValueError as exc:
            raise WorldError(f"{self.path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise WorldError(f"{self.path}: not a JSON object")
        return data

    def get(self, key: str) -> Any:
        return self.load().get(key)

    def set(self, key: str, value: Any) -> None:
        data = self.load()
        if value is None or value == {}:
            data.pop(key, None)
        else:
            data[key] = value
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        o = self.o
        o.makedirs(posixpath.dirname(self.path), mode=0o711, exist_ok=True)
        tmp = self.path + ".tmp"
        fd = o.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            o.write(fd, json.dumps(data, sort_keys=True).encode())
        finally:
            o.close(fd)
        o.rename(tmp, self.path)
