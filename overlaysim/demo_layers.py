"""The embedded default layers: a small ubuntu-like base and an app layer adding ``hello.sh``.

Built through the os-like API, so the same function can lay them out in HostFS or, for a
comparison with the kernel, in a real directory.
"""

from __future__ import annotations

import os
import stat
from typing import Any

BASE_DIRS = ("boot", "dev", "etc", "home", "media", "mnt", "opt", "proc", "root", "run", "srv",
             "sys", "tmp", "usr", "usr/bin", "usr/lib", "usr/sbin", "usr/share", "var",
             "var/cache", "var/lib", "var/log", "etc/apt", "etc/skel")  # fmt: skip
BASE_LINKS = {"bin": "usr/bin", "lib": "usr/lib", "sbin": "usr/sbin", "lib64": "usr/lib64"}
BASE_FILES = {
    "etc/os-release": 'PRETTY_NAME="Ubuntu 24.04 LTS (overlaysim demo)"\nNAME="Ubuntu"\n'
                      'VERSION_ID="24.04"\nID=ubuntu\n',
    "etc/hostname": "overlaysim\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:"
                  "/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/motd": "Welcome to the overlaysim demo image.\n",
    "etc/apt/sources.list": "deb http://archive.ubuntu.com/ubuntu noble main\n",
    "etc/skel/.bashrc": "# ~/.bashrc\n",
    "usr/bin/sh": "#!simulated dash\n",
    "usr/bin/bash": "#!simulated bash\n",
    "usr/bin/ls": "#!simulated ls\n",
    "usr/bin/cat": "#!simulated cat\n",
    "var/log/dpkg.log": "2026-11-01 install base-files\n",
}  # fmt: skip
APP_FILES = {
    "hello.sh": "#!/bin/sh\necho 'Hello from the top layer'\n",
    "etc/motd": "Welcome! This motd comes from the app layer.\n",
}
EXECUTABLE = {"usr/bin/sh", "usr/bin/bash", "usr/bin/ls", "usr/bin/cat", "hello.sh"}
MTIME_NS = 1_767_225_600 * 10**9  # 2026-01-01, so listings are stable


def _write(o: Any, path: str, text: str, mode: int) -> None:
    fd = o.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        o.write(fd, text.encode())
    finally:
        o.close(fd)
    o.chmod(path, mode)
    o.utime(path, ns=(MTIME_NS, MTIME_NS))


def build_base(o: Any, root: str) -> None:
    o.makedirs(root, exist_ok=True)
    for d in BASE_DIRS:
        o.makedirs(f"{root}/{d}", exist_ok=True)
    o.chmod(f"{root}/tmp", 0o1777)
    o.chmod(f"{root}/root", 0o700)
    for name, target in BASE_LINKS.items():
        o.symlink(target, f"{root}/{name}")
    for rel, text in BASE_FILES.items():
        _write(o, f"{root}/{rel}", text, 0o755 if rel in EXECUTABLE else 0o644)
    o.mknod(f"{root}/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))


def build_app(o: Any, root: str) -> None:
    o.makedirs(f"{root}/etc", exist_ok=True)
    for rel, text in APP_FILES.items():
        _write(o, f"{root}/{rel}", text, 0o755 if rel in EXECUTABLE else 0o644)
