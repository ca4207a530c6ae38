"""The simulated OCI runtime: runc's container state, processes and ``run`` inside a root.

Both ``overlaysim runc`` and the simulated Docker daemon (which, like dockerd through
containerd, keeps runc state under ``/run/docker/runtime-runc/moby``) use it.
"""

from __future__ import annotations

from overlaysim.runtime.process import run_in_root
from overlaysim.runtime.procs import ProcessTable
from overlaysim.runtime.state import RUNC_ROOT, Runc, RuncContainer

__all__ = ["RUNC_ROOT", "ProcessTable", "Runc", "RuncContainer", "run_in_root"]
