"""A real dockerd as the oracle of the simulated machine (overlay2 driver, docker commands).

* :mod:`~overlaysim.testing.dockerd.daemon` -- a private dockerd on a temp data root and socket.
* :mod:`~overlaysim.testing.dockerd.sides` -- the real daemon and the simulator behind one interface.
* :mod:`~overlaysim.testing.dockerd.ids` -- ids replaced by roles, so the two can be compared.
* :mod:`~overlaysim.testing.dockerd.observe` -- the overlay2 tree, overlay mounts, tar members.
* :mod:`~overlaysim.testing.dockerd.compare` -- :class:`Pair`: one scenario on both, differences.
"""
