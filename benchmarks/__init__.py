"""Benchmarks: medians of the hot paths, each beside a baseline measured in the same run."""
