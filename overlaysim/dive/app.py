"""The interactive explorer (textual): layer list, file tree with marks, details line.

Keys: up/down choose a layer, tab moves between panes, ``v`` toggles the merged view,
``a``/``r``/``m``/``o``/``u`` hide added/removed/modified/opaque/unmodified names, ``q`` quits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Static, Tree

from overlaysim.dive.diveformula import DiveFigures
from overlaysim.dive.render import figures_line, human
from overlaysim.dive.sources import Subject
from overlaysim.dive.stack import ADDED, MODIFIED, OPAQUE, REMOVED, UNMODIFIED, layer_marks
from overlaysim.dive.views import Row, filtered, layer_rows, merged_rows
from overlaysim.dive.waste import Waste

_STYLE = {ADDED: "green", MODIFIED: "yellow", REMOVED: "red", OPAQUE: "magenta", UNMODIFIED: ""}


class DiveApp(App[None]):
    """Explore ``subject``'s layers; the figures are computed once by the caller."""

    TITLE = "overlaysim dive"
    CSS = """
    #layers { width: 45%; }
    #tree { width: 55%; }
    #details { height: auto; max-height: 6; border-top: solid $accent; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("tab", "focus_next", "Switch pane"),
        Binding("v", "toggle_merged", "Merged view"),
        Binding("a", "hide('added')", "Added"),
        Binding("r", "hide('removed')", "Removed"),
        Binding("m", "hide('modified')", "Modified"),
        Binding("o", "hide('opaque')", "Opaque"),
        Binding("u", "hide('unmodified')", "Unmodified"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, subject: Subject, waste: Waste, dive: DiveFigures) -> None:
        super().__init__()
        self.subject = subject
        self.waste = waste
        self.dive = dive
        self.marks = layer_marks(subject.layers)
        self.layer = len(subject.layers) - 1
        self.merged_view = False
        self.hidden: set[str] = set()
        self.rows: list[Row] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield DataTable(id="layers", cursor_type="row", zebra_stripes=True)
            yield Tree(Text("/"), id="tree")
        yield Static(id="details")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.subject.kind} {self.subject.name}"
        table = self.query_one("#layers", DataTable)
        table.add_columns("#", "Size", "Wasted", "Command")
        per_layer = self.waste.per_layer()
        for layer in self.subject.layers:
            table.add_row(str(layer.index), human(layer.size), human(per_layer[layer.index]),
                          layer.command or layer.label, key=str(layer.index))  # fmt: skip
        table.move_cursor(row=self.layer)
        table.focus()
        self.refresh_tree()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != self.layer:
            self.layer = event.cursor_row
            self.refresh_tree()

    def action_toggle_merged(self) -> None:
        self.merged_view = not self.merged_view
        self.refresh_tree()

    def action_hide(self, mark: str) -> None:
        self.hidden ^= {mark}
        self.refresh_tree()

    def tree_lines(self) -> list[str]:
        """The tree pane's text, one line per shown name, indented by depth (for tests)."""
        tree = self.query_one("#tree", Tree)
        out: list[str] = []

        def visit(node: Any, depth: int) -> None:
            for child in node.children:
                out.append("  " * depth + str(child.label.plain))
                visit(child, depth + 1)

        visit(tree.root, 0)
        return out

    def details_text(self) -> str:
        return str(self.query_one("#details", Static).render())

    def refresh_tree(self) -> None:
        layers = self.subject.layers
        build = merged_rows if self.merged_view else layer_rows
        self.rows = filtered(build(layers, self.marks, self.waste, self.layer), self.hidden)
        tree = self.query_one("#tree", Tree)
        tree.clear()
        view = "merged view up to" if self.merged_view else "changes of"
        tree.root.set_label(Text(f"/ ({view} layer {self.layer})"))
        nodes: dict[str, Any] = {"/": tree.root}
        for row in self.rows:
            parent = nodes.get(row.path.rsplit("/", 1)[0] or "/", tree.root)
            label = Text(row.text(), style=_STYLE[row.mark])
            if row.entry.kind == "dir":
                nodes[row.path] = parent.add(label, expand=True)
            else:
                parent.add_leaf(label)
        tree.root.expand()
        layer = layers[self.layer]
        hidden = ", ".join(sorted(self.hidden)) or "none"
        self.query_one("#details", Static).update(Text(
            f"layer {layer.index} {layer.id[:12]} ({layer.label}): {human(layer.size)}, "
            f"wasted here {human(self.waste.per_layer()[layer.index])}; hidden marks: {hidden}\n"
            f"{layer.command}\n{figures_line(self.waste, self.dive)}"))  # fmt: skip
