"""One scenario, two machines: run each docker command on both and record every difference.

:class:`Pair` is the whole protocol. ``pair.run(*argv)`` runs a command on the real daemon and
on the simulator and compares exit codes, stderr and stdout after replacing ids by roles
(:mod:`~overlaysim.testing.dockerd.ids`); ``how`` says how stdout is compared (exact text, a
set of lines for ``docker diff``, chosen JSON fields for ``inspect``, tar members for
``save``/``export``). ``pair.check_tree()`` compares the overlay2 directories and the overlay
mounts. Differences accumulate in ``pair.differences``; a test asserts the list is empty, a
campaign keeps them as findings.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overlaysim.testing.dockerd.ids import IdMap, read_ids
from overlaysim.testing.dockerd.observe import mounts_of, overlay2_tree, tar_members
from overlaysim.testing.dockerd.sides import Result, Side

# Relative times below a minute or two depend on when each side ran the command.
_RECENT = re.compile(
    r"(Less than a second|About a minute|\d+ seconds?|About an hour|\d+ minutes?)( ago)?"
)
_IDS_SHORT = re.compile(r"\b[0-9a-f]{12}\b")
_TEMP_DIR = re.compile(r"docker-import-\d+")  # dockerd's random temp dir in load errors

#: ``inspect`` fields compared (dotted paths); the rest are times, ids or host details.
CONTAINER_FIELDS = (
    "Path", "Args", "State.Status", "State.Running", "State.ExitCode", "State.Error", "Image",
    "Name", "RestartCount", "Driver", "Platform", "GraphDriver", "Mounts", "Config",
    "HostConfig.NetworkMode",
)  # fmt: skip
IMAGE_FIELDS = (
    "Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Container", "DockerVersion", "Author",
    "Config", "Architecture", "Variant", "Os", "Size", "VirtualSize", "GraphDriver", "RootFS",
)  # fmt: skip


@dataclass(frozen=True)
class Difference:
    step: str
    aspect: str
    real: str
    sim: str

    def __str__(self) -> str:
        return f"[{self.step}] {self.aspect}:\n    dockerd:   {self.real}\n    simulator: {self.sim}"


def _pick(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return "<absent>"
        doc = doc[part]
    return doc


def inspect_fields(text: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """``docker inspect`` output reduced to ``fields`` (one dict per object)."""
    try:
        docs = json.loads(text)
    except ValueError:
        return [{"<not JSON>": text}]
    return [{f: _pick(d, f) for f in fields} for d in docs]


@dataclass
class Pair:
    """The same scenario on ``real`` and ``sim``; ``differences`` is what did not match."""

    real: Side
    sim: Side
    differences: list[Difference] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def ids(self) -> tuple[IdMap, IdMap]:
        out = []
        for side in (self.real, self.sim):
            v = side.view()
            out.append(read_ids(v.o, v.root, v.shown))
        return out[0], out[1]

    def _note(self, step: str, aspect: str, real: Any, sim: Any) -> None:
        if real != sim:
            self.differences.append(Difference(step, aspect, str(real), str(sim)))

    def run(self, *argv: str, how: str = "text", stdin: bytes | None = None,
            fields: tuple[str, ...] = ()) -> tuple[Result, Result]:
        """Run ``docker argv`` on both sides and compare; ``how`` is one of ``text``,
        ``lines`` (a set), ``json`` (``fields`` of inspect), ``tar``, ``save`` (tar members as a
        set, and whether each side sorted them by name), ``code`` (status only),
        ``ignore`` (run only: output that cannot match, such as a new random id)."""
        step = "docker " + " ".join(argv)
        self.steps.append(step)
        r = self.real.docker(*argv, stdin=stdin)
        s = self.sim.docker(*argv, stdin=stdin)
        rid, sid = self.ids()
        self._note(step, "exit code", r.code, s.code)
        if how in ("ignore", "code"):
            return r, s
        self._note(step, "stderr", _text(rid, r.error), _text(sid, s.error))
        compare: dict[str, Callable[[IdMap, Result], Any]] = {
            "text": lambda ids, x: _text(ids, x.text),
            "lines": lambda ids, x: sorted(_text(ids, x.text).splitlines()),
            "json": lambda ids, x: ids.value(inspect_fields(x.text, fields)),
            "tar": lambda ids, x: tar_members(x.out, ids) if x.code == 0 else [],
            # save: names hold digests of configs with times in them, so the order differs
            # where the names do; the rule (sorted by name) is compared, then the members
            "save": lambda ids, x: sorted(tar_members(x.out, ids)) if x.code == 0 else [],
        }
        if how == "save" and r.code == 0 and s.code == 0:
            self._note(step, "members sorted by name", _sorted(r.out), _sorted(s.out))
        a, b = compare[how](rid, r), compare[how](sid, s)
        if how in ("tar", "save") and a != b:
            self._tar_note(step, a, b)
        elif how == "json" and a != b:
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                for key in fields:
                    self._note(step, f"inspect[{i}].{key}", json.dumps(x.get(key), sort_keys=True),
                               json.dumps(y.get(key), sort_keys=True))  # fmt: skip
            self._note(step, "inspect objects", len(a), len(b))
        else:
            self._note(step, "stdout", a, b)
        return r, s

    def _tar_note(self, step: str, a: list[str], b: list[str]) -> None:
        self._note(step, "tar member count", len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            self._note(step, f"tar member {i}", x, y)

    def check_tree(self, label: str = "", only: str = "") -> None:
        """Compare the overlay2 directories and the overlay mounts of both sides now; with
        ``only``, the paths that start with it (e.g. ``RW[`` for containers' layers)."""
        step = f"overlay2 tree {label}".strip()
        trees = []
        for side in (self.real, self.sim):
            v = side.view()
            ids = read_ids(v.o, v.root, v.shown)
            shown = v.shown or v.root
            mounted = {v.root + t[len(shown):] for t, _, _ in v.mounts if t.startswith(shown)}
            trees.append((overlay2_tree(v.o, v.root, ids, mounted, only), mounts_of(v.mounts, shown, ids)))
        (rt, rm), (st, sm) = trees
        for key in sorted(set(rt) | set(st)):
            if key.startswith(only):
                self._note(step, key, rt.get(key, "<absent>"), st.get(key, "<absent>"))
        for key in sorted(set(rm) | set(sm)):
            self._note(step, f"mount {key}", rm.get(key, "<absent>"), sm.get(key, "<absent>"))

    def report(self) -> str:
        return "\n".join(str(d) for d in self.differences)

    def assert_same(self) -> None:
        """Fail with every difference, in full (not an assert statement, which pytest cuts)."""
        if self.differences:
            raise AssertionError(f"{len(self.differences)} differences from dockerd:\n" + self.report())


def _sorted(data: bytes) -> bool:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        names = tf.getnames()
    return names == sorted(names)


def _text(ids: IdMap, s: str) -> str:
    s = _TEMP_DIR.sub("docker-import-<N>", _RECENT.sub("<recent>", ids.text(s)))
    return _IDS_SHORT.sub(lambda m: "<id?>", s)
