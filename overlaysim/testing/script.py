"""Turn a (shrunk) failing case into a standalone shell script for a real kernel.

The script needs only bash, coreutils and ``python3`` (for xattrs, which ``setfattr`` would
need the ``attr`` package for, and for the operations, so that errno names print exactly); it builds the layers in a temp dir, mounts the overlay,
runs each operation printing ``op N: <result>``, lists the merged and upper trees, then
unmounts and deletes everything.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from overlaysim.testing import layers as L
from overlaysim.testing.ops import Op


def _q(text: str) -> str:
    return shlex.quote(text)


def _bytes(data: bytes) -> str:
    """A printf format that writes exactly ``data``."""
    return "'" + "".join(f"\\{b:03o}" for b in data) + "'"


def _meta(path: str, node: L.Node, prefix: str) -> list[str]:
    out = []
    if isinstance(node, L.Dir | L.File | L.Device | L.Fifo):
        out.append(f"chmod {node.mode:04o} {path}")
    if isinstance(node, L.Dir | L.File | L.Device | L.Fifo | L.Symlink):
        out.append(f"chown -h {node.uid}:{node.gid} {path}")
    if isinstance(node, L.Dir | L.File):
        out += [f"xset {path} {_q(k)} {_q(v.hex())}" for k, v in node.xattrs.items()]
    if isinstance(node, L.Dir) and node.opaque:
        out.append(f"xset {path} {prefix}opaque {node.opaque.encode().hex()}")
    return out


def layer_commands(spec: L.Dir, root: str, prefix: str = L.TRUSTED_PREFIX) -> list[str]:
    """Shell commands that build ``spec`` at ``root`` (a shell word, e.g. ``"$B/l0"``)."""
    cmds = [f"mkdir -p {root}", *_meta(root, spec, prefix)]
    items = list(L.walk(spec))
    for rel, node in items:
        path = f"{root}/{_q(rel)}"
        if isinstance(node, L.Dir):
            cmds.append(f"mkdir {path}")
        elif isinstance(node, L.File):
            cmds.append(f"printf {_bytes(node.data)} > {path}")
        elif isinstance(node, L.Symlink):
            cmds.append(f"ln -s {_q(node.target)} {path}")
        elif isinstance(node, L.Whiteout):
            if node.form == "chr":
                cmds.append(f"mknod -m 000 {path} c 0 0")
            else:
                cmds += [f": > {path}", f"xset {path} {prefix}whiteout {b'y'.hex()}"]
            continue
        elif isinstance(node, L.Device):
            cmds.append(f"mknod {path} {'c' if node.kind == 'chr' else 'b'} {node.major} {node.minor}")
        elif isinstance(node, L.Fifo):
            cmds.append(f"mkfifo {path}")
        else:
            continue
        cmds += _meta(path, node, prefix)
    cmds += [f"ln {root}/{_q(n.target)} {root}/{_q(rel)}" for rel, n in items if isinstance(n, L.HardLink)]
    for rel, node in reversed([("", spec), *items]):
        mtime = getattr(node, "mtime_ns", None)
        if mtime is not None:
            path = f"{root}/{_q(rel)}" if rel else root
            cmds.append(f"touch -h -d @{mtime // 10**9}.{mtime % 10**9:09d} {path}")
    return cmds


_XSET = """xset() { python3 -c 'import os, sys
os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)' "$@"; }"""
_XDUMP = """python3 -c 'import os
for top, dirs, files in os.walk("."):
    for name in sorted(dirs + files):
        p = os.path.join(top, name)
        for k in sorted(os.listxattr(p, follow_symlinks=False)):
            print(p, k, os.getxattr(p, k, follow_symlinks=False))'"""

_RUNNER = """cat > "$B"/run.py <<'PY'
import errno, os, sys
os.chdir(sys.argv[1])
ns = {"os": os, "r": None, "d": None}
try:
    exec(sys.argv[3], ns)
    out = "ok" + (" " + repr(ns["r"]) if ns["r"] is not None else "")
    print(f"op {sys.argv[2]}: " + out + (f" data={ns['d']!r}" if ns["d"] is not None else ""))
except OSError as e:
    print(f"op {sys.argv[2]}:", errno.errorcode.get(e.errno, e.errno))
PY
run() { python3 "$B"/run.py "$B"/m "$1" "$2"; }"""


def to_script(stack: L.LayerStack, ops: Sequence[Op], options: str = "") -> str:
    """The whole reproduction script (bash)."""
    prefix = L.xattr_prefix_for(options)
    lines = ["#!/usr/bin/env bash", "# overlaysim differential case: run as root on a kernel with overlayfs",
             "set -u", 'B=$(mktemp -d)', _XSET, "trap 'umount \"$B/m\" 2>/dev/null; rm -rf \"$B\"' EXIT"]  # fmt: skip
    if stack.separate_fs:  # each lower layer on a tmpfs of its own
        lines.append("trap 'umount \"$B/m\" 2>/dev/null; umount \"$B\"/l* 2>/dev/null; rm -rf \"$B\"' EXIT")
    for i, layer in enumerate(stack.lowers):
        if stack.separate_fs:
            lines.append(f'mkdir "$B"/l{i} && mount -t tmpfs -o mode=700 tmpfs "$B"/l{i}')
        lines += layer_commands(layer, f'"$B"/l{i}', prefix)
    for i, layer in enumerate(stack.data):
        lines += layer_commands(layer, f'"$B"/d{i}', prefix)
    opts = "lowerdir=" + ":".join(f"$B/l{i}" for i in range(len(stack.lowers)))
    opts += "".join(f"::$B/d{i}" for i in range(len(stack.data)))
    if stack.upper is not None:
        lines += layer_commands(stack.upper, '"$B"/u', prefix)
        lines.append('mkdir "$B"/w')
        opts += ",upperdir=$B/u,workdir=$B/w"
    if options:
        opts += "," + options
    lines += ['mkdir "$B"/m', f'mount -t overlay overlay -o "{opts}" "$B"/m || exit 1', _RUNNER]
    for n, op in enumerate(ops):
        lines.append(f"run {n} {_q(op.snippet())}  # {op!r}")
    lines += ['echo "--- merged"; (cd "$B"/m && ls -laR)']
    if stack.upper is not None:
        lines += ['echo "--- upper"; (cd "$B"/u && ls -laR && ' + _XDUMP + ")"]
    return "\n".join(lines) + "\n"
