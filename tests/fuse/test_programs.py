"""Real programs on the FUSE mount of the simulation leave the upper dir a kernel overlay
leaves for the same program on the same lowers (types, modes, owners, sizes, content,
xattrs, whiteouts; see fharness for what FUSE cannot express)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuse import fharness as fh

WHY = fh.skip_reason()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(WHY is not None, reason=WHY or "")]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "A U Thor", "GIT_AUTHOR_EMAIL": "a@example.org",
    "GIT_COMMITTER_NAME": "A U Thor", "GIT_COMMITTER_EMAIL": "a@example.org",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "LC_ALL": "C",
}  # fmt: skip


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _project(base: Path) -> list[str]:
    """Two lowers: a small source tree (upper) over a base with docs and config."""
    top, bottom = base / "l1", base / "l2"
    _write(top / "proj/src/main.py", "def main():\n    return 'hello'\n")
    _write(top / "proj/src/util.py", "X = 1\n")
    _write(top / "proj/README", "a project\n")
    _write(top / "proj/run.sh", "#!/bin/sh\necho run\n", 0o755)
    os.symlink("src/main.py", top / "proj/entry")
    _write(bottom / "proj/src/old.py", "OLD = True\n")
    _write(bottom / "etc/app.conf", "mode = foo\nlevel = foo\n", 0o640)
    os.chown(bottom / "etc/app.conf", 0, 4)
    _write(bottom / "usr/share/doc/app/README", "docs\n")
    _write(bottom / "usr/share/doc/app/changelog", "v1\n")
    _write(bottom / "usr/share/doc/other/x", "x\n")
    os.setxattr(bottom / "usr/share/doc/app/README", "user.tag", b"doc")
    return ["l1", "l2"]


def _git(mnt: Path) -> None:
    for cmd in (["git", "init", "-q", "."], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "first"]):  # fmt: skip
        subprocess.run(cmd, cwd=mnt / "proj", env=GIT_ENV, check=True, capture_output=True)


def _tar_then_rm(mnt: Path) -> None:
    archive = mnt.parent / "payload.tar"
    if not archive.exists():
        src = mnt.parent / "payload"
        _write(src / "usr/share/doc/app/README", "new docs\n")  # over a lower file
        _write(src / "usr/share/doc/app/NEWS", "news\n")
        _write(src / "opt/tool/bin/tool", "#!/bin/sh\n", 0o755)
        _write(src / "opt/tool/lib/data", "d" * 5000)
        os.symlink("bin/tool", src / "opt/tool/current")
        os.link(src / "opt/tool/lib/data", src / "opt/tool/lib/data.bak")
        with tarfile.open(archive, "w") as tar:
            for name in ("usr", "opt"):
                tar.add(src / name, arcname=name)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(mnt)], check=True)
    subprocess.run(["rm", "-rf", str(mnt / "usr/share/doc"), str(mnt / "opt/tool/lib"),
                    str(mnt / "proj/src/old.py")], check=True)  # fmt: skip


def _sed(mnt: Path) -> None:
    subprocess.run(["sed", "-i", "s/foo/bar/", str(mnt / "etc/app.conf")], check=True)
    subprocess.run(["sed", "-i", "-e", "$a\\", "-e", "s/hello/bye/", str(mnt / "proj/src/main.py")],
                   check=True)  # fmt: skip


def _compileall(mnt: Path) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(mnt / "proj/src")],
                   check=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1704067200"})  # fmt: skip


WORKLOADS: dict[str, Callable[[Path], None]] = {
    "git init/add/commit": _git,
    "tar -x then rm -rf": _tar_then_rm,
    "sed -i": _sed,
    "python -m compileall": _compileall,
}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_program_leaves_the_kernels_upper(name: str, tmp_path: Path) -> None:
    layers = fh.Layers(tmp_path, _project)
    workload = WORKLOADS[name]
    k_upper, k_work = fh.on_kernel(layers, workload)
    f_upper, f_work = fh.on_fuse(layers, workload, tmp_path / "run")
    kernel, fuse = fh.upper_view(k_upper), fh.upper_view(f_upper)
    assert len(kernel.entries) > 1, "the workload changed nothing"
    assert fh.diff(kernel, fuse) == []
    assert fh.diff(fh.work_view(k_work, k_upper), fh.work_view(f_work, f_upper)) == []
