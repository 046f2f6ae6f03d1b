"""The digest as a self-contained HTML page (Jinja2, images embedded) and as plain text.

The page needs no network: styles are inline and every image is a base64 ``data:`` URI, so
it opens from a file or a mail attachment. Every value is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from Scoring import MACHINE_CHANNEL, format_duration

from .digest import EVENT_STATES, Digest

__all__ = [
    "DigestImages",
    "channel",
    "render_html",
    "render_text",
    "template_environment",
]

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class DigestImages:
    """PNG bytes of the digest's figures: one per top event (None: not drawn), the overview."""

    events: Sequence[bytes | None] = field(default_factory=list)
    overview: bytes | None = None


def _minute(value: Any) -> str:
    if value is None:
        return "-"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def channel(event: dict[str, Any]) -> str:
    """An event's axis; a machine event with its top contributors: ``* (axis3 61%, ...)``."""
    shares = event.get("contributors") or []
    if event["axis"] != MACHINE_CHANNEL or not shares:
        return str(event["axis"])
    named = ", ".join(f"{c['axis']} {c['share']:.0%}" for c in shares[:2])
    return f"{event['axis']} machine ({named})"


def _as_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


@functools.cache  # compiled once per process: a fleet renders a report.html per asset
def template_environment() -> Environment:
    """The Jinja2 environment of the report templates: autoescape, strict, with the filters
    minute, duration, ratio, num, cell, percent, as_json and channel."""
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        minute=_minute,
        duration=format_duration,
        ratio=_ratio,
        num=_num,
        cell=_cell,
        percent=_percent,
        as_json=_as_json,
        channel=channel,
    )
    return env


def _base64(png: bytes | None) -> str | None:
    return None if png is None else base64.b64encode(png).decode("ascii")


def render_html(digest: Digest, images: DigestImages) -> str:
    """The digest page: headline (the worst event), top events with their plots (an event
    without an image gets none), fleet attention, other stages' sections, the overview heat
    map, every asset's events, fleet and model age."""
    encoded = {
        "events": [
            _base64(images.events[i]) if i < len(images.events) else None
            for i in range(len(digest.top))
        ],
        "overview": _base64(images.overview),
    }
    template = template_environment().get_template("digest.html.j2")
    return template.render(d=digest, images=encoded, states=EVENT_STATES, fleet_rows=digest.fleet)


def _line(event: dict[str, Any], *, with_asset: bool = True) -> str:
    where = f"{event['asset']} " if event["asset"] and with_asset else ""
    return (
        f"{where}{channel(event)} {event['severity']} ({event['state']}) from "
        f"{_minute(event['start'])} for {format_duration(event['duration_s'])}, ratio "
        f"{_ratio(event['ratio'])} {event['side'] or ''}".rstrip()
    )


def render_text(digest: Digest, limit: int = 20, assets: int = 50) -> str:
    """The digest as plain text for a cron mail: headline, top events, assets needing
    attention, other sections, then the events of the ``assets`` worst assets (at most
    ``limit`` each; the HTML page lists them all)."""
    totals = digest.totals
    errors = sum(t["error"] for t in totals.values())
    alerts = sum(t["alert"] for t in totals.values())
    lines = [
        f"Morning digest of {digest.source_table}: {_minute(digest.since)} to "
        f"{_minute(digest.until)} UTC",
        f"{errors} error and {alerts} alert events on {len(digest.assets)} asset(s)",
        "",
    ]
    if digest.note:
        lines += [digest.note, ""]
    if digest.top:
        lines.append(f"WORST: {_line(digest.top[0])}")
        lines += ["", "Top events:", *(f"  {_line(e)}" for e in digest.top)]
    else:
        lines.append("No alert or error events in the period.")
    if digest.attention:
        lines += ["", "Need data or failed training:"]
        for row in digest.attention:
            detail = row.get("reason") or (
                f"needs {row['missing']} more samples" if row.get("missing") else ""
            )
            lines.append(f"  {row['asset']}: {row['status']} {detail}".rstrip())
    for section in digest.sections:
        lines += ["", f"{section.title}:", "  " + " | ".join(section.headers)]
        lines += ["  " + " | ".join(_cell(v) for v in row) for row in section.rows]
    for asset in digest.assets[:assets]:
        counts = asset.counts
        summary = ", ".join(
            f"{state} {counts[state]['error']}E/{counts[state]['alert']}A" for state in EVENT_STATES
        )
        others = {
            severity: sum(counts[state][severity] for state in EVENT_STATES)
            for severity in ("sensor", "drift")
        }
        summary += "".join(f", {n} {severity}" for severity, n in others.items() if n)
        age = "" if asset.model_age_days is None else f", model age {asset.model_age_days} d"
        lines += ["", f"{asset.asset or digest.source_table} ({summary}{age})"]
        lines += [f"  {_line(e, with_asset=False)}" for e in asset.events[:limit]]
        if len(asset.events) > limit:
            lines.append(f"  ... and {len(asset.events) - limit} more")
    if len(digest.assets) > assets:
        lines += ["", f"... and {len(digest.assets) - assets} more assets with events"]
    if digest.quiet:
        lines += ["", "Quiet: " + ", ".join(digest.quiet)]
    return "\n".join(lines)
