"""Scenarios: the os.path look-alike answering from the filesystem under test."""

from __future__ import annotations

import os
from typing import Any

from .harness import scenario
from .recorder import Recorder


@scenario(mounts=("mnt",))
def sc_os_path_queries(o: Any, base: str, obs: Recorder) -> None:
    op = o.path
    o.makedirs(base + "/a/b")
    fd = o.open(base + "/a/f", os.O_WRONLY | os.O_CREAT, 0o644)
    o.write(fd, b"12345")
    o.close(fd)
    o.symlink("a/b", base + "/lb")
    o.symlink("lb/../f", base + "/lf")
    o.symlink("loop", base + "/loop")
    for name in ("a", "a/f", "lb", "lf", "loop", "missing", "mnt"):
        p = f"{base}/{name}"
        obs.call(f"kinds {name}", lambda p=p: [op.exists(p), op.lexists(p), op.isdir(p),
                                                op.isfile(p), op.islink(p), op.ismount(p)])
    obs.call("realpath_link_dotdot", op.realpath, base + "/lf")
    obs.call("realpath_chain", op.realpath, base + "/lb/../../lb")
    obs.call("realpath_missing_tail", op.realpath, base + "/lb/x/y")
    obs.call("realpath_loop", op.realpath, base + "/loop")
    obs.call("samefile", op.samefile, base + "/a/b", base + "/lb")
    obs.call("samefile_different", op.samefile, base + "/a", base + "/lb")
    obs.call("getsize_via_link", op.getsize, base + "/lf")
    obs.call("getsize_missing", op.getsize, base + "/missing")
    obs.call("isdir_trailing", op.isdir, base + "/lb/")
    obs.call("mtime_relation", lambda: op.getmtime(base + "/a/f") == o.stat(base + "/a/f").st_mtime)
    obs.call("ismount_base", op.ismount, base)
    obs.call("ismount_root", op.ismount, "/")
    o.chdir(base + "/a")
    obs.call("abspath_relative", op.abspath, "b/../f")
    obs.call("realpath_relative", op.realpath, "../lf")
    o.chdir("/")
    obs.call("pure_join", op.join, "x", "y", "/z", "w")
    obs.call("pure_split", lambda: [op.dirname("/a/b/"), op.basename("/a/b"), op.normpath("a//b/../c")])
