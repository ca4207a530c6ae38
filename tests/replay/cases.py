"""Recorded real workloads for the replay: their lower layers, inputs and commands.

Each :class:`Case` is rebuilt from this code alone, deterministically: the lower layers (in
the kernel's on-disk form: char 0/0 whiteouts, ``trusted.overlay.opaque`` dirs, hard links,
owners and modes, every mtime fixed), the files the workload reads from outside the overlay
(a tar archive, a wheel, a script) and the command line. ``record_cases.py`` runs each one
on a real overlay under ``strace`` and stores the log and the kernel's upper dir manifest in
``cases/<name>/``; the replay tests rebuild the same lowers with :func:`build_lowers` (or
``overlaysim.testing.layers.build_stack(case.stack(), ...)``) and replay the stored log.

Everything lives under ``REC_ROOT/<name>/`` while recording: ``l0..lN`` (lowers, top first),
``u`` (upper), ``w`` (work), ``merged`` (the mount point the trace shows), ``input`` and
``home`` (outside the overlay).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import sys
import tarfile
import zipfile
from base64 import urlsafe_b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from overlaysim.testing.layers import (
    Dir,
    File,
    HardLink,
    LayerStack,
    Node,
    StackPaths,
    Symlink,
    Whiteout,
    build_stack,
)

REC_ROOT = "/tmp/overlaysim-replay-rec"
CASES_DIR = Path(__file__).resolve().parent / "cases"
#: 2024-01-01T00:00:00Z: every mtime in the lowers and inputs, and SOURCE_DATE_EPOCH.
EPOCH = 1_704_067_200
EPOCH_NS = EPOCH * 10**9
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PYTHON = sys.executable


@dataclass(frozen=True)
class Paths:
    """Where one case lives while it is recorded."""

    base: str
    nlowers: int

    @property
    def lowers(self) -> list[str]:
        return [f"{self.base}/l{i}" for i in range(self.nlowers)]

    @property
    def upper(self) -> str:
        return f"{self.base}/u"

    @property
    def work(self) -> str:
        return f"{self.base}/w"

    @property
    def merged(self) -> str:
        return f"{self.base}/merged"

    @property
    def input(self) -> str:
        return f"{self.base}/input"

    @property
    def home(self) -> str:
        return f"{self.base}/home"


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    #: Lower layers, top first (as ``lowerdir=``), each a flat {relative path: node} map.
    lowers: tuple[Mapping[str, Node], ...]
    #: The traced command, given where things are.
    argv: Callable[[Paths], list[str]]
    #: strace flags besides ``-o``/``-p`` (which the recorder adds).
    strace: tuple[str, ...]
    options: str = ""  # extra mount options
    cwd: str = ""  # relative to the merged dir
    inputs: Callable[[Paths], None] | None = None  # writes files outside the overlay
    #: Extra environment; ``{merged}``, ``{input}`` and ``{home}`` are filled in.
    env: Mapping[str, str] = field(default_factory=dict)
    #: The program chroots into the merged dir and stops; strace attaches (-p) after that,
    #: so the trace shows only paths inside the overlay, which is mounted at "/".
    attach: bool = False
    #: Upper paths whose data reached the overlay outside the trace (strace shows
    #: copy_file_range/sendfile calls, not the bytes, and the source is outside the overlay).
    content_unknown: tuple[str, ...] = ()
    #: Upper paths whose data was copied in-kernel (copy_file_range) from a file inside the
    #: overlay: not in the trace, but derivable by a replay that copies what it has.
    content_copied: tuple[str, ...] = ()
    #: Upper paths whose content differs between two recordings (e.g. git's index holds
    #: inode numbers and ctimes): compare everything but their sha256 across recordings.
    volatile: tuple[str, ...] = ()
    notes: str = ""

    def stack(self) -> LayerStack:
        """The lowers (and an empty upper) as a :class:`LayerStack` for ``build_stack``."""
        return LayerStack(tuple(layer(x) for x in self.lowers), Dir(mtime_ns=EPOCH_NS))

    @property
    def mount_point(self) -> str:
        """Where the traced programs saw the overlay's root."""
        return "/" if self.attach else self.paths().merged

    @property
    def trace_cwd(self) -> str:
        """The traced programs' starting directory, as they saw it."""
        if self.attach:
            return "/"
        return posixpath.join(self.paths().merged, self.cwd) if self.cwd else self.paths().merged

    def paths(self, rec_root: str = REC_ROOT) -> Paths:
        return Paths(f"{rec_root}/{self.name}", len(self.lowers))

    def environ(self, p: Paths) -> dict[str, str]:
        """The whole environment of the traced programs (nothing inherited)."""
        env = base_env(p)
        env.update({k: v.format(merged=p.merged, input=p.input, home=p.home)
                    for k, v in self.env.items()})  # fmt: skip
        return env


def layer(entries: Mapping[str, Node]) -> Dir:
    """A layer from a flat map; missing parents are 0755 root dirs; every mtime is EPOCH."""
    tree: dict[str, Any] = {}
    own: dict[str, Node] = {}
    for path in sorted(entries):
        node = entries[path]
        parts = path.strip("/").split("/")
        cur = tree
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        if isinstance(node, Dir):
            cur.setdefault(parts[-1], {})
            own["/".join(parts)] = node
        else:
            cur[parts[-1]] = node

    def convert(sub: dict[str, Any], prefix: str) -> Dir:
        children: dict[str, Node] = {}
        for name, value in sub.items():
            rel = f"{prefix}/{name}" if prefix else name
            children[name] = convert(value, rel) if isinstance(value, dict) else _timed(value)
        base = own.get(prefix, Dir())
        assert isinstance(base, Dir)
        return replace(base, entries=children, mtime_ns=EPOCH_NS)

    return convert(tree, "")


def _timed(node: Node) -> Node:
    if isinstance(node, File | Symlink) and node.mtime_ns is None:
        return replace(node, mtime_ns=EPOCH_NS)
    return node


def build_lowers(case: Case, base: str, o: Any = os) -> StackPaths:
    """Build ``case``'s lowers (``base/l0..``), an empty upper ``base/u`` and ``base/w``."""
    return build_stack(case.stack(), o, base, options=case.options)


def text(s: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> File:
    return File(s.encode(), mode, uid, gid)


def base_env(p: Paths) -> dict[str, str]:
    return {
        "PATH": PATH,
        "HOME": p.home,
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(EPOCH),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": p.input,
    }


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    os.utime(path, (EPOCH, EPOCH))


# --- tar ---------------------------------------------------------------------------------
def _tar_bytes(members: list[tuple[str, str, Any]]) -> bytes:
    """A GNU tar archive: (name, kind, spec) with kind file/dir/symlink/hard."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, spec in members:
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            info.uname = info.gname = ""
            mode, uid, gid = spec.get("mode", 0o644), spec.get("uid", 0), spec.get("gid", 0)
            info.mode, info.uid, info.gid = mode, uid, gid
            data = None
            if kind == "file":
                data = spec["data"].encode()
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, spec["target"]
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, spec["target"]
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _tar_inputs(p: Paths) -> None:
    first = _tar_bytes([
        ("proj/", "dir", {"mode": 0o755}),
        ("proj/README", "file", {"data": "new readme\nfrom the archive\n"}),
        ("proj/src/", "dir", {"mode": 0o755}),
        ("proj/src/a.c", "file", {"data": "int a = 1;\n"}),
        ("proj/src/new.c", "file", {"data": "int fresh(void) { return 2; }\n"}),
        ("proj/newdir/", "dir", {"mode": 0o750, "uid": 1000, "gid": 1000}),
        ("proj/newdir/x.txt", "file", {"data": "x\n", "mode": 0o600, "uid": 1000, "gid": 1000}),
        ("proj/newdir/hard", "hard", {"target": "proj/newdir/x.txt"}),
        ("proj/link", "symlink", {"target": "README"}),
        ("proj/bin/tool", "file", {"data": "#!/bin/sh\necho tool v2\n", "mode": 0o4755}),
        ("proj/docs/", "dir", {"mode": 0o700}),
    ])  # fmt: skip
    second = _tar_bytes([
        ("proj/keep.txt", "file", {"data": "overwritten in place\n", "mode": 0o640}),
        ("proj/src/b.c", "file", {"data": "int b = 2;\n"}),
    ])  # fmt: skip
    _write(f"{p.input}/first.tar", first)
    _write(f"{p.input}/second.tar", second)


TAR = Case(
    name="tar",
    description="tar -xf over lower files (unlink and recreate), then tar --overwrite "
    "(open O_TRUNC in place); new dirs, a hard link, a symlink, setuid, chmod of a lower dir",
    lowers=({
        "proj/README": text("old readme\n"),
        "proj/src/a.c": text("int a;\n"),
        "proj/src/b.c": text("int b;\n"),
        "proj/bin/tool": text("#!/bin/sh\necho tool v1\n", 0o755),
        "proj/docs/guide.txt": text("guide\n"),
        "proj/keep.txt": text("keep me\n" * 20),
    },),
    inputs=_tar_inputs,
    argv=lambda p: ["/bin/sh", "-c",
                    f"tar --numeric-owner -xf {p.input}/first.tar"
                    f" && tar --numeric-owner --overwrite -xf {p.input}/second.tar"],
    strace=("-f", "-y", "-s", "65536"),
)

# --- sed ---------------------------------------------------------------------------------
SED = Case(
    name="sed",
    description="sed -i (temp file, fchown/fchmod, rename over the original) on lower files, "
    "one a symlink; then sed -i.bak (the original renamed to a backup first)",
    lowers=({
        "etc/app.conf": text("name=alpha\nmode=fast\n"),
        "etc/secret.conf": text("token=alpha\n", 0o640, 0, 1000),
        "etc/user.conf": text("user=alpha\n", 0o600, 1000, 1000),
        "etc/link.conf": Symlink("app.conf"),
        "etc/untouched.conf": text("alpha\n"),
    }, {
        "etc/other.conf": text("speed=fast\n", 0o664, 0, 0),
        "etc/app.conf": text("hidden by the upper layer\n"),
    }),
    argv=lambda p: ["/bin/sh", "-c",
                    "sed -i -e s/alpha/omega/ etc/app.conf etc/secret.conf etc/user.conf"
                    " etc/link.conf && sed -i.bak -e s/fast/slow/ etc/app.conf etc/other.conf"],
    strace=("-f", "-tt", "-s", "65536"),
)

# --- git ---------------------------------------------------------------------------------
_GITCONFIG = """[user]
\tname = Replay Tester
\temail = replay@example.invalid
[init]
\tdefaultBranch = main
[gc]
\tauto = 0
[maintenance]
\tauto = false
[core]
\tfsync = none
"""


def _git_inputs(p: Paths) -> None:
    _write(f"{p.home}/.gitconfig", _GITCONFIG.encode())


GIT = Case(
    name="git",
    description="git init, add, commit, append, commit -a, tag in a lower dir",
    lowers=({
        "repo/README.md": text("# demo\n"),
        "repo/src/main.c": text("int main(void) { return 0; }\n"),
        "repo/src/util.h": text("#pragma once\n"),
        "repo/.gitignore": text("build/\n"),
        "repo/build/junk.o": text("junk\n"),
    },),
    cwd="repo",
    inputs=_git_inputs,
    env={
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+0000",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+0000",
        "GIT_AUTHOR_NAME": "Replay Tester",
        "GIT_AUTHOR_EMAIL": "replay@example.invalid",
        "GIT_COMMITTER_NAME": "Replay Tester",
        "GIT_COMMITTER_EMAIL": "replay@example.invalid",
    },
    argv=lambda p: ["/bin/sh", "-c",
                    "git init -q && git add -A && git commit -q -m 'initial import'"
                    " && echo more >> README.md && git commit -q -a -m second && git tag v1"],
    strace=("-ff", "-tt", "-s", "65536", "-e", "trace=%file,%desc,%process"),
    volatile=("repo/.git/index",),
    notes="-ff -o: one log per pid (trace.<pid>); the index holds inode numbers and ctimes, "
    "so its content differs between recordings (not between the trace and its replay)",
)

# --- compileall --------------------------------------------------------------------------
_TAG = sys.implementation.cache_tag or "cpython"

COMPILEALL = Case(
    name="compileall",
    description="python -m compileall -q on a package spread over two lowers (writes "
    "__pycache__/*.pyc via temp file + rename, replacing a stale lower .pyc)",
    lowers=({
        "pkg/extra.py": text("def extra():\n    return 'extra'\n"),
        f"pkg/__pycache__/core.{_TAG}.pyc": File(b"stale, not a real pyc\n"),
        "pkg/sub/deep.py": text("VALUE = 42\n"),
    }, {
        "pkg/__init__.py": text("from .core import f\n"),
        "pkg/core.py": text("def f(x):\n    return x * 2\n"),
        "pkg/sub/__init__.py": text(""),
        "pkg/notes.txt": text("not python\n"),
    }),
    argv=lambda p: [PYTHON, "-m", "compileall", "-q", "pkg"],
    strace=("-f", "-T", "-s", "65536"),
)

# --- make --------------------------------------------------------------------------------
_MAKEFILE = """all: out/gen.txt stamp copies
\t@echo done

out/gen.txt: src.txt
\tmkdir -p out
\tcat src.txt > out/gen.txt
\tsed -e 's/alpha/ALPHA/' src.txt >> out/gen.txt

stamp:
\ttouch -d '2024-06-01 12:00:00' old.txt
\ttouch -m -d '2024-06-01 12:00:00' stamp
\ttouch -a -d @1704067200 src.txt

copies:
\tcp $(OUTSIDE) copied.txt
\tcp -p src.txt copy2.txt
\trm -f junk.txt
\trm -rf build
\tln -sf out/gen.txt latest
\tmv tmp.txt moved.txt
\tchmod 600 secret.txt
\tmkdir -p build && echo rebuilt > build/log.txt

.PHONY: all copies
"""


def _make_inputs(p: Paths) -> None:
    _write(f"{p.input}/outside.txt", b"this text came from outside the overlay\n")


MAKE = Case(
    name="make",
    description="make: mkdir, shell redirections, touch -d/-a/-m (utimensat on lower files), "
    "cat and cp from a lower (copy_file_range) and from outside (EXDEV, then read/write), "
    "rm, rm -rf of a lower dir and recreate, ln -s, mv, chmod",
    lowers=({
        "proj/Makefile": text(_MAKEFILE),
        "proj/src.txt": text("alpha beta\nalpha gamma\n"),
        "proj/old.txt": text("old\n"),
        "proj/junk.txt": text("junk\n"),
        "proj/tmp.txt": text("temporary\n", 0o664),
        "proj/secret.txt": text("secret\n"),
        "proj/build/a.o": text("obj a\n"),
        "proj/build/sub/b.o": text("obj b\n"),
    },),
    cwd="proj",
    inputs=_make_inputs,
    argv=lambda p: ["make", f"OUTSIDE={p.input}/outside.txt"],
    strace=("-f", "-ttt", "-y", "-s", "65536"),
    content_copied=("proj/copy2.txt", "proj/out/gen.txt"),
    notes="cat and cp (coreutils 9) copy with copy_file_range: within the overlay it works "
    "(copy2.txt, the first part of out/gen.txt: content not in the trace); from outside it "
    "fails with EXDEV and cp falls back to read/write (copied.txt: content in the trace)",
)

# --- pip ---------------------------------------------------------------------------------
def _record_line(name: str, data: bytes) -> str:
    digest = urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_bytes(version: str = "1.0") -> bytes:
    """A tiny pure-Python wheel, byte for byte the same every time."""
    dist = f"tinypkg-{version}.dist-info"
    files = {
        "tinypkg/__init__.py": f"__version__ = '{version}'\n\n\ndef hello():\n"
                               "    return 'hello'\n",
        "tinypkg/cli.py": "from tinypkg import hello\n\n\ndef main():\n    print(hello())\n",
        "tinypkg/data/greeting.txt": "hello from the wheel\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n"
                            "Summary: replay test package\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: overlaysim-tests\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\ntinycli = tinypkg.cli:main\n",
        f"{dist}/top_level.txt": "tinypkg\n",
    }  # fmt: skip
    data = {k: v.encode() for k, v in files.items()}
    record = "\n".join([_record_line(k, v) for k, v in data.items()] + [f"{dist}/RECORD,,"])
    data[f"{dist}/RECORD"] = (record + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in data.items():
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def _pip_inputs(p: Paths) -> None:
    _write(f"{p.input}/tinypkg-1.0-py3-none-any.whl", wheel_bytes())


PIP = Case(
    name="pip",
    description="pip install --target --upgrade of a tiny wheel over an older version in a "
    "lower (rmtree of the old package dir, then rename of the new one from TMPDIR, which is "
    "inside the overlay), console script, .pyc compilation",
    lowers=({
        "site/tinypkg/__init__.py": text("__version__ = '0.9'\n"),
        "site/tinypkg/old_module.py": text("OLD = True\n"),
        "site/tinypkg/data/greeting.txt": text("old greeting\n"),
        "site/tinypkg-0.9.dist-info/METADATA": text("Metadata-Version: 2.1\nName: tinypkg\n"
                                                    "Version: 0.9\n"),
        "site/tinypkg-0.9.dist-info/RECORD": text(""),
        "site/other/keep.py": text("KEEP = 1\n"),
        "tmp": Dir(mode=0o1777),
    },),
    inputs=_pip_inputs,
    env={"TMPDIR": "{merged}/tmp", "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
         "PIP_NO_INPUT": "1", "PIP_NO_COLOR": "1"},
    argv=lambda p: [PYTHON, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-build-isolation", "--upgrade", "--target", f"{p.merged}/site",
                    f"{p.input}/tinypkg-1.0-py3-none-any.whl"],
    strace=("-f", "-qq", "-s", "1000000", "-e", "trace=!read,pread64,readv,preadv,preadv2"),
    volatile=(f"site/tinypkg/__pycache__/__init__.{_TAG}.pyc",
              f"site/tinypkg/__pycache__/cli.{_TAG}.pyc"),
    notes="TMPDIR is the overlay's /tmp, so pip's temp target dir is renamed into site/ "
    "rather than copied across filesystems; reads are filtered out of the trace (pip's "
    "startup reads tens of MB of .pyc files); the .pyc files hold the random temp dir's "
    "path, so their content differs between recordings",
)

# --- layers3 -----------------------------------------------------------------------------
_LAYERS3_SCRIPT = """set -e
echo created > a/created
rm a/f1
ls a > /dev/null
rm -rf b
mkdir b
echo again > b/again
echo appended >> data/big.txt
mv a/f3 a/f3.renamed
mkdir d
echo inside > d/file
echo over > a/f2
ln c/new.txt c/hardlink
rmdir e/empty
mkdir -p newdir/sub
echo n > newdir/sub/n
mv newdir newdir2
chmod 0700 data
chown 1000:1000 a/f2
rm c/new.txt
ls -la c > /dev/null
"""


def _layers3_inputs(p: Paths) -> None:
    _write(f"{p.input}/script.sh", _LAYERS3_SCRIPT.encode(), 0o755)


LAYERS3 = Case(
    name="layers3",
    description="three lowers with char 0/0 whiteouts and an opaque dir; create, delete "
    "(whiteout), rm -rf and recreate (opaque), copy-up from the bottom layer, rename, "
    "create over a lower whiteout, link, rmdir",
    lowers=({
        "a/f3": text("f3 top\n"),
        "d": Whiteout(),
        "e/empty": Dir(),
        "b/keep": text("keep from top\n"),
    }, {
        "a/f2": Whiteout(),
        "c": Dir(opaque="y"),
        "c/new.txt": text("new in middle\n"),
        "b/added": text("added in middle\n"),
        "e/other": Whiteout(),
    }, {
        "a/f1": text("f1 bottom\n"),
        "a/f2": text("f2 bottom (whited out)\n"),
        "b/keep": text("keep bottom\n"),
        "b/sub/deep": text("deep\n", 0o600),
        "c/old.txt": text("old, hidden by the opaque dir\n"),
        "data/big.txt": text("line\n" * 500),
        "data/big.link": HardLink("data/big.txt"),
        "d/sub/x": text("hidden by a whiteout\n"),
        "e/other": text("whited out\n"),
    }),
    inputs=_layers3_inputs,
    argv=lambda p: ["/bin/sh", f"{p.input}/script.sh"],
    strace=("-f", "-xx", "-s", "65536"),
    notes="-xx prints every string, paths included, in hex",
)

# --- redirect ----------------------------------------------------------------------------
_REDIRECT_SCRIPT = """set -e
mv top/a other/a_moved
mv other/a_moved other/a_twice
mv top/x top/y
echo new > other/a_twice/b/newfile
echo more >> other/a_twice/b/file
mkdir top/a
echo fresh > top/a/fresh
mv top/y/deep top/deep_moved
echo z2 >> top/deep_moved/z
ls -R . > /dev/null
"""


def _redirect_inputs(p: Paths) -> None:
    _write(f"{p.input}/script.sh", _REDIRECT_SCRIPT.encode(), 0o755)


REDIRECT = Case(
    name="redirect",
    description="redirect_dir=on: mv of lower dirs to another parent (and again), within a "
    "parent, and of a nested lower dir; writes inside the moved dirs; mkdir at a moved-away "
    "name",
    lowers=({
        "top/a/extra": text("extra in the upper lower\n"),
        "other/keep": text("keep\n"),
    }, {
        "top/a/b/file": text("file\n"),
        "top/a/b/g": text("g\n"),
        "top/x/deep/z": text("z\n"),
        "top/x/plain": text("plain\n"),
    }),
    options="redirect_dir=on",
    inputs=_redirect_inputs,
    argv=lambda p: ["/bin/sh", f"{p.input}/script.sh"],
    strace=("-f", "-tt", "-T", "-y", "-s", "65536"),
)

# --- chroot ------------------------------------------------------------------------------
_CHROOT_PROG = """import os, signal, sys
outside = os.open(sys.argv[2], os.O_RDONLY)  # inherited across the chroot, unknown to strace
os.chroot(sys.argv[1])
os.chdir("/")
os.kill(os.getpid(), signal.SIGSTOP)
# strace -p attaches here: everything below is seen with paths inside the overlay
fd = os.open("/data/from_outside.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.sendfile(fd, outside, 0, 1 << 20)
os.close(fd)
os.close(outside)
with open("/etc/app.conf", "ab") as f:
    f.write(b"added=1\\n")
os.makedirs("/var/cache/app", exist_ok=True)
with open("/var/cache/app/state", "wb") as f:
    f.write(b"state\\n")
os.rename("/data/a.txt", "/data/b.txt")
os.unlink("/tmp/junk")
os.symlink("/etc/app.conf", "/app.conf")
os.chmod("/bin/tool", 0o700)
pid = os.fork()
if pid == 0:
    os.chdir("/data")
    fd = os.open("child.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"written by the child\\n")
    os.close(fd)
    os._exit(0)
os.waitpid(pid, 0)
os.chdir("/data")
with open("rel.txt", "wb") as f:
    f.write(b"relative to /data\\n")
os.rmdir("/empty")
"""


def _chroot_inputs(p: Paths) -> None:
    _write(f"{p.input}/prog.py", _CHROOT_PROG.encode())
    _write(f"{p.input}/outside.bin", bytes(range(256)) * 16)


CHROOT = Case(
    name="chroot",
    description="a program chroots into the merged dir (mount point '/'), then does file "
    "ops with absolute and relative paths, one from a forked child, and a sendfile from a "
    "file it opened before the chroot (content unknown to the trace)",
    lowers=({
        "etc/app.conf": text("name=app\n"),
        "data/a.txt": text("a\n"),
        "tmp/junk": text("junk\n"),
        "bin/tool": text("#!/bin/sh\n", 0o755),
        "empty": Dir(),
        "var": Dir(),
    },),
    inputs=_chroot_inputs,
    argv=lambda p: [PYTHON, "-B", "-I", f"{p.input}/prog.py", p.merged,
                    f"{p.input}/outside.bin"],
    strace=("-f", "-qq", "-s", "65536"),
    attach=True,
    content_unknown=("data/from_outside.bin",),
    notes="the program chroots and chdirs to '/' first, then stops itself (SIGSTOP); the "
    "recorder attaches strace -p to it and sends SIGCONT, so the log starts inside the "
    "chroot and holds no host paths: replay with --mount-point / (the default)",
)

# --- metacopy ----------------------------------------------------------------------------
_METACOPY_SCRIPT = """set -e
chmod -R g+w data
chown -R 1000:1000 data/sub
echo w >> data/one.txt
chmod 4755 data/bin/prog
cat data/three.txt > /dev/null
truncate -s 2 data/four.txt
"""


def _metacopy_inputs(p: Paths) -> None:
    _write(f"{p.input}/script.sh", _METACOPY_SCRIPT.encode(), 0o755)


METACOPY = Case(
    name="metacopy",
    description="metacopy=on: chmod -R and chown -R copy up metadata only; one append and "
    "one truncate copy up data",
    lowers=({
        "data/one.txt": text("one\n" * 100),
        "data/two.txt": text("two\n" * 100),
        "data/three.txt": text("three\n"),
        "data/four.txt": text("four four\n"),
        "data/sub/x.txt": text("x\n" * 50),
        "data/sub/y.txt": text("y\n"),
        "data/bin/prog": text("#!/bin/sh\n", 0o755),
    },),
    options="metacopy=on,redirect_dir=on",
    inputs=_metacopy_inputs,
    argv=lambda p: ["/bin/sh", f"{p.input}/script.sh"],
    strace=("-f", "-ttt", "-T", "-s", "65536"),
    notes="metacopy=on needs redirect_dir=on (the kernel refuses metacopy=on with "
    "redirect_dir=off, and implies redirect_dir=on when it is not given); the simulator "
    "refuses metacopy=on today",
)

CASES: dict[str, Case] = {c.name: c for c in (
    TAR, SED, GIT, COMPILEALL, MAKE, PIP, LAYERS3, REDIRECT, CHROOT, METACOPY)}  # fmt: skip
