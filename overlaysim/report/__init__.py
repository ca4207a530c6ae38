"""``overlaysim report``: one self-contained HTML page for an image, a container or a replay:
the layer stack as SVG bands, each path's winning layer with whiteouts and opaque dirs marked,
the copy-up timeline with bytes, and explain's text for a path on click."""

from overlaysim.report.collect import from_replay, from_world
from overlaysim.report.model import MAX_PATHS, Report
from overlaysim.report.page import render

__all__ = ["MAX_PATHS", "Report", "from_replay", "from_world", "render"]
