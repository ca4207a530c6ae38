"""The simulated Docker daemon (overlay2 graphdriver mode) over a HostFS.

``Daemon(fs, meta, seed)`` keeps every bit of state where dockerd keeps it
(``/var/lib/docker/{image,overlay2,containers}``, runc state under
``/run/docker/runtime-runc/moby``), so a saved world carries the daemon from one command to
the next. :mod:`~overlaysim.docker.imageops` loads, saves, commits and removes images;
:mod:`~overlaysim.docker.inspect` and :mod:`~overlaysim.docker.render` produce what the CLI
prints; :mod:`~overlaysim.docker.transports` is skopeo's side.
"""

from __future__ import annotations

from overlaysim.docker.daemon import DOCKER_ROOT, DOCKER_VERSION, Daemon, ExecFailed

__all__ = ["DOCKER_ROOT", "DOCKER_VERSION", "Daemon", "ExecFailed"]
