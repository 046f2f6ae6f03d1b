"""``report.html`` of a registered version: what was trained, on what, how well, and what changed.

Rendered from the run's own results before the version is published, so the page is one of
the version's files (listed in its manifest, verified like the others). Self-contained: styles
inline, plots embedded as base64 PNG, no network.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ModelEvaluation import THRESHOLD_KEYS, threshold_label

from .digest import DigestSection
from .render import template_environment

__all__ = ["VersionReport", "render_version_report", "threshold_changes"]


@dataclass(frozen=True)
class VersionReport:
    """Everything ``report.html`` shows (plain values; the orchestrator fills it).

    Attributes:
        title: what was trained (table, and asset in a fleet).
        run_id: the training run.
        profile: :meth:`DataExtractionAnalysis.Profile.to_dict` of the training window.
        selection: ``selection.json``'s record (criterion, chosen, table).
        metrics: one record per axis (``metrics.csv``).
        families: axis → fitted family.
        thresholds: ``thresholds.json``.
        previous: (version, its thresholds) of the latest version before this one, or None.
        alarm_budget: the expected false alert events per day and the budget.
        plots: file name → PNG bytes.
        timings: step → seconds (up to registration).
        provenance: data source, window, masks, libraries, code revision.
        units: axis → unit (``data.units``).
        sections: tables other stages add (drift baselines, sensor-health grades, ...), shown
            after the thresholds; none: nothing shown.
    """

    title: str
    run_id: str
    profile: Mapping[str, Any]
    selection: Mapping[str, Any]
    metrics: Sequence[Mapping[str, Any]]
    families: Mapping[str, str]
    thresholds: Mapping[str, Mapping[str, Any]]
    previous: tuple[str, Mapping[str, Mapping[str, Any]]] | None
    alarm_budget: Mapping[str, Any]
    plots: Mapping[str, bytes] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    sections: Sequence[DigestSection] = ()


def threshold_changes(
    current: Mapping[str, Mapping[str, Any]], previous: Mapping[str, Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """One row per channel and threshold key: label, previous value, value, relative change.

    ``change`` is ``(value - previous) / |previous|`` (None without a previous value, or when it
    is 0); channels and keys in the order of ``current`` and :data:`THRESHOLD_KEYS`.
    """
    rows = []
    for channel, record in current.items():
        before = (previous or {}).get(channel, {})
        for key in THRESHOLD_KEYS:
            value = record.get(key)
            if value is None:
                continue
            old = before.get(key)
            change = None if old in (None, 0) else (value - old) / abs(old)
            rows.append(
                {
                    "channel": channel,
                    "threshold": threshold_label(key),
                    "previous": old,
                    "value": value,
                    "change": change,
                }
            )
    return rows


def render_version_report(report: VersionReport) -> str:
    """The HTML page of a version (see the module docstring)."""
    template = template_environment().get_template("version.html.j2")
    previous = None if report.previous is None else report.previous[1]
    changes = threshold_changes(report.thresholds, previous)
    shown = {row["threshold"] for row in changes}
    return template.render(
        r=report,
        labels=[threshold_label(key) for key in THRESHOLD_KEYS if threshold_label(key) in shown],
        by_cell={(row["channel"], row["threshold"]): row for row in changes},
        images={name: base64.b64encode(png).decode("ascii") for name, png in report.plots.items()},
        axis_profiles=dict(report.profile.get("axes") or {}),
    )
