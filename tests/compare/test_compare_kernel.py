"""compare's differences checked against two real ``mount -t overlay`` of the same lowers.

The demo layers are laid out on a kernel tmpfs; each script runs on two kernel overlays (one
per option set) with the real tools (coreutils ``mv`` falls back to a copy on EXDEV as ours
does), and the upper dirs they leave are read with the same snapshot function compare uses.
compare, given the same real lowers, must report exactly the differences the kernel shows.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator

import pytest

from overlaysim.compare import Lowers, compare
from overlaysim.demo_layers import build_app, build_base
from overlaysim.testing.observe import diff, snapshot
from tests.overlay.oharness import KernelSide, can_mount, kernel_side

WHY = can_mount()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")
PREFIX = "trusted.overlay."


@pytest.fixture
def k() -> Iterator[KernelSide]:
    with kernel_side() as side:
        build_app(os, side.p("app"))
        build_base(os, side.p("base"))
        yield side


def _kernel_upper(k: KernelSide, name: str, options: str, argv: list[str]) -> tuple[int, object]:
    u, w, m = (k.p(f"{name}-{x}") for x in "uwm")
    for d in (u, w, m):
        os.mkdir(d)
    data = f"lowerdir={k.p('app')}:{k.p('base')},upperdir={u},workdir={w}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data + ("," + options if options else ""), m],
                   check=True)  # fmt: skip
    try:
        status = subprocess.run([a.replace("@", m) for a in argv], capture_output=True).returncode
    finally:
        subprocess.run(["umount", m], check=True)
    return status, snapshot(os, u, upper_prefix=PREFIX)


CASES = {
    "rename of a merged dir": ("redirect_dir=off", "redirect_dir=on", ["mv", "@/etc", "@/etc2"],
                               "mv /etc /etc2"),
    "chmod of a lower file": ("", "metacopy=on", ["chmod", "600", "@/etc/passwd"],
                              "chmod 600 /etc/passwd"),
    "unlink and rmdir": ("", "redirect_dir=on", ["rm", "-rf", "@/etc/apt"], "rm -rf /etc/apt"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_compare_reports_the_differences_the_kernel_shows(k: KernelSide, case: str) -> None:
    a_opts, b_opts, argv, script = CASES[case]
    ka_status, ka = _kernel_upper(k, "a", a_opts, argv)
    kb_status, kb = _kernel_upper(k, "b", b_opts, argv)
    c = compare(Lowers((k.p("app"), k.p("base"))), a_opts, b_opts, script=script)
    assert c.a.upper is not None and c.b.upper is not None
    assert [s.status for s in c.a.steps] == [ka_status] and [s.status for s in c.b.steps] == [kb_status]
    assert diff(ka, c.a.upper) == [] and diff(kb, c.b.upper) == []
    assert c.upper == diff(ka, kb, labels=("A", "B"))


def test_exdev_and_redirect_are_named_as_the_kernel_decides(k: KernelSide) -> None:
    """rename(2) itself: EXDEV without redirect_dir, a redirect xattr with it."""
    results = {}
    for name, opts in (("off", "redirect_dir=off"), ("on", "redirect_dir=on")):
        u, w, m = (k.p(f"r{name}-{x}") for x in "uwm")
        for d in (u, w, m):
            os.mkdir(d)
        data = f"lowerdir={k.p('app')}:{k.p('base')},upperdir={u},workdir={w},{opts}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, m], check=True)
        try:
            os.rename(f"{m}/etc", f"{m}/etc2")
            results[name] = os.getxattr(f"{u}/etc2", PREFIX + "redirect")
        except OSError as e:
            results[name] = e.errno
        finally:
            subprocess.run(["umount", m], check=True)
    c = compare(Lowers((k.p("app"), k.p("base"))), "redirect_dir=off", "redirect_dir=on",
                script="mv /etc /etc2")  # fmt: skip
    a, b = c.as_json()["commands"][0]["A"], c.as_json()["commands"][0]["B"]
    assert results["off"] == errno.EXDEV and "EXDEV /etc" in a["decisions"]
    assert f"redirect /etc2 -> {results['on'].decode()!r}" in b["decisions"]
    assert not any(d.startswith("EXDEV") for d in b["decisions"])
