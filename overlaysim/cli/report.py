"""``overlaysim report``: a self-contained HTML picture of an image, a container or a replay.

The world is opened without saving: an image's scratch overlay, explain's trial operations
and a trace replayed into a container all stay in the throwaway copy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from overlaysim.cli.replay import parse_user
from overlaysim.cli.world_opt import world_option, world_session
from overlaysim.errors import UsageError
from overlaysim.report.model import MAX_PATHS


def _write(page: str, output: str) -> int:
    data = page.encode("utf-8")
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return len(data)
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, output)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise UsageError(f"-o {output}: {e.strerror or e}") from None
    return len(data)


def _replay(trace: Sequence[str], name: str | None, world: str, opts: dict[str, Any],
            max_paths: int) -> Any:  # fmt: skip
    from overlaysim.replay.api import ReplayConfig, replay
    from overlaysim.report import from_replay

    uid, gid = parse_user(opts["user"])
    exclude = tuple(opts["exclude"]) if opts["exclude"] else ("/proc", "/sys", "/dev")
    lowers = [x for x in (opts["lowerdir"] or "").split(":") if x]
    cfg = ReplayConfig(lowerdirs=lowers, upperdir=opts["upperdir"], image=opts["image"],
                       image_ref=opts["image_ref"], options=opts["options"],
                       mount_point=opts["mount_point"], cwd=opts["cwd"], uid=uid, gid=gid,
                       exclude=exclude, max_file_bytes=opts["max_file_size"],
                       max_rows=opts["max_rows"])  # fmt: skip
    if name is None:
        if not lowers and not opts["image"]:
            raise UsageError("give the lowers of the trace: --lowerdir L1:L2:... or --image "
                             "ARCHIVE (or a CONTAINER of the world to replay into)")  # fmt: skip
        if lowers and opts["image"]:
            raise UsageError("--lowerdir and --image exclude each other")
        return from_replay(replay(list(trace), cfg), max_paths)
    if lowers or opts["upperdir"] or opts["image"]:
        raise UsageError("a CONTAINER gives the lowers: drop --lowerdir/--upperdir/--image")
    from overlaysim.replay.session import from_container

    with world_session(world, write=False) as w:
        session, release = from_container(w, name, cfg.cwd, uid, gid)
        try:
            result = replay(list(trace), cfg, session=session)
        finally:
            release()
        return from_replay(result, max_paths, world=w, container=name)


@click.command("report")
@click.argument("name", metavar="[IMAGE|CONTAINER]", required=False)
@click.option("-o", "--output", default="report.html", show_default=True, metavar="FILE",
              help="Where the HTML page goes (- for stdout).")
@click.option("--trace", multiple=True, type=click.Path(dir_okay=False), metavar="TRACE",
              help="Replay this trace (strace -f log or JSONL ops; repeat for strace -ff "
              "files) and picture the run: on --lowerdir/--image, or into CONTAINER.")
@click.option("--lowerdir", metavar="L1:L2:...", help="With --trace: real lower dirs, "
              "uppermost first.")
@click.option("--upperdir", metavar="DIR", help="With --trace: the upper dir when it began.")
@click.option("--image", metavar="ARCHIVE", help="With --trace: lowers from an image archive.")
@click.option("--ref", "image_ref", metavar="NAME", help="Which image of --image (a tag).")
@click.option("--options", default="", metavar="OPTS", help="With --trace: other mount "
              "options (redirect_dir=on, metacopy=on...).")
@click.option("--mount-point", default="/", show_default=True, metavar="PATH",
              help="With --trace: where the traced programs saw the overlay's root.")
@click.option("--cwd", metavar="PATH", help="With --trace: the first process's directory.")
@click.option("--user", metavar="UID[:GID]", help="With --trace: the programs' credentials.")
@click.option("--exclude", multiple=True, metavar="PATH", help="With --trace: mounts inside "
              "the mount point whose calls are ignored (default /proc /sys /dev).")
@click.option("--max-file-size", "max_file_size", type=click.IntRange(min=0), default=None,
              metavar="BYTES", help="With --trace: refuse to grow a file beyond this.")
@click.option("--max-rows", "max_rows", type=click.IntRange(min=0), default=None, metavar="N",
              help="With --trace: copy-up rows kept (default 1000; totals stay exact).")
@click.option("--max-paths", "max_paths", type=click.IntRange(min=1), default=MAX_PATHS,
              show_default=True, metavar="N", help="Paths drawn and explained; the rest are "
              "counted in the bands' totals.")
@world_option
def report(name: str | None, output: str, trace: Sequence[str], max_paths: int, world: str,
           **opts: Any) -> None:  # fmt: skip
    """Write one self-contained HTML page (no network) picturing IMAGE, CONTAINER or a replay:
    the layer stack as bands, each path's winning layer with whiteouts and opaque dirs
    marked, the copy-up timeline with bytes, and explain's text for a path on click.

    \b
    Examples:
      overlaysim report busybox -o busybox.html
      overlaysim report web -o web.html
      overlaysim report --trace build.strace --lowerdir /srv/l2:/srv/l1 -o build.html
      overlaysim report web --trace ops.jsonl -o web-run.html   (replayed into a copy)

    A container's page draws the copy-ups of the world's event log (see overlaysim world
    log), with the command that caused each; with nothing logged it lists what its upper
    layer holds. A replay's page has the copy-ups in the order they happened. Open a page at
    FILE#explain=/etc/passwd to show that path's explanation.
    """
    from overlaysim.replay.executor import MAX_FILE_BYTES
    from overlaysim.report import from_world, render

    if opts["max_file_size"] is None:
        opts["max_file_size"] = MAX_FILE_BYTES
    if trace:
        rep = _replay(trace, name, world, opts, max_paths)
    else:
        if name is None:
            raise UsageError("give an IMAGE or CONTAINER of the world, or --trace TRACE")
        flags = {"lowerdir": "--lowerdir", "upperdir": "--upperdir", "image": "--image",
                 "image_ref": "--ref", "cwd": "--cwd", "user": "--user"}  # fmt: skip
        used = [flag for k, flag in flags.items() if opts[k]]
        if used:
            raise UsageError(f"{used[0]} goes with --trace")
        with world_session(world, write=False) as w:
            rep = from_world(w, name, world, max_paths)
    size = _write(render(rep), output)
    if output != "-":
        ups = "no event log" if rep.copy_ups is None else f"{rep.copy_up_count} copy-ups"
        click.echo(f"wrote {output}: {rep.kind} {rep.name}, {len(rep.bands)} layers, "
                   f"{len(rep.rows)} of {rep.total_paths} paths, {ups}, {size} bytes")  # fmt: skip
