"""overlaysim: a userspace simulator of Linux overlayfs and Docker's overlay2 driver."""

from overlaysim import overlay as _overlay  # noqa: F401  (registers the "overlay" fs type)
from overlaysim.events import Event, EventLog
from overlaysim.vfs import HostFS, MountEntry, Process, StepClock

__all__ = ["Event", "EventLog", "HostFS", "MountEntry", "Process", "StepClock"]
__version__ = "0.1.0"
