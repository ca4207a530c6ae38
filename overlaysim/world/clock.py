"""Where a new world's clock starts: today, as on the machine a reader compares with.

``ls -l`` prints "Jan  1 00:00" and ``docker images`` "5 years ago" for an image Docker calls
"7 years ago" when the simulated clock starts at a fixed past date; so a new world starts at
the host's current time and, between commands, catches up with it (:class:`TodayClock`): a
container run two minutes ago reads "Created 2 minutes ago", as on a real host. Tests and
reproducible runs pin it with ``SOURCE_DATE_EPOCH`` (the reproducible-builds variable:
seconds since 1970) or by asking for a seeded world, whose clock starts at the fixed
:data:`SEEDED_EPOCH_NS`; a pinned clock never looks at the host again. Within a command the
clock advances one microsecond per reading (``StepClock``), so a command is repeatable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from overlaysim.errors import WorldError
from overlaysim.vfs.superblock import StepClock

#: 2024-01-01T00:00:00Z: where a seeded world's clock starts without SOURCE_DATE_EPOCH.
SEEDED_EPOCH_NS = 1_704_067_200 * 10**9
ENV = "SOURCE_DATE_EPOCH"


def host_ns() -> int:
    """The host's time (a module function so that tests can move it)."""
    return time.time_ns()


def source_date_epoch(env: Mapping[str, str] | None = None) -> int | None:
    """``$SOURCE_DATE_EPOCH`` in ns, or None when unset or empty; ``WorldError`` if malformed
    (the reproducible-builds spec asks tools to refuse rather than guess)."""
    text = (os.environ if env is None else env).get(ENV, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise WorldError(f"{ENV}={text!r}: expected a whole number of seconds since 1970")
    return int(text) * 10**9


def start_ns(seeded: bool = False, env: Mapping[str, str] | None = None) -> int:
    """The first reading of a new world's clock: ``$SOURCE_DATE_EPOCH``, else 2024-01-01 for a
    seeded world, else the host's current second."""
    pinned = source_date_epoch(env)
    if pinned is not None:
        return pinned
    if seeded:
        return SEEDED_EPOCH_NS
    return host_ns() // 10**9 * 10**9


class TodayClock(StepClock):
    """A step clock that follows the host's time between commands: when a saved world is
    loaded, it jumps forward to the host's current time (never back, so times stay ordered)."""

    def catch_up(self) -> None:
        self.now = max(self.now, host_ns())


def new_clock(seeded: bool = False, env: Mapping[str, str] | None = None) -> StepClock:
    """A new world's clock: pinned (``$SOURCE_DATE_EPOCH``, a seed) or following today."""
    pinned = source_date_epoch(env)
    if pinned is None and not seeded:
        return TodayClock(start_ns(), 1_000)
    return StepClock(start_ns(seeded, env), 1_000)
