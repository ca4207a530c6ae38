"""``overlaysim mount`` / ``overlaysim umount``: a real FUSE mount of a simulated overlay.

Real programs run on the mount point; every decision is the simulation's (and streams with
``--explain``); at unmount the upper dir is written to ``--upperdir`` in the kernel's on-disk
form. ``mount.fuse.overlaysim`` (overlaysim/fuse/helper.py) is the same for mount(8).
"""

from __future__ import annotations

from typing import Any

import click


class _OptionalExplain(click.Command):
    """``--explain`` alone means stderr; ``--explain=FILE`` a file. A bare ``--explain`` must
    not swallow the mount point that follows it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, ["--explain=-" if a == "--explain" else a for a in args])


@click.command("mount", cls=_OptionalExplain)
@click.argument("mountpoint")
@click.option("--lowerdir", metavar="L1:L2:...",
              help="Real lower dirs, uppermost first ('::' before data-only layers); "
                   "imported into the simulation, never written.")  # fmt: skip
@click.option("--upperdir", metavar="DIR",
              help="Real upper dir: its content starts the simulated upper, which is "
                   "written back here (atomically) at unmount.")  # fmt: skip
@click.option("--workdir", metavar="DIR", help="Real work dir (needed with --upperdir).")
@click.option("-o", "options", multiple=True, metavar="OPTS",
              help="Overlay options (redirect_dir=on, metacopy=on, index=on, userxattr...), "
                   "mount flags (ro, nosuid, nodev, noexec, noatime...), or "
                   "lowerdir=/upperdir=/workdir=.")  # fmt: skip
@click.option("-f", "--foreground", is_flag=True, help="Serve in the foreground (Ctrl-C unmounts).")
@click.option("--explain", metavar="[=FILE]",
              help="Stream every copy-up, whiteout, opaque dir and redirect as it happens, "
                   "to stderr (--explain) or appended to FILE (--explain=FILE).")  # fmt: skip
def mount(mountpoint: str, lowerdir: str | None, upperdir: str | None, workdir: str | None,
          options: tuple[str, ...], foreground: bool, explain: str | None) -> None:  # fmt: skip
    """Mount a simulated overlay of real lower dirs on MOUNTPOINT (FUSE).

    \b
      overlaysim mount --lowerdir L1:L2 [--upperdir U --workdir W] [-o OPTS] [-f]
                       [--explain[=FILE]] MOUNTPOINT
      overlaysim umount MOUNTPOINT      (or fusermount3 -u MOUNTPOINT)

    Without -f it returns once the mount is ready and a daemon serves it.
    """
    from overlaysim.fuse import daemon
    from overlaysim.fuse import options as parse_options

    spec = parse_options.parse(mountpoint, lowerdir=lowerdir, upperdir=upperdir,
                               workdir=workdir, options=",".join(options),
                               explain=explain)  # fmt: skip
    daemon.mount(spec, foreground=foreground)


@click.command("umount")
@click.argument("mountpoint")
@click.option("-l", "--lazy", is_flag=True,
              help="Detach now even if busy; the write-back follows when the last open "
                   "file there is closed.")  # fmt: skip
@click.option("--timeout", type=float, default=600.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the daemon's write-back.")
def umount(mountpoint: str, lazy: bool, timeout: float) -> None:
    """Unmount an overlaysim mount and wait until its upper dir is written back."""
    from overlaysim.fuse.umount import unmount

    note = unmount(mountpoint, lazy=lazy, timeout=timeout)
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
