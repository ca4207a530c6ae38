"""``overlaysim mount`` against fuse-overlayfs and the kernel's overlay (issue 13).

The same lower dir, on a real tmpfs, is mounted three ways in the same run: ``mount -t
overlay``, fuse-overlayfs (the Debian binary) and ``overlaysim mount`` (the daemon), each
with its own upper and work dirs. Rows, each a median, against fuse-overlayfs (the target)
and against the kernel:

- warm stat: ``stat`` of a file 5 directories deep, over and over (names and attributes
  cached by the kernel where the file system allows it);
- 1 MiB sequential read (open, 128 KiB reads, close), warm (pages cached by earlier reads)
  and cold (the mount's pages of the file dropped first with ``POSIX_FADV_DONTNEED``, so a
  FUSE daemon serves every byte; the kernel overlay's tmpfs pages cannot be dropped);
- copy-up of a 64 MiB lower file, a different file each time, two ways: ``chmod`` (the
  kernel without metacopy and fuse-overlayfs copy the data; the simulation shares it
  copy-on-write) and ``open(O_WRONLY|O_APPEND)`` + write 1 byte + close (the simulation's
  first write copies only from the byte it changes: the 64 MiB before stay shared);
- ``git status`` on a 10,000-file work tree committed in the lower (after one untimed run,
  which rewrites the index: st_dev and st_ino differ from the commit's);
- mount to first stat: from starting the mount command to the first ``stat`` answered on
  the mount, lower of 100,000 entries (lowers are read lazily: the mount lists the top dir
  only); one more row gives, against that, the eager import of the same lower (in-process,
  once), what the mount paid before the lazy import.

Rows whose mount cannot be made say why (not root, no fuse-overlayfs or git).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.common import Row, can_mount, median_once, median_per_op, real_tmpfs, row

GROUP = "fuse mount"
DEEP = "d1/d2/d3/d4/d5/file"
BIG = 64 << 20
COPY_UPS = 3
GIT_FILES = 10_000
OVERLAYSIM = str(Path(sys.executable).parent / "overlaysim")
FIRST_STAT = "mount to first stat, 100,000-entry lower"
EAGER = "eager import of that lower (once)"
BIG_DIRS, BIG_FILES = 1_000, 99  # 1,000 dirs of 99 files: 100,000 entries
SIDES = ("overlaysim", "fuse-overlayfs", "kernel")
#: target per row name (ratio to fuse-overlayfs)
COPY_UP = {"chmod": "copy-up 64 MiB (chmod)", "append": "copy-up 64 MiB (O_APPEND + 1 byte)"}
TARGETS = {"warm stat 5-deep": "<= 2", "1 MiB read, warm": "<= 2", "1 MiB read, cold": "<= 2",
           COPY_UP["chmod"]: "< 1", COPY_UP["append"]: "< 1",
           "git status, 10,000 files": "", FIRST_STAT: ""}  # fmt: skip


def _build_lower(low: Path) -> None:
    (low / DEEP).parent.mkdir(parents=True)
    (low / DEEP).write_text("deep\n")
    (low / "mib").write_bytes(os.urandom(1 << 20))
    chunk = os.urandom(1 << 20)
    for name in [f"{how}{i}" for how in ("append", "chmod") for i in range(COPY_UPS)]:
        with open(low / name, "wb") as f:
            for _ in range(BIG >> 20):
                f.write(chunk)
    if shutil.which("git") is None:
        return
    repo = low / "repo"
    for i in range(GIT_FILES):
        d = repo / f"dir{i // 100:03d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}  # fmt: skip
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", "-c", "gc.auto=0", *cmd], cwd=repo, env=env, check=True)


def _build_big(low: Path) -> None:
    for d in range(BIG_DIRS):
        sub = low / f"d{d:04d}"
        sub.mkdir(parents=True)
        for f in range(BIG_FILES):
            os.close(os.open(sub / f"f{f:02d}", os.O_WRONLY | os.O_CREAT, 0o644))


def _first_stat(side: str, low: str, base: Path, runtime: str) -> float:
    """Median seconds from the mount command's start to the first stat answered."""
    probe = f"d{BIG_DIRS // 2:04d}/f{BIG_FILES // 2:02d}"
    times = []
    for i in range(3):
        t0 = time.perf_counter()
        with _mounted(side, low, base / f"first{i}", runtime) as mnt:
            os.stat(os.path.join(mnt, probe))
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _eager_import(low: str) -> float:
    from overlaysim.vfs.hostfs import HostFS

    t0 = time.perf_counter()
    HostFS().import_tree(low, "/l")
    return time.perf_counter() - t0


@contextlib.contextmanager
def _mounted(side: str, low: str, base: Path, runtime: str) -> Iterator[str]:
    upper, work, mnt = base / side / "u", base / side / "w", base / side / "m"
    for d in (upper, work, mnt):
        d.mkdir(parents=True)
    opts = f"lowerdir={low},upperdir={upper},workdir={work}"
    env = {**os.environ, "OVERLAYSIM_RUNTIME_DIR": runtime}
    if side == "kernel":
        up, down = ["mount", "-t", "overlay", "overlay", "-o", opts, str(mnt)], ["umount", str(mnt)]
    elif side == "fuse-overlayfs":
        up, down = ["fuse-overlayfs", "-o", opts, str(mnt)], ["fusermount3", "-u", str(mnt)]
    else:
        up = [OVERLAYSIM, "mount", "--lowerdir", low, "--upperdir", str(upper), "--workdir",
              str(work), str(mnt)]  # fmt: skip
        down = [OVERLAYSIM, "umount", str(mnt)]
    subprocess.run(up, check=True, env=env, capture_output=True)
    try:
        yield str(mnt)
    finally:
        try:
            subprocess.run(down, check=False, env=env, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:  # a copy of the mount in another namespace holds it
            subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def _read_all(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, 128 << 10):
            pass
    finally:
        os.close(fd)


def _drop_pages(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _append_one(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)


def _copy_ups(mnt: str, how: str, act: Callable[[str], None]) -> float:
    """Median of ``act`` on each of the lower's ``{how}N`` files, once each."""
    files = iter(os.path.join(mnt, f"{how}{i}") for i in range(COPY_UPS))
    target: list[str] = []
    return median_once(lambda: act(target[-1]), lambda: target.append(next(files)),
                       repeat=COPY_UPS)  # fmt: skip


def _measure(mnt: str) -> dict[str, float]:
    out: dict[str, float] = {}
    deep = os.path.join(mnt, DEEP)
    os.stat(deep)
    out["warm stat 5-deep"] = median_per_op(lambda: os.stat(deep), number=2000, repeat=9)
    mib = os.path.join(mnt, "mib")
    for _ in range(3):
        _read_all(mib)  # the simulation's keep_cache needs a read that stamped no atime
    out["1 MiB read, warm"] = median_per_op(lambda: _read_all(mib), number=20, repeat=9)
    out["1 MiB read, cold"] = median_once(lambda: _read_all(mib), lambda: _drop_pages(mib),
                                          repeat=9)  # fmt: skip
    out[COPY_UP["chmod"]] = _copy_ups(mnt, "chmod", lambda p: os.chmod(p, 0o600))
    out[COPY_UP["append"]] = _copy_ups(mnt, "append", _append_one)
    repo = os.path.join(mnt, "repo")
    if os.path.isdir(repo):

        def status() -> None:
            subprocess.run(["git", "status", "--porcelain"], cwd=repo, check=True,
                           capture_output=True)  # fmt: skip

        status()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            status()
            times.append(time.perf_counter() - t0)
        out["git status, 10,000 files"] = statistics.median(times)
    return out


def _why_not() -> dict[str, str]:
    why = {}
    if shutil.which("fuse-overlayfs") is None:
        why["fuse-overlayfs"] = "fuse-overlayfs missing (apt-get install fuse-overlayfs)"
    if not os.path.exists(OVERLAYSIM):
        why["overlaysim"] = "overlaysim is not installed in this venv"
    return why


def run() -> list[Row]:
    if not can_mount():
        return [row(GROUP, "all rows skipped: needs root (mount(2), FUSE)", float("nan"),
                    "-", float("nan"))]  # fmt: skip
    why = _why_not()
    if "overlaysim" in why:
        return [
            row(GROUP, f"all rows skipped: {why['overlaysim']}", float("nan"), "-", float("nan"))
        ]
    got: dict[str, dict[str, float]] = {}
    eager = float("nan")
    with real_tmpfs() as d, tempfile.TemporaryDirectory() as runtime:
        base = Path(d)
        low = base / "lower"
        _build_lower(low)
        for side in SIDES:
            if side in why:
                continue
            with _mounted(side, str(low), base, runtime) as mnt:
                got[side] = _measure(mnt)
        big = base / "big"
        _build_big(big)
        for side in SIDES:
            if side not in why and side != "kernel":
                got[side][FIRST_STAT] = _first_stat(side, str(big), base, runtime)
        eager = _eager_import(str(big))
    rows = []
    ours = got["overlaysim"]
    for name, value in ours.items():
        for side in ("fuse-overlayfs", "kernel"):
            if side in got and name in got[side]:
                rows.append(row(GROUP, name, value, side, got[side][name],
                                TARGETS[name] if side == "fuse-overlayfs" else ""))  # fmt: skip
            elif side in why:
                rows.append(row(GROUP, name, value, f"{side} ({why[side]})", float("nan")))
    rows.append(row(GROUP, FIRST_STAT, ours[FIRST_STAT], EAGER, eager))
    if "git status, 10,000 files" not in ours:
        rows.append(row(GROUP, "git status: skipped, git missing (apt-get install git)",
                        float("nan"), "-", float("nan")))  # fmt: skip
    return rows


def main() -> None:
    from benchmarks.run import fmt

    print(fmt(run()))


if __name__ == "__main__":
    main()
