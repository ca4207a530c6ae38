"""``overlaysim tour``: a narrated overlay session on the simulated machine (``make demo``).

Each step shows the command a reader would type on a real Linux box, the simulator's output,
and one sentence on what happened in lower/upper/work/merged and why — the sentence is built
from the engine's events, so it tells what the engine actually did.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import click
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from overlaysim import Event, HostFS
from overlaysim.demo_layers import build_app, build_base

LOWER1, LOWER2 = "/var/lib/demo/base", "/var/lib/demo/app"
UPPER, WORK, MERGED = "/var/lib/demo/upper", "/var/lib/demo/work", "/merged"
OPTIONS = f"lowerdir={LOWER2}:{LOWER1},upperdir={UPPER},workdir={WORK}"


@dataclass
class Step:
    title: str
    commands: list[str]
    why: Callable[[list[Event]], str]


def _events_text(events: list[Event], kinds: tuple[str, ...]) -> list[str]:
    return [e.describe() for e in events if e.kind in kinds]


def _say(default: str, kinds: tuple[str, ...] = ("copy_up", "whiteout", "opaque", "redirect",
                                                 "exdev")) -> Callable[[list[Event]], str]:  # fmt: skip
    def why(events: list[Event]) -> str:
        did = _events_text(events, kinds)
        return default + ("\nEngine events: " + "; ".join(did) if did else "")

    return why


STEPS = [
    Step("Two image layers and an empty upper layer",
         [f"ls {LOWER1}", f"ls -l {LOWER2} {LOWER2}/etc", f"ls -la {UPPER}"],
         _say("The lower layers are ordinary directories: the base image and an app layer on "
              "top of it. The upper layer, where all changes will go, is empty.")),
    Step("Mount the overlay",
         [f"mount -t overlay overlay -o {OPTIONS} {MERGED}", "mount | grep overlay",
          f"ls {MERGED}"],
         _say("lowerdir lists the top layer first. The merged view shows the union of both "
              "layers; nothing was copied, and the upper layer only gained the trusted.overlay"
              ".uuid xattr on its root.")),
    Step("Read a file: no copy-up",
         [f"cat {MERGED}/etc/motd", f"cat {MERGED}/etc/os-release", f"ls -la {UPPER}"],
         _say("etc/motd exists in both layers and the app layer's copy wins. Reading never "
              "copies anything up: the upper layer is still empty.")),
    Step("Append to a lower file: copy-up",
         [f"echo 'edited in the container' >> {MERGED}/etc/motd", f"cat {MERGED}/etc/motd",
          f"ls -lR {UPPER}", f"getfattr -d -m - {UPPER}/etc/motd"],
         _say("Opening etc/motd for writing copied it (and its parent etc/) into the upper "
              "layer first; the trusted.overlay.origin xattr remembers the lower file, so the "
              "inode number stays the same.")),
    Step("Delete a lower file: a whiteout",
         [f"rm {MERGED}/hello.sh", f"ls {MERGED}", f"ls -l {UPPER}", f"ls -la {WORK}/work"],
         _say("hello.sh still exists in the app layer, so the upper layer records its deletion "
              "as a whiteout: a character device 0,0. Every whiteout of this mount is a hard "
              "link to one master in work/work, hence its link count.")),
    Step("Replace a directory: opaque",
         [f"rm -r {MERGED}/etc/apt", f"mkdir {MERGED}/etc/apt", f"ls -la {MERGED}/etc/apt",
          f"getfattr -d -m - {UPPER}/etc/apt"],
         _say("Creating a directory where a whiteout stands makes it opaque "
              "(trusted.overlay.opaque=y): the lower etc/apt no longer shows through.")),
    Step("Rename a lower directory: EXDEV",
         [f"mv -T {MERGED}/var/log {MERGED}/var/log.old; echo exit status $?"],
         _say("With the default redirect_dir=follow the kernel refuses to rename a directory "
              "that has lower parts (EXDEV); mv then falls back to copying, as on a real "
              "system. Mount with redirect_dir=on to get a redirect xattr instead.")),
    Step("Unmount: the upper layer is the container's diff",
         [f"umount {MERGED}", f"ls -lR {UPPER}"],
         _say("After umount the merged view is gone, but the upper layer keeps every change: "
              "this directory is what Docker calls the container's diff.")),
]


def run_tour(console: Console) -> None:
    from overlaysim.shell.executor import Shell

    fs = HostFS()
    build_base(fs.os, LOWER1)
    build_app(fs.os, LOWER2)
    for d in (UPPER, WORK, MERGED):
        fs.os.makedirs(d)
    console.print(Panel.fit(
        "overlaysim tour: an overlay mount on the simulated machine, step by step.\n"
        "Each command below runs on overlaysim's in-memory kernel; its output is what a real "
        "Linux 6.18 prints.", title="overlaysim"))  # fmt: skip
    for n, step in enumerate(STEPS, 1):
        console.rule(f"[bold]{n}. {step.title}")
        mark = len(fs.events)
        for cmd in step.commands:
            out = io.StringIO()
            sh = Shell(fs.os, mounts=fs.mounts, mount=fs.mount, umount=fs.umount,
                       stdout=out, stderr=out)  # fmt: skip
            sh.run(cmd)
            console.print(Text(f"$ {cmd}", style="bold cyan"))
            console.print(Text(out.getvalue().rstrip("\n")), highlight=False)
        console.print(Text(step.why(fs.events.since(mark)), style="italic green"))
    console.rule("[bold]Where next")
    console.print(
        "Use the same engine from Python:  from overlaysim import HostFS\n"
        "Inspect real images:              overlaysim image inspect ARCHIVE\n"
        "Every command:                    overlaysim --help", highlight=False)  # fmt: skip


@click.command()
def tour() -> None:
    """Walk through an overlay mount step by step (what `make demo` runs).

    Example: overlaysim tour | less -R
    """
    run_tour(Console(highlight=False))
