"""A directory renamed onto a whiteout, checked against the kernel on a real upper fs.

The in-memory HostFS lets a rename put a directory over the whiteout's char device, so the
scenarios pass there whatever the engine asks for; a real upper (``hostdir``, what
``overlaysim mount --live`` uses) refuses it with ENOTDIR, as rename(2) does. ovl_rename
exchanges the directory with the whiteout and then removes the whiteout. Found by
unionmount-testsuite's rename-empty-dir and rename-new-dir on ``overlaysim mount -o live``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from overlaysim import HostFS
from overlaysim.vfs.passthrough_sys import FD_POOL
from tests.conformance import harness as H
from tests.overlay.oharness import Obs, Rec, Side, SimSide, can_mount, kernel_side
from tests.overlay.scenarios import SCENARIOS, finish, fixture


class MappedSimSide(SimSide):
    """The simulator with its base dir on a real tmpfs mapped by ``hostdir``."""

    def __init__(self, top: str) -> None:
        self.fs = HostFS()
        Side.__init__(self, self.fs.os, "/t")
        self.fs.os.makedirs("/t")
        self.fs.mount(top, "/t", "hostdir", "rw")


@contextmanager
def mapped_side() -> Iterator[MappedSimSide]:
    top = tempfile.mkdtemp(prefix="osim-rwh-")
    H.mount_tmpfs(top)
    try:
        os.chmod(top, 0o755)
        yield MappedSimSide(top)
    finally:
        FD_POOL.clear()
        H.umount(top)
        shutil.rmtree(top, ignore_errors=True)


def sc_dirs_onto_their_whiteouts(s: Side, r: Rec) -> None:
    """Lower dirs moved away and back (rename-empty-dir), a new dir onto a removed file's
    whiteout, and a file onto a whiteout (a plain rename, no exchange)."""
    s.write("l1/p/x", "x")
    s.mount(fixture(s) + ",redirect_dir=on")
    r.call("e_away", s.o.rename, s.p("m/e"), s.p("m/e2"))
    r.call("e_back", s.o.rename, s.p("m/e2"), s.p("m/e"))
    r.call("e_back_again", s.o.rename, s.p("m/e2"), s.p("m/e"))
    r.call("p_away", s.o.rename, s.p("m/p"), s.p("m/p2"))
    r.call("p_back", s.o.rename, s.p("m/p2"), s.p("m/p"))
    r.ls("ls_p", "m/p")
    r.call("rm_f", s.o.unlink, s.p("m/f"))
    s.o.mkdir(s.p("m/nd"))
    r.call("new_dir_onto_f", s.o.rename, s.p("m/nd"), s.p("m/f"))
    r.call("rm_g", s.o.unlink, s.p("m/g"))
    s.write("m/nf", "new")
    r.call("new_file_onto_g", s.o.rename, s.p("m/nf"), s.p("m/g"))
    r.tree("upper_mounted", "u", upper=True)
    finish(s, r)


CASES: dict[str, Callable[[Side, Rec], None]] = {
    "dirs_onto_their_whiteouts": sc_dirs_onto_their_whiteouts,
    # the same case after a mount cycle, and the other rename scenarios, on a real upper
    "rename_dirs_redirect": SCENARIOS["rename_dirs_redirect"],
    "rename_dirs_exdev": SCENARIOS["rename_dirs_exdev"],
    "rename_files": SCENARIOS["rename_files"],
}


def _observe(side: Side, fn: Callable[[Side, Rec], None]) -> Obs:
    r = Rec(side)
    fn(side, r)
    obs: Obs = json.loads(json.dumps(r.obs, default=str))
    return obs


def _diff(a: Obs, b: Obs) -> str:
    return "\n".join(f"{k}:\n  kernel: {json.dumps(a.get(k))}\n  sim:    {json.dumps(b.get(k))}"
                     for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))  # fmt: skip


def kernel_and_mapped(fn: Callable[[Side, Rec], None]) -> tuple[Obs, Obs]:
    """The observations of ``fn`` on the kernel and on the simulator with every layer on a
    real tmpfs mapped by ``hostdir`` (skips where mounting is not permitted)."""
    why = can_mount()
    if why is not None:
        pytest.skip(why)
    with kernel_side() as k:
        want = _observe(k, fn)
    with mapped_side() as m:
        got = _observe(m, fn)
    return want, got


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(CASES))
def test_rename_on_a_real_upper_matches_the_kernel(name: str) -> None:
    want, got = kernel_and_mapped(CASES[name])
    assert not _diff(want, got), f"{name} differs on a hostdir upper:\n{_diff(want, got)}"
    if name == "dirs_onto_their_whiteouts":
        assert want["e_back"] == want["new_dir_onto_f"] == want["p_back"]
        assert "ENOENT" in json.dumps(want["e_back_again"])


@pytest.mark.kernel
def test_rename_onto_a_whiteout_in_memory_matches_the_kernel() -> None:
    why = can_mount()
    if why is not None:
        pytest.skip(why)
    with kernel_side() as k:
        want = _observe(k, sc_dirs_onto_their_whiteouts)
    got = _observe(SimSide(), sc_dirs_onto_their_whiteouts)
    assert not _diff(want, got), _diff(want, got)
