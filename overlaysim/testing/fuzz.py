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
@click.option("--jobs", default=1, show_default=True,
              help="Processes; job i runs its share of the sequences with seed SEED+i.")  # fmt: skip
def main(sequences: int, seed_: int, profile: tuple[str, ...], simulator: str, oracle: str,
         n_ops: int, jobs: int) -> None:  # fmt: skip
    """Differential fuzzing of a simulator against the kernel oracle.

    \b
    Example:
      python -m overlaysim.testing.fuzz --sequences 20000 --seed 20261128 --jobs 2
    """
    if jobs > 1:
        sys.exit(_parallel(jobs, sequences, seed_, sys.argv[1:]))
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


def _parallel(jobs: int, sequences: int, seed_: int, argv: list[str]) -> int:
    """Run ``jobs`` copies of this command side by side, each with its own seed and share."""
    import subprocess

    rest = _without(argv, ("--jobs", "--sequences", "--seed"))
    procs = []
    for i in range(jobs):
        share = sequences // jobs + (1 if i < sequences % jobs else 0)
        cmd = [sys.executable, "-m", "overlaysim.testing.fuzz", "--sequences", str(share),
               "--seed", str(seed_ + i), *rest]  # fmt: skip
        click.echo(f"job {i}: {share} sequences, seed {seed_ + i}")
        procs.append(subprocess.Popen(cmd))
    codes = [p.wait() for p in procs]
    failed = [i for i, c in enumerate(codes) if c != 0]
    click.echo(f"{sequences} sequences in {jobs} jobs: "
               + (f"divergence in job(s) {failed}" if failed else "0 divergences"))  # fmt: skip
    return 1 if failed else 0


def _without(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not any(a.startswith(n + "=") for n in names):
            out.append(a)
    return out


if __name__ == "__main__":
    main()
