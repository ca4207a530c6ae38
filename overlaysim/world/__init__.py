"""The saved world: the simulated machine persisted between commands in one SQLite file.

``World`` is a HostFS plus a JSON ``meta`` dict and a ``seed``; ``open_world`` loads it,
lets one command change it, and commits it atomically (see ``machine``, ``store``).
"""

from overlaysim.world.machine import World, load_world, open_world, save_world
from overlaysim.world.store import FORMAT, SCHEMA

__all__ = ["FORMAT", "SCHEMA", "World", "load_world", "open_world", "save_world"]
