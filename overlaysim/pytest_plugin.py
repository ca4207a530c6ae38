"""pytest plugin: a simulated overlay as a fixture, and differential tests against the kernel.

Registered through the ``pytest11`` entry point ``overlaysim`` (active once overlaysim is
installed; ``-p no:overlaysim`` turns it off). Importing it costs nothing but pytest itself:
the simulator, the kernel oracle and Hypothesis load only when a test asks for a fixture.

* ``overlay`` -- an overlay mounted from the layers of ``@pytest.mark.overlay_layers(...)``
  (or of the ``overlay_stack``/``overlay_options`` fixtures, which a test module may
  override). ``overlay.os`` is an os-like front end taking paths relative to the mount point;
  ``overlay.sim`` is the simulated mount (``overlay.sim.fs`` its HostFS, ``fs.events`` what
  the engine did); ``overlay.kernel`` the same layers on a real ``mount(2)``, or a skip with
  the reason where that is not permitted.
* ``@pytest.mark.overlay_differential`` -- every ``overlay.os`` call runs on the simulated
  overlay and on its twin (the kernel; ``judge="reference"`` for the flat model, or a fuzz
  target spec), results and errnos are compared call by call and the merged, upper and work
  trees at the end; a divergence fails the test with a bash script that replays it.
* ``overlay_factory`` -- session-scoped ``make(spec, options, judge=...)`` for Hypothesis
  tests (function-scoped fixtures and ``@given`` do not mix).
* ``overlay_simulator`` -- the judged side's mount factory (None: overlaysim's simulator);
  override it to judge another implementation with the same tests.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from overlaysim.testing.differential import MountFactory, OverlayMount
    from overlaysim.testing.twin import OverlayTwin

DIFFERENTIAL = "overlay_differential"
LAYERS = "overlay_layers"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{DIFFERENTIAL}(judge='kernel'): run the test body's overlay.os calls on the simulated "
        "overlay and on its twin (the kernel; 'reference', 'auto' or a fuzz target spec) and fail "
        "on any divergence with a shell reproducer; skipped with the reason where the twin "
        "cannot run",
    )
    config.addinivalue_line(
        "markers",
        f"{LAYERS}(lowers=[...], upper={{...}}, options='', profile=None): the layers and mount "
        "options of the `overlay` fixture (nested dicts: str/bytes are files, dicts dirs)",
    )


def _layers_mark(request: pytest.FixtureRequest) -> pytest.Mark | None:
    mark: pytest.Mark | None = request.node.get_closest_marker(LAYERS)
    return mark


@pytest.fixture
def overlay_stack(request: pytest.FixtureRequest) -> Any:
    """The layer spec of the ``overlay`` fixture: from ``overlay_layers``, else one empty
    lower and an empty upper."""
    mark = _layers_mark(request)
    if mark is None:
        return None
    if mark.args:
        return mark.args[0]
    return {k: v for k, v in mark.kwargs.items() if k in ("lowers", "lower", "upper")}


@pytest.fixture
def overlay_options(request: pytest.FixtureRequest) -> str:
    """Extra mount options: ``overlay_layers(options=...)`` or the options of its ``profile``."""
    mark = _layers_mark(request)
    if mark is None:
        return ""
    if "profile" in mark.kwargs:
        from overlaysim.strategies import mount_options

        return ",".join(filter(None, [mount_options(mark.kwargs["profile"]),
                                      mark.kwargs.get("options", "")]))  # fmt: skip
    return str(mark.kwargs.get("options", ""))


@pytest.fixture
def overlay_simulator() -> MountFactory | None:
    """The judged side's factory; None means overlaysim's simulator."""
    return None


class OverlayFixture:
    """What the ``overlay`` fixture gives: an :class:`~overlaysim.testing.twin.OverlayTwin`
    (its ``os``, ``apply``, ``check``, ``script``...) plus a lazily mounted ``kernel``."""

    def __init__(self, twin: OverlayTwin, differential: bool) -> None:
        self.twin, self.differential = twin, differential
        self._kernel: OverlayMount | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.twin, name)

    @property
    def sim(self) -> Any:
        """The simulated mount (``.fs`` its HostFS, ``.os`` the raw os-like module)."""
        return self.twin.sim

    def path(self, rel: str = "") -> str:
        """An absolute path of the simulated mount, for ``overlay.sim.os`` calls."""
        return f"{self.twin.mount_path}/{rel}" if rel else self.twin.mount_path

    @property
    def kernel(self) -> OverlayMount:
        """The kernel twin: in a differential test the one every call ran on; otherwise the
        same layers freshly mounted on first use. Skips the test where mount(2) is refused."""
        if self.twin.judge.name == "kernel" and self.twin.oracle is not None:
            return self.twin.oracle
        if self._kernel is None:
            from overlaysim.testing.kernel import can_mount, kernel_factory

            ok, why = can_mount()
            if not ok:
                pytest.skip(f"no kernel twin: {why}")
            self._kernel = kernel_factory(self.twin.stack, self.twin.options)
        return self._kernel

    def finish(self) -> None:
        """Compare the final trees and work dirs (differential tests), then unmount."""
        __tracebackhide__ = True
        try:
            self.twin.close(check=self.differential)
        finally:
            if self._kernel is not None:
                self._kernel.close()
                self._kernel = None


@pytest.fixture
def overlay(request: pytest.FixtureRequest, overlay_stack: Any, overlay_options: str,
            overlay_simulator: MountFactory | None) -> Iterator[OverlayFixture]:  # fmt: skip
    """A simulated overlay of ``overlay_stack``; its twin too under ``overlay_differential``."""
    from overlaysim.errors import UsageError
    from overlaysim.testing.twin import OverlayTwin, resolve_judge

    mark = request.node.get_closest_marker(DIFFERENTIAL)
    judge_name = "none"
    if mark is not None:
        judge_name = str(mark.kwargs.get("judge", mark.args[0] if mark.args else "kernel"))
    try:
        judge = resolve_judge(judge_name)
    except UsageError as e:
        pytest.skip(f"{DIFFERENTIAL}: {e}")
    fixture = OverlayFixture(OverlayTwin(overlay_stack, overlay_options, judge=judge,
                                         simulator=overlay_simulator), mark is not None)  # fmt: skip
    try:
        yield fixture
    finally:
        fixture.twin.failed = True  # whatever the body did, teardown only frees
        fixture.finish()


@pytest.fixture(scope="session")
def overlay_factory() -> Iterator[Callable[..., OverlayTwin]]:
    """``make(spec=None, options="", judge="auto", simulator=None)`` -> an
    :class:`~overlaysim.testing.twin.OverlayTwin` (a context manager); session-scoped so
    that ``@given`` tests can use it. A judge that cannot run here skips the test."""
    from overlaysim.errors import UsageError
    from overlaysim.testing.twin import OverlayTwin, resolve_judge

    made: list[OverlayTwin] = []

    def make(spec: Any = None, options: str = "", judge: str = "auto",
             simulator: MountFactory | None = None) -> OverlayTwin:  # fmt: skip
        try:
            resolved = resolve_judge(judge)
        except UsageError as e:
            pytest.skip(str(e))
        twin = OverlayTwin(spec, options, judge=resolved, simulator=simulator)
        made.append(twin)
        return twin

    yield make
    for twin in made:
        twin.close(check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After a differential test body passes, compare the final trees in the call phase (a
    divergence there is a test failure, not a teardown error)."""
    __tracebackhide__ = True
    if item.get_closest_marker(DIFFERENTIAL) is not None and "overlay" not in getattr(
        item, "fixturenames", ()
    ):
        pytest.fail(f"@pytest.mark.{DIFFERENTIAL} needs the `overlay` fixture", pytrace=False)
    result = yield
    fixture = getattr(item, "funcargs", {}).get("overlay")
    if isinstance(fixture, OverlayFixture) and fixture.differential:
        fixture.finish()
    return result
