"""Random shell scripts for ``docker exec``: what a container does to its upper layer.

Scripts use commands both machines have (busybox in the image, the overlaysim shell in the
simulator) on paths of the busybox-based dive images, existing and new, so they copy up
files, hard links (busybox's applets are hard links), directories with children, and
whiteout, rename and re-create things. Each command's stderr goes to /dev/null (first, so a
failing redirection is silent too) and only
whether it succeeded is printed: busybox's messages and exit codes are its own (a failed
redirection is status 1 and "can't create" in ash, 2 and "cannot create" in dash, which our
shell follows), the effect on the filesystem is what is compared; the script never stops
half-way. Files are copied with ``cat A > B``, not ``cp``: busybox's cp unlinks an existing
target and creates a new file (no copy-up, the source's mode), coreutils' cp truncates and
writes it (a copy-up, the target's mode); a redirection is the same on both.
"""

from __future__ import annotations

import posixpath

from hypothesis import strategies as st

#: Paths of the dive images (files, dirs, hard-linked applets) and new names beside them.
#: Not /etc itself: docker bind-mounts /etc/hostname, /etc/hosts and /etc/resolv.conf into a
#: running container, which the simulated container does not (README: what stays different),
#: so `rm -rf /etc` fails half-way (EBUSY) only on the real one.
EXISTING = (
    "/somefile.txt", "/root", "/root/saved.txt", "/root/.saved.txt", "/root/.data",
    "/root/.data/saved.again2.txt", "/tmp", "/tmp/saved.again1.txt", "/etc/passwd",
    "/etc/group", "/bin/ls", "/bin/busybox", "/bin", "/usr", "/var", "/home",
)  # fmt: skip
NEW = ("/n1", "/root/n2", "/tmp/n3", "/root/.data/n4", "/n5/deep/x", "/etc/n6")

paths = st.sampled_from(EXISTING + NEW)
texts = st.sampled_from(("a", "hello", "x" * 100))
modes = st.sampled_from(("700", "644", "4755", "000", "1777", "u+x", "go-r"))
owners = st.sampled_from(("1000:1000", "0:0", "65534:100", "12:34"))


def _one(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from((
        "write", "append", "rm", "rmrf", "mkdir", "rmdir", "mv", "copy", "symlink", "link",
        "chmod", "chown", "touch", "truncate",
    )))  # fmt: skip
    p = draw(paths)
    # not a file onto itself (`mv /root/f /root`): busybox renames it in place (a no-op that
    # succeeds), coreutils, which our shell follows, refuses "the same file"
    q = draw(paths.filter(lambda x: x != p and posixpath.dirname(p) != x))
    return {
        "write": f"echo {draw(texts)} 2>/dev/null > {p}",
        "append": f"echo {draw(texts)} 2>/dev/null >> {p}",
        "rm": f"rm {p}", "rmrf": f"rm -rf {p}", "mkdir": f"mkdir -p {p}", "rmdir": f"rmdir {p}",
        "mv": f"mv {p} {q}", "copy": f"cat {p} 2>/dev/null > {q}",
        "symlink": f"ln -s {q} {p}", "link": f"ln {p} {q}",
        "chmod": f"chmod {draw(modes)} {p}", "chown": f"chown {draw(owners)} {p}",
        "touch": f"touch {p}", "truncate": f"truncate -s {draw(st.sampled_from((0, 7, 5000)))} {p}",
    }[kind]  # fmt: skip


@st.composite
def scripts(draw: st.DrawFn, max_commands: int = 6) -> str:
    """A ``sh -c`` script of 1..``max_commands`` commands, each followed by ok or fail."""
    n = draw(st.integers(1, max_commands))
    return "; ".join(_quiet(_one(draw)) + " && echo ok || echo fail" for _ in range(n))


def _quiet(command: str) -> str:
    """stderr to /dev/null before any other redirection, so that a failing ``>`` is silent too."""
    return command if "2>/dev/null" in command else f"{command} 2>/dev/null"


#: The fixture images that can run a shell (busybox), by archive and tag.
RUNNABLE = (
    ("dive/test-docker-image.tar", "dive-test:latest"),
    ("dive/test-kaniko-image.tar", "dive-test:kaniko-latest"),
)
