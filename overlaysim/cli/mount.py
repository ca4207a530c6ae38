"""``overlaysim mount`` / ``overlaysim umount``: a real FUSE mount of a simulated overlay.

Real programs run on the mount point; every decision is the simulation's (and streams with
``--explain``); at unmount the upper dir is written to ``--upperdir`` in the kernel's on-disk
form. ``mount.fuse.overlaysim`` (overlaysim/fuse/helper.py) is the same for mount(8).
"""

from __future__ import annotations

import os
from typing import Any

import click

from overlaysim.cli.world_opt import DEFAULT_WORLD, ENVVAR, world_option


class _OptionalExplain(click.Command):
    """``--explain`` alone means stderr; ``--explain=FILE`` a file. A bare ``--explain`` must
    not swallow the mount point that follows it. ``--world`` alone (last, or before another
    option) means the usual world file ($OVERLAYSIM_WORLD, else ./overlaysim.world)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out = ["--explain=-" if a == "--explain" else a for a in args]
        for i, a in enumerate(out):
            if a == "--world" and (i + 1 == len(out) or out[i + 1].startswith("-")):
                out[i] = "--world=" + os.environ.get(ENVVAR, DEFAULT_WORLD)
        return super().parse_args(ctx, out)


@click.command("mount", cls=_OptionalExplain)
@click.argument("mountpoint")
@click.option("--lowerdir", metavar="L1:L2:...",
              help="Real lower dirs, uppermost first ('::' before data-only layers); "
                   "imported into the simulation (mapped, with --live), never written.")  # fmt: skip
@click.option("--upperdir", metavar="DIR",
              help="Real upper dir: its content starts the simulated upper, which is "
                   "written back here (atomically) at unmount.")  # fmt: skip
@click.option("--workdir", metavar="DIR", help="Real work dir (needed with --upperdir).")
@click.option("--live", is_flag=True,
              help="Write the real --upperdir/--workdir as the engine goes (whiteouts, "
                   "overlay xattrs, copy-ups visible while mounted); no write-back.")  # fmt: skip
@click.option("--scratch-upper", "scratch", is_flag=True,
              help="Without --upperdir: an empty upper dir in memory, dropped at unmount "
                   "(-o scratch). Without either the mount is lowers-only and read-only, "
                   "as the kernel's.")  # fmt: skip
@click.option("-o", "options", multiple=True, metavar="OPTS",
              help="Overlay options (redirect_dir=on, metacopy=on, index=on, userxattr...), "
                   "mount flags (ro, nosuid, nodev, noexec, noatime...), or "
                   "lowerdir=/upperdir=/workdir=.")  # fmt: skip
@click.option("-f", "--foreground", is_flag=True, help="Serve in the foreground (Ctrl-C unmounts).")
@click.option("--explain", metavar="[=FILE]",
              help="Stream every copy-up, whiteout, opaque dir and redirect as it happens, "
                   "to stderr (--explain) or appended to FILE (--explain=FILE).")  # fmt: skip
@click.option("--world", metavar="[FILE]",
              help="Mount a container of this saved world instead of real layers (FILE "
                   "defaults to $OVERLAYSIM_WORLD or ./overlaysim.world); needs --container.")
@click.option("--container", metavar="NAME", help="With --world: the container to mount.")
def mount(mountpoint: str, lowerdir: str | None, upperdir: str | None, workdir: str | None,
          options: tuple[str, ...], foreground: bool, explain: str | None,
          world: str | None, container: str | None, live: bool = False,
          scratch: bool = False) -> None:  # fmt: skip
    """Mount a simulated overlay of real lower dirs on MOUNTPOINT (FUSE).

    \b
      overlaysim mount --lowerdir L1:L2 [--upperdir U --workdir W [--live] | --scratch-upper]
                       [-o OPTS]
                       [-f] [--explain[=FILE]] MOUNTPOINT
      overlaysim mount --world [FILE] --container NAME [-o FLAGS] [-f] MOUNTPOINT
      overlaysim umount MOUNTPOINT      (or fusermount3 -u MOUNTPOINT)

    Without -f it returns once the mount is ready and a daemon serves it. With --world the
    container's writes go to its upper dir in the world, saved at unmount.
    """
    from overlaysim.fuse import daemon
    from overlaysim.fuse import options as parse_options
    from overlaysim.fuse.errors import MountError

    if world is not None or container is not None:
        if lowerdir or upperdir or workdir or live or scratch:
            raise MountError("--world mounts a container's own layers: drop --lowerdir, "
                             "--upperdir, --workdir and --live")  # fmt: skip
        _world_mount(world or os.environ.get(ENVVAR, DEFAULT_WORLD), container or "",
                     mountpoint, options, foreground, explain)  # fmt: skip
        return
    spec = parse_options.parse(mountpoint, lowerdir=lowerdir, upperdir=upperdir,
                               workdir=workdir, options=",".join(options),
                               explain=explain, live=live, scratch=scratch)  # fmt: skip
    daemon.mount(spec, foreground=foreground)


def _world_mount(world: str, container: str, mountpoint: str, options: tuple[str, ...],
                 foreground: bool, explain: str | None) -> None:  # fmt: skip
    from overlaysim.fuse import world as world_mount

    spec = world_mount.parse(world, container, mountpoint, ",".join(options), explain)
    world_mount.mount(world, container, spec, foreground=foreground)


@click.command("mount")
@click.argument("container")
@click.argument("mountpoint")
@click.option("-o", "options", multiple=True, metavar="FLAGS",
              help="Mount flags for the FUSE mount (ro, nosuid, nodev, noexec, noatime...).")
@click.option("-f", "--foreground", is_flag=True, help="Serve in the foreground (Ctrl-C unmounts).")
@click.option("--explain", is_flag=True, help="Stream the engine's decisions to stderr.")
@world_option
def docker_mount(container: str, mountpoint: str, options: tuple[str, ...], foreground: bool,
                 explain: bool, world: str) -> None:  # fmt: skip
    """Mount a container's filesystem (its merged view) on a real directory (FUSE).

    Real programs then read and write the container's files; the writes go to its upper
    dir, and the world is saved when `overlaysim umount MOUNTPOINT` (or fusermount3 -u)
    unmounts it. Until then other commands on this world are refused.

    \b
    Example:
      overlaysim docker mount web /mnt/web && echo hi > /mnt/web/tmp/hi
      overlaysim umount /mnt/web && overlaysim docker diff web
    """
    _world_mount(world, container, mountpoint, options, foreground, "-" if explain else None)


@click.command("umount")
@click.argument("mountpoint")
@click.option("-l", "--lazy", is_flag=True,
              help="Detach now even if busy; the write-back follows when the last open "
                   "file there is closed.")  # fmt: skip
@click.option("--timeout", type=float, default=600.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the daemon's write-back.")
@click.option("-w", "--wait", is_flag=True,
              help="Do not unmount: wait until the mount is gone (umount, fusermount3 -u) "
                   "and written back; at once if there is nothing to wait for.")  # fmt: skip
def umount(mountpoint: str, lazy: bool, timeout: float, wait: bool) -> None:
    """Unmount an overlaysim mount and wait until its upper dir (or world) is written back."""
    from overlaysim.fuse.umount import unmount

    note = unmount(mountpoint, lazy=lazy, timeout=timeout, wait=wait)
    if note:
        click.echo(note, err=True)


@click.command("overlay", hidden=True, add_help_option=False,
               context_settings={"ignore_unknown_options": True})  # fmt: skip
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def mount_fuse_form(args: tuple[str, ...]) -> None:
    """``overlaysim overlay MOUNTPOINT -o OPTS``: how fuse3's ``mount.fuse`` runs us for
    ``mount -t fuse.overlaysim overlay MOUNTPOINT -o ...`` when no ``mount.fuse.overlaysim``
    is linked in /sbin (it runs the type's subtype from PATH, the source first)."""
    from overlaysim.fuse.helper import main as helper

    raise SystemExit(helper(["overlay", *args]))


def commands() -> list[Any]:
    return [mount, umount, mount_fuse_form]
