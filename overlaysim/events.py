"""Structured records of what the engine decided and why (copy-up, whiteout, opaque, redirect...).

They are the raw material of explanations, reports and replay statistics, so each carries the
mount, the path as seen in the merged view, and the facts a teacher would cite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str  # "copy_up", "whiteout", "opaque", "redirect", "exdev", "mount", "umount", ...
    path: str  # path in the merged view (or the mount point)
    mount: str = ""  # the overlay's mount point
    reason: str = ""  # why: "open(O_WRONLY)", "chmod", "rename of a lower directory"...
    detail: dict[str, Any] = field(default_factory=dict)

    def __init__(self, kind: str, path: str, mount: str = "", reason: str = "",
                 detail: dict[str, Any] | None = None) -> None:  # fmt: skip
        """The dataclass's own, without its per-field overhead: copy-up emits one each time."""
        init = object.__setattr__
        init(self, "kind", kind)
        init(self, "path", path)
        init(self, "mount", mount)
        init(self, "reason", reason)
        init(self, "detail", {} if detail is None else detail)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.detail.items())
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.kind} {self.path}{why}" + (f" [{extra}]" if extra else "")


class EventLog:
    """An append-only list of events with small query helpers."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._listeners: list[Callable[[Event], None]] = []

    def emit(self, event: Event) -> None:
        self._events.append(event)
        if self._listeners:
            for fn in self._listeners:
                fn(event)

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``fn`` with each event as it is emitted, whoever clears the log (replay drains
        it per call); returns the function that unsubscribes."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, i: int) -> Event:
        return self._events[i]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self._events if e.kind == kind]

    def clear(self) -> None:
        self._events.clear()

    def since(self, mark: int) -> list[Event]:
        return self._events[mark:]
