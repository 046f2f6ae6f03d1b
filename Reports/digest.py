"""The morning digest's content: events of a period per asset, worst first, and the fleet.

Pure functions over frames read by the caller (events, scoring state, fleet state); no I/O.

An event of the period ``[since, until]`` is

- ``ongoing`` when it reaches the newest sample scored for its asset (it may go on);
- ``new`` when it started in the period and has ended;
- ``closed`` when it started before the period and ended in it.

Assets are listed by their worst event (see :func:`Scoring.worst_first`), then by name; each
asset's events worst first. Sections from other stages (drift and sensor health, failure
probabilities, promotion decisions) come from :data:`SectionSource` callables: a source with
nothing to say returns None and its section is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from Scoring import MACHINE_CHANNEL, event_records, worst_first

__all__ = [
    "EVENT_STATES",
    "AssetDigest",
    "Digest",
    "DigestSection",
    "SectionSource",
    "build_digest",
    "classify_events",
    "machine_axis",
    "needs_plot",
    "pick_top_events",
]

EVENT_STATES: tuple[str, ...] = ("ongoing", "new", "closed")
"""An event's state in the period, in the order the digest names them."""

COUNTED: tuple[str, ...] = ("alert", "error", "sensor", "drift")
"""Severities counted per state: the alarms, dead sensors while the machine runs, and drift
starts (the events table holds all four)."""


@dataclass(frozen=True)
class DigestSection:
    """A table another stage adds to the digest (drift, sensor health, failure risk, ...).

    Attributes:
        key: stable id for ``--json`` (``drift``, ``trend``, ``health``, ``failure``,
            ``promotion``, ``coinciding``).
        title: the heading.
        headers, rows: the table (one row per asset, or per asset and axis).
        note: one line under the heading (what the numbers mean).
    """

    key: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``: rows as objects keyed by header."""
        return {
            "key": self.key,
            "title": self.title,
            "note": self.note,
            "rows": [dict(zip(self.headers, row, strict=True)) for row in self.rows],
        }


SectionSource = Callable[[Any], DigestSection | None]
"""A digest section's source: called with the digest's context (see
:class:`Orchestration.digest.DigestContext`), returns its section or None (nothing to show)."""


@dataclass(frozen=True)
class AssetDigest:
    """One asset's part: its events of the period worst first, and its fleet row.

    ``events`` are :func:`Scoring.event_records` plus ``state``; ``fleet`` is the fleet state
    row (status, version, trained_at, samples, missing, reason) or None.
    """

    asset: str
    events: list[dict[str, Any]]
    fleet: dict[str, Any] | None = None
    model_age_days: float | None = None

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Events per state and severity."""
        counts = {state: dict.fromkeys(COUNTED, 0) for state in EVENT_STATES}
        for event in self.events:
            by_severity = counts[event["state"]]
            by_severity[event["severity"]] = by_severity.get(event["severity"], 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        return {
            "asset": self.asset,
            "counts": self.counts,
            "events": self.events,
            "fleet": self.fleet,
            "model_age_days": self.model_age_days,
        }


@dataclass(frozen=True)
class Digest:
    """The digest of ``[since, until]``: assets with events first, the fleet, sections.

    ``top`` are the events to draw (:func:`pick_top_events`), worst first; ``fleet`` the fleet
    state rows with their model age in days (empty without a fleet table).
    """

    source_table: str
    since: pd.Timestamp
    until: pd.Timestamp
    generated_at: pd.Timestamp
    assets: list[AssetDigest]
    top: list[dict[str, Any]]
    fleet: list[dict[str, Any]]
    quiet: list[str]
    sections: list[DigestSection] = field(default_factory=list)
    note: str = ""
    """A remark on the whole digest, e.g. that nothing has been scored yet."""

    @property
    def attention(self) -> list[dict[str, Any]]:
        """Fleet rows of the assets that need data or failed training."""
        return [row for row in self.fleet if row["status"] in {"needs-data", "failed"}]

    @property
    def totals(self) -> dict[str, dict[str, int]]:
        """Events per state and severity over every asset."""
        totals = {state: dict.fromkeys(COUNTED, 0) for state in EVENT_STATES}
        for asset in self.assets:
            for state, by_severity in asset.counts.items():
                for severity, count in by_severity.items():
                    totals[state][severity] = totals[state].get(severity, 0) + count
        return totals

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of ``report`` (without ``status``)."""
        return {
            "source_table": self.source_table,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "totals": self.totals,
            "top_events": self.top,
            "assets": [asset.to_dict() for asset in self.assets],
            "attention": self.attention,
            "fleet": self.fleet,
            "quiet_assets": self.quiet,
            "sections": [section.to_dict() for section in self.sections],
            "note": self.note,
        }


def classify_events(
    events: pd.DataFrame, since: pd.Timestamp, newest: Mapping[str, pd.Timestamp]
) -> pd.Series:
    """The state of each event in the period (see the module docstring).

    Args:
        events: rows of the events table (``asset``, ``start_ts``, ``end_ts`` as UTC).
        since: the period's start.
        newest: asset → its newest scored sample (an asset missing here has no ongoing event).

    Returns:
        One of :data:`EVENT_STATES` per row, on ``events``' index.
    """
    if events.empty:
        return pd.Series([], index=events.index, dtype="str")
    reach = events["asset"].map(lambda a: newest.get(a, pd.NaT))
    reach = pd.to_datetime(reach, utc=True)
    ongoing = (events["end_ts"] >= reach).fillna(False).to_numpy(dtype=bool)
    started = (events["start_ts"] >= since).to_numpy(dtype=bool)
    states = np.where(ongoing, "ongoing", np.where(started, "new", "closed"))
    return pd.Series(states, index=events.index, dtype="str")


def pick_top_events(ranked: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` events of ``ranked`` (worst first) that show something new.

    An event is passed over when an event already picked of the same asset and axis overlaps
    it in time: the alert episode around an error already listed is the same incident.
    """
    picked: list[dict[str, Any]] = []
    for event in ranked:
        if len(picked) >= limit:
            break
        if any(_same_place(event, other, _own_axis) for other in picked):
            continue
        picked.append(event)
    return picked


def needs_plot(top: Sequence[dict[str, Any]]) -> list[bool]:
    """Per top event, whether it gets its own figure: not when an earlier one draws the same
    asset and axis over an overlapping time (a machine event draws its top contributor,
    :func:`machine_axis`, which the axis's own event would draw again)."""
    flags = []
    for index, event in enumerate(top):
        earlier = top[:index]
        flags.append(
            machine_axis(event) != MACHINE_CHANNEL
            and not any(_same_place(event, other, machine_axis) for other in earlier)
        )
    return flags


def _own_axis(event: Mapping[str, Any]) -> str:
    return str(event["axis"])


def _same_place(
    a: Mapping[str, Any], b: Mapping[str, Any], axis: Callable[[Mapping[str, Any]], str]
) -> bool:
    return (
        a["asset"] == b["asset"]
        and axis(a) == axis(b)
        and a["start"] <= b["end"]
        and b["start"] <= a["end"]
    )


def build_digest(
    events: pd.DataFrame,
    *,
    source_table: str,
    since: pd.Timestamp,
    until: pd.Timestamp,
    newest: Mapping[str, pd.Timestamp],
    fleet: pd.DataFrame | None,
    now: pd.Timestamp,
    top_events: int,
    sections: Sequence[DigestSection] = (),
    note: str = "",
) -> Digest:
    """Assemble the digest of ``[since, until]`` from the stored events and the fleet state.

    Args:
        events: kept events overlapping the period (:meth:`Scoring.EventStore.read_overlapping`).
        source_table: the scored table (for the heading).
        since, until: the period (UTC).
        newest: asset → newest scored sample (for ``ongoing``).
        fleet: the fleet state table's rows (None or empty: no fleet table); an asset of it
            without events is listed as quiet, one that needs data or failed in ``attention``.
        now: when the digest is made (model ages count to it).
        top_events: how many events to pick for plots.
        sections: tables of other stages, in order (absent ones left out by the caller).
        note: a remark shown under the heading (e.g. nothing scored yet).
    """
    ranked = worst_first(events)
    records = event_records(ranked)
    for record, state in zip(records, classify_events(ranked, since, newest).tolist(), strict=True):
        record["state"] = state
        record["asset"] = record["asset"] or ""
    rows = _fleet_rows(fleet)
    per_asset: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        per_asset.setdefault(record["asset"], []).append(record)
    assets = [
        AssetDigest(name, found, rows.get(name), _age_days(rows.get(name), now))
        for name, found in per_asset.items()
    ]
    quiet = sorted(name or source_table for name in rows if name not in per_asset)
    return Digest(
        source_table=source_table,
        since=since,
        until=until,
        generated_at=now,
        assets=assets,
        top=pick_top_events(records, top_events),
        fleet=[{**row, "model_age_days": _age_days(row, now)} for row in rows.values()],
        quiet=quiet,
        sections=list(sections),
        note=note,
    )


def _fleet_rows(fleet: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if fleet is None or fleet.empty:
        return {}
    keep = ["asset", "status", "version", "trained_at", "samples", "missing", "reason"]
    rows = {}
    for row in fleet.reindex(columns=keep).to_dict("records"):
        clean = {k: (None if _is_missing(v) else v) for k, v in row.items()}
        if clean.get("trained_at") is not None:
            clean["trained_at"] = pd.Timestamp(clean["trained_at"]).isoformat()
        for key in ("samples", "missing"):
            if clean.get(key) is not None:
                clean[key] = int(clean[key])
        rows[str(clean["asset"])] = clean
    return rows


def _age_days(row: Mapping[str, Any] | None, now: pd.Timestamp) -> float | None:
    if row is None or row.get("trained_at") is None:
        return None
    return round((now - pd.Timestamp(row["trained_at"])).total_seconds() / 86400.0, 2)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def machine_axis(record: Mapping[str, Any]) -> str:
    """The axis to draw for an event: its own, or a machine event's top contributor."""
    if record["axis"] != MACHINE_CHANNEL:
        return str(record["axis"])
    shares = record.get("contributors") or []
    return str(shares[0]["axis"]) if shares else MACHINE_CHANNEL
