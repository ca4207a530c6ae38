"""``overlaysim fuzz``: differential fuzzing campaigns against the kernel's overlay semantics.

Exit status: 0 no divergence, 1 divergences found (in the whole campaign, resumed sessions
included), 2 a usage error (one line on stderr), 130 interrupted by Ctrl-C before any
divergence was found.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from overlaysim.errors import OverlaySimError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h30m``, ``2d`` -> seconds."""
    parts = _DURATION.findall(text.strip())
    if not text.strip() or "".join(n + u for n, u in parts) != text.strip():
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 10m, 1h30m", param_hint="--time")
    return sum(float(n) * _UNITS[u or "s"] for n, u in parts)


class _OneLineCommand(click.Command):
    """Usage errors as one line and exit status 2, never a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            _fail(e.format_message())

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            _fail(e.format_message())
        except OverlaySimError as e:
            _fail(" ".join(str(e).split()))
        except (KeyboardInterrupt, SystemExit, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:  # never a traceback to a user: one line, and exit 2
            _fail(f"internal error: {type(e).__name__}: {' '.join(str(e).split())}")


def _fail(message: str) -> NoReturn:
    click.echo(f"overlaysim fuzz: error: {message}", err=True)
    sys.exit(2)


@contextlib.contextmanager
def _cluster(address: str) -> Iterator[Any]:
    """A concurrent.futures executor on a Dask cluster (the optional ``cluster`` extra)."""
    try:  # optional, and untyped: used as Any
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        _fail("--cluster needs Dask distributed: pip install 'overlaysim[cluster]'")
    try:
        client = distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        _fail(f"cannot reach the cluster at {address}: {e}")
    try:
        yield client.get_executor()
    finally:
        client.close()


@click.command("fuzz", cls=_OneLineCommand)
@click.option("--against", default="kernel", show_default=True,
              metavar="kernel|fuse-overlayfs|overlaysim-fuse|simulator|reference|CMD",
              help="What is judged: the simulator against the kernel; fuse-overlayfs or the "
                   "simulator through its FUSE mount (overlaysim-fuse) against the kernel; "
                   "simulator profiles against each other; the reference model; "
                   "or CMD, a program speaking the JSON-lines protocol.")  # fmt: skip
@click.option("--profile", "profiles", multiple=True, metavar="NAME",
              help="Option profile (repeatable; default: all the target runs).")  # fmt: skip
@click.option("--options", default=None, metavar="OPTS",
              help="Custom extra mount options instead of profiles.")  # fmt: skip
@click.option("--sequences", type=click.IntRange(min=1), default=None,
              help="Cases to run (default 1000 unless --time).")  # fmt: skip
@click.option("--time", "duration", default=None, metavar="DURATION",
              help="Run for this long (90s, 10m, 2h).")  # fmt: skip
@click.option("--seed", type=int, default=20261128, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes; shards are the same whatever the number.")  # fmt: skip
@click.option("--cluster", default=None, metavar="ADDRESS",
              help="Run the shards on a Dask scheduler (tcp://host:8786).")  # fmt: skip
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Campaign directory: state (resumable) and divergences/ (default: a new temp dir).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout instead of a live table.")
@click.option("--replay", default=None, type=click.Path(dir_okay=False), metavar="CASE.JSON",
              help="Run one recorded case again and report whether it still diverges.")  # fmt: skip
@click.option("--shard-size", type=click.IntRange(min=1), default=50, show_default=True,
              help="Cases per shard (the unit of resuming and of parallel work).")  # fmt: skip
@click.option("--ops", "n_ops", type=click.IntRange(min=1), default=20, show_default=True,
              help="Minimum operations per generated case (maximum: twice that).")  # fmt: skip
@click.option("-x", "--exitfirst", is_flag=True, help="Stop at the first divergence (shrunk).")
@click.option("--no-shrink", is_flag=True, help="Report divergences as found, unshrunk.")
@click.option("--plant-fault", default=None, hidden=True,
              help="Test only: plant a named fault in the engine (overlaysim.fuzz.faults).")  # fmt: skip
def fuzz(against: str, profiles: tuple[str, ...], options: str | None, sequences: int | None,
         duration: str | None, seed: int, jobs: int, cluster: str | None, out: str | None,
         as_json: bool, replay: str | None, shard_size: int, n_ops: int, exitfirst: bool,
         no_shrink: bool, plant_fault: str | None) -> None:  # fmt: skip
    """Differential fuzzing: generated layer stacks and operations, run on a judged
    implementation and on the simulator; every divergence shrunk to a minimal case and
    written as a shell script, a pytest test and JSON, grouped by signature.

    \b
    Examples:
      overlaysim fuzz --sequences 2000 --jobs 2 --out fuzz-out
      overlaysim fuzz --against fuse-overlayfs --time 10m --out fuse-out
      overlaysim fuzz --replay fuzz-out/divergences/<signature>/case.json
    """
    from overlaysim.fuzz.campaign import Campaign, Config, exit_code
    from overlaysim.fuzz.progress import reporter
    from overlaysim.fuzz.store import Store

    if replay is not None:
        sys.exit(_replay(replay, against if _given("--against") else None, as_json))
    if profiles and options is not None:
        raise click.UsageError("--profile and --options exclude each other")
    if cluster is not None and jobs != 1 and _given("--jobs"):
        raise click.UsageError("--jobs is for local processes; a cluster runs as wide as it is")
    seconds = parse_duration(duration) if duration is not None else None
    config = Config(target=against, profiles=profiles, options=options, seed=seed,
                    sequences=sequences, seconds=seconds, jobs=jobs, shard_size=shard_size,
                    min_ops=n_ops, max_ops=2 * n_ops, fault=plant_fault, shrink=not no_shrink,
                    exitfirst=exitfirst)  # fmt: skip
    store = Store(out if out is not None else tempfile.mkdtemp(prefix="overlaysim-fuzz-"))
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(_cluster(cluster)) if cluster is not None else None
        campaign = Campaign(config, store, reporter(as_json), executor,
                            f"on the Dask cluster at {cluster}")  # fmt: skip
        try:
            stats = campaign.run()
        except KeyboardInterrupt:  # a second Ctrl-C: no waiting for the shards in flight
            campaign.stats.interrupted = True
            campaign.reporter.finish(campaign.stats)
            click.echo("overlaysim fuzz: interrupted twice; the state file keeps every "
                       "finished shard", err=True)  # fmt: skip
            sys.exit(130)
        campaign.reporter.finish(stats)
    sys.exit(exit_code(stats))


def _given(option: str) -> bool:
    ctx = click.get_current_context()
    name = {"--against": "against", "--jobs": "jobs"}[option]
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _replay(path: str, against: str | None, as_json: bool) -> int:
    from overlaysim.fuzz import reproduce
    from overlaysim.fuzz.signature import signature
    from overlaysim.fuzz.targets import resolve_target

    rec = reproduce.load(path)
    target = resolve_target(against or str(rec["target"]))
    usable, why = target.available()
    if not usable:
        _fail(f"--against {target.name} cannot run here: {why}")
    report = reproduce.replay(rec, target)
    sig = signature(report)
    if as_json:
        click.echo(json.dumps({"event": "replay", "case": path, "target": target.name,
                               "diverges": not report.ok, "signature": sig,
                               "recorded_signature": rec["signature"],
                               "report": str(report)}, sort_keys=True))  # fmt: skip
    else:
        state = "still diverges" if not report.ok else "no longer diverges"
        same = "" if report.ok else (" (same signature)" if sig == rec["signature"]
                                     else f" (now {sig}, recorded {rec['signature']})")  # fmt: skip
        click.echo(f"{path}: {state} on {target.name}{same}\n{report}")
    return 0 if report.ok else 1
