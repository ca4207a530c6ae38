"""``Shell(root=...)`` (docker exec's chroot view), ``tree``'s format, and ``overlaysim sh``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from overlaysim import HostFS
from overlaysim.cli import main
from overlaysim.demo_layers import build_app, build_base
from overlaysim.errors import UsageError
from overlaysim.shell.executor import Shell


def _container() -> HostFS:
    fs = HostFS()
    build_base(fs.os, "/l1")
    build_app(fs.os, "/l2")
    for d in ("/c/u", "/c/w", "/c/merged", "/other"):
        fs.os.makedirs(d)
    fs.mount("overlay", "/c/merged", "overlay", "lowerdir=/l2:/l1,upperdir=/c/u,workdir=/c/w")
    fs.mount("tmpfs", "/other", "tmpfs", "")
    return fs


def _exec(fs: HostFS, cmd: str) -> tuple[int, bytes, bytes]:
    sh = Shell(fs.os, mounts=fs.mounts, mount=fs.mount, umount=fs.umount, root="/c/merged")
    return sh.run_capture(cmd)


def test_root_resolves_absolute_paths_inside() -> None:
    fs = _container()
    assert _exec(fs, "pwd; cat /etc/motd")[1] == (
        b"/\nWelcome! This motd comes from the app layer.\n")  # fmt: skip
    assert _exec(fs, "touch /tmp/foo && ls /tmp")[1] == b"foo\n"
    # the change went through the overlay into the container's upper dir
    assert fs.os.listdir("/c/u/tmp") == ["foo"]
    # ".." and absolute symlinks cannot leave the root
    assert _exec(fs, "ls /../../ | grep -c '^l1$'")[1] == b"0\n"
    assert _exec(fs, "ln -s /etc/motd /m && cat /m | head -c 7")[1] == b"Welcome"


def test_root_mount_lists_only_visible_mounts() -> None:
    fs = _container()
    assert _exec(fs, "mount")[1].decode() == (
        "overlay on / type overlay (rw,relatime,lowerdir=/l2:/l1,upperdir=/c/u,workdir=/c/w,"
        "uuid=on)\n")  # fmt: skip
    assert _exec(fs, "mkdir /mnt2 && mount -t tmpfs tmpfs /mnt2 && mount -t tmpfs")[1] == (
        b"tmpfs on /mnt2 type tmpfs (rw,relatime)\n")  # fmt: skip
    assert any(m.target == "/c/merged/mnt2" for m in fs.mounts())
    assert _exec(fs, "umount /mnt2; echo $?")[1] == b"0\n"


def test_root_needs_a_hostfs() -> None:
    import os

    with pytest.raises(UsageError):
        Shell(os, root="/tmp")


TREE = """\
/t
|-- a
|-- d
|   |-- l -> ../a
|   `-- sub
`-- e

3 directories, 3 files
"""


def test_tree_format() -> None:
    """tree 2.1's ASCII lines in the C locale, links shown with their target, and the summary
    counting the top directory (checked against tree 2.1.0)."""
    fs = HostFS()
    sh = Shell(fs.os)  # no locale variables: the C locale
    setup = "mkdir -p /t/d/sub && touch /t/a /t/e /t/.h && ln -s ../a /t/d/l"
    assert sh.run_capture(setup)[0] == 0
    assert sh.run_capture("tree /t") == (0, TREE.encode(), b"")
    utf8 = sh.run_capture("LANG=C.UTF-8 tree -d /t")[1].decode()
    assert utf8 == "/t\n└── d\n    └── sub\n\n3 directories\n"
    assert sh.run_capture("tree -L 1 -a /t")[1].decode().splitlines()[-1] == (
        "2 directories, 3 files")  # fmt: skip


def test_cli_sh_command_and_stdin(tmp_path: Path) -> None:
    world = str(tmp_path / "w.world")
    runner = CliRunner()
    r = runner.invoke(main, ["sh", "--world", world, "-c",
                             "mkdir -p /l/etc && echo hi > /l/etc/motd && ls -l /l/etc"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("total 4\n-rw-r--r-- 1 root root 3 ")
    # saved: the next command sees it; exit status is the last command's
    r = runner.invoke(main, ["sh", "--world", world, "-c", "cat /l/etc/motd; exit 3"])
    assert (r.exit_code, r.output) == (3, "hi\n")
    r = runner.invoke(main, ["sh", "--world", world], input="cd /l\nls\nfalse\n")
    assert (r.exit_code, r.output) == (1, "etc\n")


def test_cli_sh_saves_even_after_a_failing_command(tmp_path: Path) -> None:
    world = str(tmp_path / "w.world")
    runner = CliRunner()
    r = runner.invoke(main, ["sh", "--world", world, "-c", "touch /kept; ls /nope"])
    assert r.exit_code == 2
    r = runner.invoke(main, ["sh", "--world", world, "-c", "ls /kept"])
    assert (r.exit_code, r.output) == (0, "/kept\n")
