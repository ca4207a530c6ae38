"""Every registered scenario, in a stable order (importing the modules registers them)."""

from __future__ import annotations

from . import (  # noqa: F401  (importing registers the scenarios)
    scenarios_dirs,
    scenarios_edge,
    scenarios_fdio,
    scenarios_ospath,
    scenarios_paths,
    scenarios_perms,
    scenarios_perms2,
    scenarios_times,
    scenarios_types,
    scenarios_xattr,
)
from .harness import SCENARIOS, Scenario


def all_scenarios() -> list[Scenario]:
    """All scenarios sorted by name, for parametrisation."""
    return [SCENARIOS[name] for name in sorted(SCENARIOS)]
