"""compare's differences checked against two real ``mount -t overlay`` of the same lowers.

The lowers are laid out on a kernel tmpfs; each script runs on two kernel overlays (one per
option set) with the real tools (coreutils ``mv`` falls back to a copy on EXDEV as ours
does), they are unmounted, and the upper and work dirs they leave are read with the same
snapshot functions compare uses. compare, given the same real lowers, must report exactly
the differences the kernel shows: no more, no fewer.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from overlaysim.compare import Lowers, compare
from overlaysim.compare.treediff import differences
from overlaysim.demo_layers import build_app, build_base
from overlaysim.testing.observe import Snapshot, diff, snapshot, snapshot_work
from tests.overlay.oharness import KernelSide, can_mount, kernel_side

WHY = can_mount()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")
PREFIX = "trusted.overlay."


def _demo(k: KernelSide) -> None:
    build_app(os, k.p("l1"))
    build_base(os, k.p("l2"))


def _linked(k: KernelSide) -> None:
    """A lower file with two names (index=on indexes its copy-up) and a lower dir."""
    k.dirs("l1", "l2", "l2/d")
    k.write("l1/a", "hello\n")
    os.link(k.p("l1/a"), k.p("l1/b"))
    k.write("l2/d/f", "x" * 5000)


@pytest.fixture
def k() -> Iterator[KernelSide]:
    with kernel_side() as side:
        yield side


def _kernel(k: KernelSide, name: str, options: str, script: str) -> tuple[int, Snapshot, Snapshot]:
    """``script`` (sh, run in the merged dir) on a kernel overlay; status, upper, work."""
    u, w, m = (k.p(f"{name}-{x}") for x in "uwm")
    for d in (u, w, m):
        os.mkdir(d)
    data = f"lowerdir={k.p('l1')}:{k.p('l2')},upperdir={u},workdir={w}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data + ("," + options if options else ""), m],
                   check=True)  # fmt: skip
    try:
        status = subprocess.run(["sh", "-c", script], cwd=m, capture_output=True).returncode
    finally:
        subprocess.run(["umount", m], check=True)
    return status, snapshot(os, u, upper_prefix=PREFIX), snapshot_work(os, w, PREFIX, upper=u)


Build = Callable[[KernelSide], None]
#: case -> lowers, option sets A and B, script, whether the upper dirs differ
CASES: dict[str, tuple[Build, str, str, str, bool]] = {
    "rename of a merged dir": (_demo, "redirect_dir=off", "redirect_dir=on", "mv etc etc2", True),
    "chmod of a lower file": (_demo, "", "metacopy=on", "chmod 600 etc/passwd", True),
    "unlink and rmdir: no difference": (_demo, "", "redirect_dir=on", "rm -rf etc/apt", False),
    "index entry of a lower hard link": (_linked, "", "index=on", "chmod 600 a; cat b", True),
    "xino on one filesystem: mkdir opaque": (_linked, "", "xino=on", "mkdir n; mv d d2", True),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_compare_reports_the_differences_the_kernel_shows(k: KernelSide, case: str) -> None:
    build, a_opts, b_opts, script, differ = CASES[case]
    build(k)
    ka_status, ka, kwa = _kernel(k, "a", a_opts, script)
    kb_status, kb, kwb = _kernel(k, "b", b_opts, script)
    c = compare(Lowers((k.p("l1"), k.p("l2"))), a_opts, b_opts, script=script)
    assert c.a.upper is not None and c.b.upper is not None
    assert c.a.work is not None and c.b.work is not None
    # each side is the kernel's, and so are the differences between them
    assert [s.status for s in c.a.steps][-1:] == [ka_status]
    assert [s.status for s in c.b.steps][-1:] == [kb_status]
    assert diff(ka, c.a.upper) == [] and diff(kb, c.b.upper) == []
    assert diff(kwa, c.a.work) == [] and diff(kwb, c.b.work) == []
    assert c.upper == differences(ka, kb) and c.work == differences(kwa, kwb)
    assert bool(c.upper) is differ


def test_index_entry_is_counted_as_the_kernel_makes_it(k: KernelSide) -> None:
    _linked(k)
    _, _, kw = _kernel(k, "i", "index=on", "chmod 600 a")
    c = compare(Lowers((k.p("l1"), k.p("l2"))), "", "index=on", script="chmod 600 a")
    made = [p for p in kw.entries if p.startswith("index/") and p != "index/#"]
    assert made == ["index/=a"]  # named after the upper path linked to it
    assert c.totals(c.b)["index_entries"] == len(made) and c.totals(c.a)["index_entries"] == 0


def test_metacopy_copies_no_data_and_writes_the_xattr(k: KernelSide) -> None:
    _demo(k)
    _, ka, _ = _kernel(k, "a", "", "chmod 600 etc/passwd")
    _, kb, _ = _kernel(k, "b", "metacopy=on", "chmod 600 etc/passwd")
    c = compare(Lowers((k.p("l1"), k.p("l2"))), "", "metacopy=on", script="chmod 600 etc/passwd")
    size = os.stat(k.p("l2/etc/passwd")).st_size
    assert ka.entries["etc/passwd"].size == size and c.a.copied_bytes() == size
    assert PREFIX + "metacopy" in dict(kb.entries["etc/passwd"].xattrs) and c.b.copied_bytes() == 0
    assert any(r.path == "etc/passwd" and r.what == PREFIX + "metacopy" for r in c.upper)


def test_exdev_and_redirect_are_named_as_the_kernel_decides(k: KernelSide) -> None:
    """rename(2) itself: EXDEV without redirect_dir, a redirect xattr with it."""
    _demo(k)
    results = {}
    for name, opts in (("off", "redirect_dir=off"), ("on", "redirect_dir=on")):
        u, w, m = (k.p(f"r{name}-{x}") for x in "uwm")
        for d in (u, w, m):
            os.mkdir(d)
        data = f"lowerdir={k.p('l1')}:{k.p('l2')},upperdir={u},workdir={w},{opts}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, m], check=True)
        try:
            os.rename(f"{m}/etc", f"{m}/etc2")
            results[name] = os.getxattr(f"{u}/etc2", PREFIX + "redirect")
        except OSError as e:
            results[name] = e.errno
        finally:
            subprocess.run(["umount", m], check=True)
    c = compare(Lowers((k.p("l1"), k.p("l2"))), "redirect_dir=off", "redirect_dir=on",
                script="mv /etc /etc2")  # fmt: skip
    a, b = c.as_json()["commands"][0]["A"], c.as_json()["commands"][0]["B"]
    assert results["off"] == errno.EXDEV and "EXDEV /etc" in a["decisions"]
    assert f"redirect /etc2 -> {results['on'].decode()!r}" in b["decisions"]
    assert not any(d.startswith("EXDEV") for d in b["decisions"])


def test_a_refused_option_set_is_reported_in_the_kernels_words(k: KernelSide) -> None:
    """The kernel refuses metacopy=on with redirect_dir=off (EINVAL) and says why in the
    kernel log; compare's side B carries that sentence."""
    _demo(k)
    opts = "metacopy=on,redirect_dir=off"
    for d in ("u", "w", "m"):
        os.mkdir(k.p(d))
    data = f"lowerdir={k.p('l1')}:{k.p('l2')},upperdir={k.p('u')},workdir={k.p('w')},{opts}"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", data, k.p("m")],
                             capture_output=True)  # fmt: skip
    assert mounted.returncode != 0
    log = subprocess.run(["dmesg"], capture_output=True, text=True)
    said = [line.split("] ", 1)[-1] for line in log.stdout.splitlines() if "overlayfs:" in line]
    if log.returncode != 0 or not said:
        pytest.skip("the kernel log is not readable here: the refusal's reason cannot be read")
    c = compare(Lowers((k.p("l1"), k.p("l2"))), "", opts, script="true")
    assert c.a.refused is None and c.b.refused == said[-1]
