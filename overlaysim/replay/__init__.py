"""Trace replay: a recorded program's file operations, replayed offline on the simulated
overlay, predict the upper dir the kernel would have left (and what it cost).

``strace -f`` logs (or our JSONL op format, ``format.py``) -> :func:`replay` -> the upper dir
in a HostFS, a report (copy-ups per trace line, whiteouts, recorded vs simulated results).
"""

from overlaysim.replay.api import ReplayConfig, ReplayResult, TraceSource, replay, write_upper
from overlaysim.replay.format import FORMAT, VERSION, read_jsonl, validate, write_jsonl
from overlaysim.replay.session import EPOCH_NS, Session, from_dirs, from_image, mount_layers

__all__ = [
    "EPOCH_NS",
    "FORMAT",
    "VERSION",
    "ReplayConfig",
    "ReplayResult",
    "Session",
    "TraceSource",
    "from_dirs",
    "from_image",
    "mount_layers",
    "read_jsonl",
    "replay",
    "validate",
    "write_jsonl",
    "write_upper",
]
