"""Reports: the morning digest of a fleet's events, and its figures.

Pure stage code: the caller reads events, states and data; this package orders, classifies,
draws and renders (self-contained HTML with embedded images, plain text, JSON-ready dicts).
"""

from .config import ReportConfig, parse_since
from .digest import (
    EVENT_STATES,
    AssetDigest,
    Digest,
    DigestSection,
    SectionSource,
    build_digest,
    classify_events,
    machine_axis,
    needs_plot,
    pick_top_events,
)
from .plots import EventPlot, draw_event, draw_overview, event_plot, overview_matrix
from .render import DigestImages, channel, render_html, render_text
from .version import VersionReport, render_version_report, threshold_changes

__all__ = [
    "EVENT_STATES",
    "AssetDigest",
    "Digest",
    "DigestImages",
    "DigestSection",
    "EventPlot",
    "ReportConfig",
    "SectionSource",
    "VersionReport",
    "build_digest",
    "channel",
    "classify_events",
    "draw_event",
    "draw_overview",
    "event_plot",
    "machine_axis",
    "needs_plot",
    "overview_matrix",
    "parse_since",
    "pick_top_events",
    "render_html",
    "render_text",
    "render_version_report",
    "threshold_changes",
]
