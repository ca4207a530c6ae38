"""``python -m overlaysim.testing.fuzz``: long differential runs with a fixed seed.

Generates cases over the option profiles, runs each on the oracle (the kernel, or the
reference model where mounting is not permitted) and on a simulator factory, and on the
first divergence lets Hypothesis shrink the case, then prints the report and a standalone
shell script that reproduces it on a real kernel. Exit status 1 on a divergence.
"""

from __future__ import annotations

import importlib
import sys
import time

import click
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from overlaysim.testing import differential as D
from overlaysim.testing import reference
from overlaysim.testing import strategies as S


def load_factory(spec: str) -> D.MountFactory:
    """``module:attribute`` -> a mount factory."""
    module, _, attr = spec.partition(":")
    factory: D.MountFactory = getattr(importlib.import_module(module), attr)
    return factory


@click.command()
@click.option("--sequences", default=1000, show_default=True, help="Cases to generate.")
@click.option("--seed", "seed_", default=20261128, show_default=True, help="Hypothesis seed.")
@click.option("--profile", type=click.Choice(sorted(S.PROFILES)), multiple=True,
              help="Option profiles (default: all).")  # fmt: skip
@click.option("--simulator", default="overlaysim.testing.simulator:simulator_factory",
              show_default=True, help="module:factory of the mount under test.")  # fmt: skip
@click.option("--oracle", type=click.Choice(["auto", "kernel", "reference"]), default="auto",
              show_default=True, help="auto: the kernel when mount(2) works here.")  # fmt: skip
@click.option("--ops", "n_ops", default=20, show_default=True, help="Minimum ops per case.")
def main(sequences: int, seed_: int, profile: tuple[str, ...], simulator: str, oracle: str,
         n_ops: int) -> None:  # fmt: skip
    """Differential fuzzing of a simulator against the kernel oracle."""
    from overlaysim.testing.kernel import can_mount, kernel_factory

    mountable, why = can_mount()
    if oracle == "kernel" and not mountable:
        raise click.UsageError(f"kernel oracle unavailable: {why}")
    use_kernel = oracle == "kernel" or (oracle == "auto" and mountable)
    oracle_factory = kernel_factory if use_kernel else reference.reference_factory
    sim = load_factory(simulator)
    profiles = list(profile) or sorted(S.PROFILES)
    count = {"n": 0}
    started = time.monotonic()
    click.echo(f"oracle: {'kernel' if use_kernel else 'reference model'} ({why}); "
               f"{sequences} sequences, seed {seed_}, profiles {', '.join(profiles)}")  # fmt: skip

    @seed(seed_)
    @settings(max_examples=sequences, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(profiles).flatmap(
        lambda p: S.cases(p, min_ops=n_ops, max_ops=2 * n_ops,
                          hardlinks=use_kernel, whiteouts=True)))  # fmt: skip
    def run(case: S.Case) -> None:
        stack = case.stack if use_kernel else reference.sanitize(case.stack)
        ignore: tuple[str, ...] = () if use_kernel else ("links", "inodes")
        report = D.run_case(stack, case.ops, case.options, sim, oracle_factory=oracle_factory,
                            compare=("merged", "upper", "work") if use_kernel else ("merged",),
                            ignore=ignore, round_trip=use_kernel)  # fmt: skip
        count["n"] += 1
        if count["n"] % 500 == 0:
            click.echo(f"  {count['n']} runs, {time.monotonic() - started:.0f}s", err=True)
        if not report.ok:
            raise AssertionError(f"profile {case.profile}\n{report}\n--- script ---\n{report.script()}")

    try:
        run()
    except AssertionError as e:
        click.echo(str(e))
        sys.exit(1)
    click.echo(f"{count['n']} sequences, 0 divergences ({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
