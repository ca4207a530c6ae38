"""``mount.fuse.overlaysim``: the mount(8) helper, so that

    mount -t fuse.overlaysim overlay /mnt -o lowerdir=/l1:/l2,upperdir=/u,workdir=/w

works once the script is linked as ``/sbin/mount.fuse.overlaysim`` (or an fstab line with
type ``fuse.overlaysim``). mount(8) calls ``mount.TYPE SOURCE MOUNTPOINT [-sfnv] [-N NS]
[-o OPTIONS] [-t TYPE]``; the options are those of ``overlaysim mount -o`` plus
``explain=FILE``. The helper always daemonises (mount(8) waits for it) and exits 0 once the
mount is ready, 1 for a bad invocation, 32 when the mount failed (mount(8)'s codes).
"""

from __future__ import annotations

import sys

from overlaysim.errors import OverlaySimError

USAGE = ("usage: mount.fuse.overlaysim SOURCE MOUNTPOINT [-sfnv] [-o lowerdir=L1:L2"
         "[,upperdir=U,workdir=W][,OPTIONS]]")  # fmt: skip


class _Usage(Exception):
    pass


def parse_argv(argv: list[str]) -> tuple[str, str, str, bool]:
    """(source, mountpoint, options, fake) from mount(8)'s helper arguments."""
    positional: list[str] = []
    options: list[str] = []
    fake = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "-t", "-N"):
            if i + 1 >= len(argv):
                raise _Usage(f"{arg} needs a value")
            if arg == "-o":
                options.append(argv[i + 1])
            elif arg == "-N":
                raise _Usage("-N (another mount namespace) is not supported")
            i += 2
            continue
        if arg.startswith("-o") and len(arg) > 2:
            options.append(arg[2:])
        elif arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= set("sfnvrw"):
            fake = fake or "f" in arg  # -f: mount(8)'s "fake", do nothing
            if "r" in arg:
                options.append("ro")
        elif arg.startswith("-") and len(arg) > 1:
            raise _Usage(f"unknown option {arg}")
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 2:
        raise _Usage("expected SOURCE and MOUNTPOINT")
    return positional[0], positional[1], ",".join(options), fake


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    try:
        source, mountpoint, options, fake = parse_argv(args)
    except _Usage as e:
        print(f"mount.fuse.overlaysim: {e}\n{USAGE}", file=sys.stderr)
        return 1
    from overlaysim.fuse import daemon
    from overlaysim.fuse import options as parse_options

    try:
        spec = parse_options.parse(mountpoint, options=options, source=source)
        if fake:
            return 0
        daemon.mount(spec, foreground=False)
    except (OverlaySimError, OSError) as e:
        msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"mount.fuse.overlaysim: {' '.join(msg.split())}", file=sys.stderr)
        return 32
    return 0


if __name__ == "__main__":
    sys.exit(main())
