"""Small images built by hand as overlay diff dirs in a HostFS, for figures checked by hand."""

from __future__ import annotations

import stat
from typing import Any

from overlaysim import HostFS
from overlaysim.dive.model import Layer, read_layer_dir

# One layer is a list of operations on its diff dir (parents are created as needed):
#   ("file", path, size, mode[, byte])   ("link", existing, new)   ("whiteout", path)
#   ("opaque", path)                      ("dir", path)             ("symlink", path, target)
Op = tuple[Any, ...]


def build(spec: list[list[Op]]) -> tuple[HostFS, list[Layer]]:
    fs = HostFS()
    o = fs.os
    layers = []
    for i, ops in enumerate(spec):
        root = f"/layers/{i:03d}"
        o.makedirs(root, 0o755)
        for op in ops:
            kind, path = op[0], root + op[1]
            if kind != "link":
                o.makedirs(path.rsplit("/", 1)[0], 0o755, exist_ok=True)
            if kind == "file":
                fill = op[4] if len(op) > 4 else b"x"
                with fs.open(path, "wb") as f:
                    f.write(fill * op[2])
                o.chmod(path, op[3])
            elif kind == "link":
                o.makedirs((root + op[2]).rsplit("/", 1)[0], 0o755, exist_ok=True)
                o.link(path, root + op[2])
            elif kind == "whiteout":
                o.mknod(path, stat.S_IFCHR | 0o000, o.makedev(0, 0))
            elif kind == "opaque":
                o.mkdir(path, 0o755)
                o.setxattr(path, "trusted.overlay.opaque", b"y")
            elif kind == "dir":
                o.mkdir(path, 0o755)
            elif kind == "symlink":
                o.symlink(op[2], path)
        layers.append(Layer(i, f"L{i}", f"step {i}", root, read_layer_dir(o, root)))
    return fs, layers


# The image the hand computations in test_waste.py and test_diveformula.py are about.
SAMPLE: list[list[Op]] = [
    [  # layer 0: the base
        ("file", "/a/keep", 1000, 0o644), ("file", "/a/gone", 200, 0o644),
        ("file", "/d/x", 30, 0o644), ("file", "/d/y", 40, 0o644),
        ("file", "/h/f", 5000, 0o644), ("link", "/h/f", "/h/g"),
        ("file", "/o/old", 7, 0o644), ("file", "/c", 300, 0o644, b"c"),
        ("file", "/s", 64, 0o644, b"s"),
    ],
    [  # layer 1: deletes, an opaque dir, an identical re-add and a chmod
        ("whiteout", "/a/gone"), ("whiteout", "/d"), ("whiteout", "/h/f"),
        ("opaque", "/o"), ("file", "/o/new", 9, 0o644),
        ("file", "/c", 300, 0o644, b"c"), ("file", "/s", 64, 0o600, b"s"),
    ],
    [("file", "/a/keep", 10, 0o644, b"k")],  # layer 2: an overwrite
]  # fmt: skip
