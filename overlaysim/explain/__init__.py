"""Explain a path of an overlay: which layer its name and data come from, what hides the
others, and what the next operations would do (done on a throwaway copy, read from events)."""

from overlaysim.explain.core import explain, resolve
from overlaysim.explain.target import ExplainError

__all__ = ["ExplainError", "explain", "resolve"]
