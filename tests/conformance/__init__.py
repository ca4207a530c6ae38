"""Conformance suite: the same scenarios on the real kernel (tmpfs) and on HostFS."""
