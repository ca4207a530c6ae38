"""``--format`` of ``docker images``, ``docker ps`` and ``docker history``: the CLI's formatter.

The docker CLI runs the user's Go template once per row over a "context" object whose
methods are the columns (``.ID``, ``.Repository``, ``.Size``; ``.Label "k"`` for
containers). A format starting with ``table`` also runs the template once over a map of
column headers (functions such as ``upper`` leave the header as it is) and aligns everything
with ``text/tabwriter`` (min width 10, padding 3); ``table`` alone, ``raw`` and ``-q`` pick
the command's own formats. Behaviour and messages checked against docker 20.10.24.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overlaysim.docker.gofmtverbs import MISSING, GoObject
from overlaysim.docker.gotemplate import TemplateError, TemplateParseError
from overlaysim.docker.gotemplate_exec import HEADER, ExecError, Template

Value = str | Callable[[], str]


class Row(GoObject):
    """One row: its columns (values, or callables computed on first use, as ``Size``)."""

    def __init__(self, go_type: str, columns: dict[str, Value], labels: dict[str, str]) -> None:
        self.go_type = go_type
        self.columns = columns
        self.labels = labels

    def value(self, name: str) -> str:
        v = self.columns[name]
        if callable(v):
            v = self.columns[name] = v()
        return v

    def go_lookup(self, name: str, args: list[Any]) -> Any:
        if name == "Label" and self.go_type.endswith("ContainerContext"):
            if len(args) != 1:
                raise TypeError(f"wrong number of args for Label: want 1 got {len(args)}")
            return self.labels.get(str(args[0]), "")
        if name not in self.columns:
            raise LookupError(name)
        if args:
            raise TypeError(f"wrong number of args for {name}: want 0 got {len(args)}")
        return self.value(name)

    def fields(self) -> dict[str, str]:
        return {k: self.value(k) for k in self.columns}

    def go_json(self) -> str:
        return json_line(self.fields())

    def go_str(self) -> str:
        return "&{" + " ".join(self.fields().values()) + "}"


def json_line(fields: dict[str, str]) -> str:
    """A context's ``MarshalJSON``: keys sorted, HTML characters escaped (Go's json)."""
    import json

    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Headers(GoObject):
    """The CLI's ``SubHeaderContext``: a map of column headers with a ``Label`` method."""

    go_type = "formatter.SubHeaderContext"

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def go_lookup(self, name: str, args: list[Any]) -> Any:
        if name == "Label":
            if len(args) != 1 or not isinstance(args[0], str):
                raise TypeError(f"wrong number of args for Label: want 1 got {len(args)}")
            # the last dotted part, '-' and '_' as spaces: "com.example.my-label" -> "my label"
            return args[0].split(".")[-1].replace("-", " ").replace("_", " ")
        if args:
            raise TypeError(f"{name} is not a method but has arguments")
        return self.names.get(name, MISSING)


@dataclass(frozen=True)
class Kind:
    """What differs between the three listings."""

    go_type: str
    headers: dict[str, str]
    table: str  # the default table format
    quiet: str = "{{.ID}}"
    raw: str | None = None
    raw_quiet: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


IMAGES = Kind(
    "*formatter.imageContext",
    {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
     "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
     "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
     "UniqueSize": "UNIQUE SIZE"},
    "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t"
    "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}",
    raw="repository: {{ .Repository }}\\ntag: {{.Tag}}\\nimage_id: {{.ID}}\\n"
    "created_at: {{.CreatedAt}}\\nvirtual_size: {{.Size}}\\n",
    raw_quiet="image_id: {{.ID}}",
)  # fmt: skip
CONTAINERS = Kind(
    "*formatter.ContainerContext",
    {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
     "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
     "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
     "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS"},
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}"
    "\\t{{.Names}}",
    raw="container_id: {{.ID}}\\nimage: {{.Image}}\\ncommand: {{.Command}}\\n"
    "created_at: {{.CreatedAt}}\\nstate: {{- pad .State 1 0}}\\nstatus: {{- pad .Status 1 0}}"
    "\\nnames: {{.Names}}\\nlabels: {{- pad .Labels 1 0}}\\nports: {{- pad .Ports 1 0}}\\n",
    raw_quiet="container_id: {{.ID}}",
)  # fmt: skip
HISTORY = Kind(
    "*image.historyContext",
    {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
     "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"},
    "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}",
)  # fmt: skip


def choose(
    kind: Kind, fmt: str | None, quiet: bool, *, size: bool = False, human: bool = True
) -> str:
    """The format the CLI uses: ``table``/``raw`` (or none) are the command's own; ``-q`` only
    matters for those; anything else is the user's template as given."""
    if not fmt or fmt == "table":
        if quiet:
            return kind.quiet
        text = kind.table
        if not human:
            text = text.replace("{{.CreatedSince}}", "{{.CreatedAt}}")
        return text + ("\\t{{.Size}}" if size else "")
    if fmt == "raw" and kind.raw is not None:
        if quiet:
            return kind.raw_quiet or kind.quiet
        return kind.raw + ("size: {{.Size}}\\n" if size else "")
    return fmt


def validate(fmt: str, zero: Row) -> None:
    """``docker ps`` checks a custom format first, on an empty container (its own messages,
    positions in the format as typed)."""
    try:
        Template(fmt).execute(zero)
    except TemplateParseError as e:
        raise TemplateError(f"failed to parse template: {e}") from None
    except ExecError as e:
        raise TemplateError(f"failed to execute template: {e}") from None


def write(kind: Kind, fmt: str, rows: list[Row]) -> str:
    """The CLI's ``formatter.Context.Write``: the rows, and the header for ``table`` formats."""
    table = fmt.startswith("table")
    text = fmt[len("table") :] if table else fmt
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        tmpl = Template(text)
        body = "".join(tmpl.execute(r) + "\n" for r in rows)
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}") from None
    if not table:
        return body
    try:
        head = tmpl.execute(Headers(kind.headers), funcs=HEADER)
    except ExecError as e:
        head = e.partial  # the CLI ignores a failed header and prints what it had
    return tabwrite_text(head + "\n" + body, 10, 3)


# --- text/tabwriter ----------------------------------------------------------------------------
def tabwrite_text(text: str, minwidth: int, padding: int) -> str:
    """``tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0)`` over ``text``: cells end at a
    tab; a column is as wide as its widest cell (+padding) among the adjacent lines that have
    it, so a line with fewer cells starts a new block."""
    lines = [ln.split("\t") for ln in text.split("\n")]
    out: list[str] = []

    def emit(lo: int, hi: int, widths: list[int]) -> None:
        for cells in lines[lo:hi]:
            parts = []
            for j, c in enumerate(cells):
                parts.append(c.ljust(widths[j]) if j < len(cells) - 1 and j < len(widths) else c)
            out.append("".join(parts))

    def fmt(lo: int, hi: int, widths: list[int]) -> None:
        col = len(widths)
        start = lo
        this = lo
        while this < hi:
            if col >= len(lines[this]) - 1:
                this += 1
                continue
            emit(start, this, widths)
            start = this
            width = minwidth
            while this < hi and col < len(lines[this]) - 1:
                width = max(width, len(lines[this][col]) + padding)
                this += 1
            fmt(start, this, [*widths, width])
            start = this
        emit(start, hi, widths)

    fmt(0, len(lines), [])
    return "\n".join(out)
