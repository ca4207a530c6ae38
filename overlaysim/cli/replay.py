"""``overlaysim replay``: a recorded trace, replayed offline, predicts the upper dir.

``overlaysim replay TRACE --lowerdir L1:L2`` is short for ``overlaysim replay run ...``;
``overlaysim replay convert`` turns strace logs into the JSONL op format other tracers write.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from overlaysim.errors import UsageError
from overlaysim.replay.api import ReplayConfig, ReplayResult, TraceSource, replay
from overlaysim.replay.executor import MAX_FILE_BYTES
from overlaysim.replay.format import write_jsonl
from overlaysim.replay.whatif import compare_runs, what_if_config, what_if_lines


class _DefaultRun(click.Group):
    """A group whose first argument, when it names no sub-command, is a trace for ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("replay", cls=_DefaultRun)
def replay_group() -> None:
    """Replay a recorded trace (strace -f logs or JSONL ops) on a simulated overlay.

    \b
      overlaysim replay TRACE --lowerdir L1:L2 [--options OPTS] [--mount-point PATH]
                        [--write-upper DIR] [--report FILE.json] [--container NAME]
      overlaysim replay convert TRACE -o OPS.jsonl
    """


def parse_user(text: str | None) -> tuple[int, int]:
    """``--user UID[:GID]`` as numbers (``report --trace`` takes the same option)."""
    if not text:
        return 0, 0
    uid, _, gid = text.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError:
        raise UsageError(f"--user takes UID[:GID] as numbers, not {text!r}") from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("replaying: {task.completed:,} lines"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:  # fmt: skip
        task = bar.add_task("replay", total=None)
        yield lambda n: bar.update(task, completed=n)


@replay_group.command("run")
@click.argument("trace", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--lowerdir", "lowerdir", metavar="L1:L2:...",
              help="Real lower dirs in the kernel's on-disk form, uppermost first.")
@click.option("--upperdir", metavar="DIR",
              help="The upper dir as it was when the trace began (default: empty).")
@click.option("--image", metavar="ARCHIVE", help="Take the lowers from an image archive.")
@click.option("--ref", "image_ref", metavar="NAME", help="Which image of --image (a tag).")
@click.option("--options", default="", metavar="OPTS",
              help="Other mount options: redirect_dir=on, userxattr, volatile...")
@click.option("--mount-point", default="/", show_default=True, metavar="PATH",
              help="Where the traced programs saw the overlay's root.")
@click.option("--cwd", metavar="PATH", help="The first process's working directory "
              "(default: the mount point).")
@click.option("--user", metavar="UID[:GID]", help="Credentials of the traced programs (root).")
@click.option("--exclude", multiple=True, metavar="PATH",
              help="Other mounts inside the mount point whose calls are ignored "
              "(default /proc /sys /dev).")
@click.option("--write-upper", metavar="DIR", help="Write the predicted upper dir here.")
@click.option("--report", "report_path", metavar="FILE.json", help="Write the full report.")
@click.option("--container", metavar="NAME", help="Replay into this container of the world.")
@click.option("--world", metavar="FILE", envvar="OVERLAYSIM_WORLD",
              default="./overlaysim.world", help="The saved machine (with --container).")
@click.option("--what-if", "what_if", multiple=True, metavar="OPTS",
              help="Also replay under these options (lowerdir=A:B for other lowers) and "
              "compare. Repeatable.")
@click.option("--max-file-size", "max_file_size", type=click.IntRange(min=0),
              default=MAX_FILE_BYTES, show_default=True, metavar="BYTES",
              help="Stop with an error when a call would make a file larger (data is kept "
              "in memory).")
@click.option("--max-rows", "max_rows", type=click.IntRange(min=0), default=None,
              metavar="N", help="Rows kept per kind of engine decision in the report "
              "(default 1000; counts and byte totals are always exact).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_cmd(trace: Sequence[str], lowerdir: str | None, upperdir: str | None, image: str | None,
            image_ref: str | None, options: str, mount_point: str, cwd: str | None,
            user: str | None, exclude: Sequence[str], write_upper: str | None,
            report_path: str | None, container: str | None, world: str,
            what_if: Sequence[str], max_file_size: int, max_rows: int | None, as_json: bool,
            quiet: bool) -> None:  # fmt: skip
    """Replay TRACE (one log, or the per-pid files of strace -ff) and predict the upper dir.

    Exit status: 0 when every replayed call returned what was recorded, 1 when any differ
    (they are listed) or on an error.
    """
    uid, gid = parse_user(user)
    cfg = ReplayConfig(
        lowerdirs=[x for x in (lowerdir or "").split(":") if x], upperdir=upperdir, image=image,
        image_ref=image_ref, options=options, mount_point=mount_point, cwd=cwd, uid=uid,
        gid=gid, exclude=tuple(exclude) if exclude else ("/proc", "/sys", "/dev"),
        max_file_bytes=max_file_size, max_rows=max_rows,
    )  # fmt: skip
    if container:
        if lowerdir or upperdir or image or what_if:
            raise UsageError("--container takes its lowers from the world; "
                             "drop --lowerdir/--upperdir/--image/--what-if")  # fmt: skip
        result = _into_container(trace, cfg, world, container, quiet)
    else:
        if not cfg.lowerdirs and not image:
            raise UsageError("give the lowers: --lowerdir L1:L2:... or --image ARCHIVE")
        if lowerdir and image:
            raise UsageError("--lowerdir and --image exclude each other")
        with _progress(not quiet and not as_json) as prog:
            result = replay(list(trace), cfg, prog)
    rep = result.report
    others: list[tuple[str, ReplayResult]] = []
    for spec in what_if:
        alt = what_if_config(cfg, spec)
        others.append((spec, replay(list(trace), alt)))
    if others:
        rep["what_if"] = compare_runs(result, others)
    if write_upper:
        result.write_upper(write_upper)
    if report_path:
        with open(report_path, "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=2, sort_keys=False)
            f.write("\n")
    if as_json:
        click.echo(json.dumps(rep, indent=2, sort_keys=False))
    else:
        from overlaysim.replay.report import summary_lines

        for line in summary_lines(rep):
            click.echo(line)
        if others:
            for line in what_if_lines(rep["what_if"]):
                click.echo(line)
        if write_upper:
            click.echo(f"upper dir written to {write_upper}")
    if rep["mismatch_count"]:
        sys.exit(1)


def _into_container(trace: Sequence[str], cfg: ReplayConfig, world: str, name: str,
                    quiet: bool) -> ReplayResult:  # fmt: skip
    from overlaysim.replay.session import from_container
    from overlaysim.world import open_world

    with open_world(world, create=False, write=True) as w:
        session, release = from_container(w, name, cfg.cwd, cfg.uid, cfg.gid)
        try:
            with _progress(not quiet) as prog:
                result = replay(list(trace), cfg, prog, session=session)
        finally:
            release()
    return result


@replay_group.command("convert")
@click.argument("trace", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="FILE", default="-", show_default=True,
              help="Where the JSONL goes (- for stdout).")
def convert_cmd(trace: Sequence[str], output: str) -> None:
    """Convert strace -f log(s) into overlaysim's JSONL op format (see the README)."""
    src = TraceSource(list(trace))
    ops = src.ops()
    if output == "-":
        n = write_jsonl(ops, sys.stdout, source=src.kind)
    else:
        tmp = output + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                n = write_jsonl(ops, f, source=src.kind)
        except BaseException:
            import os

            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        import os

        os.replace(tmp, output)
    skipped = src.skipped
    note = f"{n} ops from {src.line_count} lines"
    if skipped:
        note += f"; skipped {sum(skipped.values())} (" + ", ".join(
            f"{c} {why}" for why, c in skipped.most_common(5)) + ")"  # fmt: skip
    click.echo(note, err=True)
