"""Compare: the same operations under two option sets on the same lowers, side by side.

A teacher's question "what would this look like with metacopy?" answered by running it: each
side is a fresh simulated overlay (``replay``'s session) on identical lowers, the script (our
shell) or a trace (``replay``) runs on both, and what differs is shown: per command, its status
and the engine's decisions (copy-ups with bytes, whiteouts, opaque and redirect xattrs, EXDEV);
at the end, the upper and work dirs entry by entry and the totals.

* ``side``      one option set: lowers, mount, run, observe
* ``contrast``  two sides -> the differences
* ``treediff``  two upper (or work) dirs -> rows a reader scans: path, what, A, B
* ``render``    the differences as a rich table or JSON
"""

from overlaysim.compare.contrast import Comparison, compare
from overlaysim.compare.side import Lowers, SideResult, Step, run_side

__all__ = ["Comparison", "Lowers", "SideResult", "Step", "compare", "run_side"]
