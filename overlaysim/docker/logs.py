"""The json-file log driver: ``containers/<id>/<id>-json.log``, one JSON object per line.

The container's output is copied to the caller (when attached) and to the log, so
``docker logs`` shows what a detached container printed, as with the real driver.
"""

from __future__ import annotations

import io
import json
import os
from typing import IO, Any

from overlaysim.runtime.gofmt import rfc3339nano


class Tee(io.RawIOBase):
    """A binary stream that records what is written and forwards it (if ``to`` is set)."""

    def __init__(self, stream: str, to: IO[Any] | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.to = to
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.data += data
        if self.to is not None:
            if isinstance(self.to, io.TextIOBase):
                self.to.write(data.decode("utf-8", "surrogateescape"))
            else:
                self.to.write(data)
            self.to.flush()
        return len(data)


def append(o: Any, path: str, tees: list[Tee], now_ns: int) -> None:
    """Append each line the tees recorded, as ``{"log":…,"stream":…,"time":…}``."""
    lines = []
    for t in tees:
        for line in t.data.decode("utf-8", "replace").splitlines(keepends=True):
            lines.append(
                json.dumps({"log": line, "stream": t.stream, "time": rfc3339nano(now_ns)}) + "\n"
            )
    if not lines:
        return
    fd = o.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        o.write(fd, "".join(lines).encode())
    finally:
        o.close(fd)


def read(o: Any, path: str) -> list[tuple[str, str]]:
    """(stream, text) of every line of the log."""
    from overlaysim.docker import files

    raw = files.read(o, path) or b""
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        out.append((str(rec.get("stream", "stdout")), str(rec.get("log", ""))))
    return out
