"""Fuzzing as a product: judge a union filesystem against the kernel's overlay semantics.

* :mod:`~overlaysim.fuzz.targets` -- what ``--against`` names: the kernel, fuse-overlayfs,
  two simulator profiles, or an external command speaking the JSON-lines protocol.
* :mod:`~overlaysim.fuzz.campaign` -- ``overlaysim fuzz``: shards of profiles x seeds, run
  in-process, in processes or on any ``concurrent.futures`` executor; resumable.
* :mod:`~overlaysim.fuzz.shard` -- one shard: generate, then shrink each new divergence.
* :mod:`~overlaysim.fuzz.signature` -- one bug, one report: divergences grouped by signature.
* :mod:`~overlaysim.fuzz.reproduce` -- repro.sh, test_repro.py and case.json of a divergence.
* :mod:`~overlaysim.fuzz.store`, :mod:`~overlaysim.fuzz.progress` -- ``--out`` and live progress.
* :mod:`~overlaysim.fuzz.faults` -- test-only planted faults that prove the fuzzer finds bugs.
"""
