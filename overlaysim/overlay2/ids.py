"""Deterministic stand-ins for Docker's random identifiers, continued across processes.

Docker draws cache-ids, mount-ids and container ids from ``crypto/rand`` (32 bytes, hex,
drawn again when the first 12 characters are all digits so a short id never looks like a
number) and link ids from 17 random bytes in standard base32, cut to 26 characters. We draw
the same shapes from SHA-256 of ``(seed, counter)``, so a given seed always yields the same
ids. Once :meth:`IdGen.bind` ties a generator to a state file in the HostFS, the seed and the
counter are stored there after every draw, so the next process continues the sequence.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

LINK_LENGTH = 26


class IdGen:
    """Seeded generator of 64-hex ids and 26-character link ids."""

    def __init__(self, seed: int | str = 0) -> None:
        self.seed: int | str = seed
        self.counter = 0
        self._state: Any = None  # a StateFile once bound

    def bind(self, state: Any) -> IdGen:
        """Continue the sequence stored in ``state`` (a StateFile), and store every draw there.

        A stored sequence wins over the seed given to the constructor: the machine's ids must
        not repeat, whichever command happens to run next.
        """
        saved = state.get("ids")
        if isinstance(saved, dict) and isinstance(saved.get("counter"), int):
            seed = saved.get("seed", self.seed)
            if isinstance(seed, (int, str)):
                self.seed = seed
            self.counter = max(0, saved["counter"])
        self._state = state
        return self

    def _draw(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            h = hashlib.sha256(f"overlaysim-id:{self.seed!r}:{self.counter}".encode())
            self.counter += 1
            out += h.digest()
        if self._state is not None:
            self._state.set("ids", {"seed": self.seed, "counter": self.counter})
        return out[:n]

    def random_id(self) -> str:
        """A 64-hex id, as moby's ``stringid.GenerateRandomID`` (never 12 leading digits)."""
        while True:
            s = self._draw(32).hex()
            if not s[:12].isdigit():
                return s

    def link_id(self) -> str:
        """A 26-character link id from the base32 alphabet ``A-Z2-7`` (overlayutils)."""
        raw = self._draw((LINK_LENGTH * 5 + 7) // 8)
        return base64.b32encode(raw).decode()[:LINK_LENGTH]
