"""The kernel oracle toolkit (public: users fuzz their own scenarios with it).

* :mod:`~overlaysim.testing.layers` -- declarative layer stacks, built through any os-like module.
* :mod:`~overlaysim.testing.ops` -- an operation vocabulary and :func:`~overlaysim.testing.ops.apply`.
* :mod:`~overlaysim.testing.kernel` -- real ``mount(2)`` overlays (:class:`~overlaysim.testing.kernel.KernelOverlay`).
* :mod:`~overlaysim.testing.observe` -- snapshots of merged, upper and work trees, normalised.
* :mod:`~overlaysim.testing.strategies` -- Hypothesis strategies for stacks, ops and profiles.
* :mod:`~overlaysim.testing.differential` -- :func:`~overlaysim.testing.differential.run_case`.
* :mod:`~overlaysim.testing.reference` -- the flat reference model, for hosts that cannot mount.
* :mod:`~overlaysim.testing.script` -- standalone reproduction scripts.
* :mod:`~overlaysim.testing.resolver` -- the real-filesystem resolver for mount-option checks.
* ``python -m overlaysim.testing.fuzz`` -- long seeded runs.
"""
