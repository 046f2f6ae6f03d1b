"""Stored events, worst first, as plain records for reports and ``--json``.

"Worst" is one order used everywhere events are listed (``score``, the morning digest):
severity first (``error`` before ``alert``), then ``ratio`` (how far the peak went beyond the
event's own threshold; 1.0 = just at it), then duration, then the earlier start. Events stored
before the ratio existed rank after those with one, by their peak residual over threshold.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from .levels import Level

__all__ = [
    "EVENT_RECORD_FIELDS",
    "event_records",
    "format_duration",
    "worst_first",
    "worst_records",
]

EVENT_RECORD_FIELDS: tuple[str, ...] = (
    "asset",
    "axis",
    "severity",
    "start",
    "end",
    "duration_s",
    "samples",
    "peak_ts",
    "ratio",
    "side",
    "actual",
    "expected",
    "peak_residual",
    "threshold",
    "contributors",
    "model_version",
)
"""Keys of every record :func:`event_records` returns, in order."""

_SEVERITY_RANK = {Level.ALERT.label: 1, Level.ERROR.label: 2}


def worst_first(events: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """Return ``events`` (rows of the events table) worst first, at most ``limit`` rows.

    ``events`` needs ``severity``, ``ratio``, ``peak_residual``, ``threshold``, ``duration_s``
    and ``start_ts``; the result keeps every column, with a fresh index.
    """
    if events.empty:
        return events.reset_index(drop=True)
    rank = events["severity"].map(_SEVERITY_RANK).fillna(0).to_numpy(dtype=float)
    ratio = pd.to_numeric(events["ratio"], errors="coerce").to_numpy(dtype=float)
    residual = pd.to_numeric(events["peak_residual"], errors="coerce").to_numpy(dtype=float)
    threshold = pd.to_numeric(events["threshold"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        legacy = np.abs(residual / threshold)
    has_ratio = np.isfinite(ratio)
    start = pd.to_datetime(events["start_ts"], utc=True).to_numpy("datetime64[ns]").view("int64")
    keys = pd.DataFrame(
        {
            "rank": -rank,
            "has_ratio": ~has_ratio,
            "ratio": -np.where(has_ratio, ratio, np.nan_to_num(legacy, nan=0.0)),
            "duration": -events["duration_s"].to_numpy(dtype=float),
            "start": start,
        }
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index.to_numpy()
    if limit is not None:
        order = order[:limit]
    return events.iloc[order].reset_index(drop=True)


def worst_records(records: list[dict[str, Any]], limit: int | None = None) -> list[dict[str, Any]]:
    """:func:`event_records` of several sources (e.g. one list per asset), merged worst first."""
    if not records:
        return []
    frame = pd.DataFrame(records).rename(columns={"start": "start_ts"})
    order = worst_first(frame.assign(position=range(len(frame))), limit)["position"]
    return [records[i] for i in order]


def event_records(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain JSON-ready records of stored events (keys :data:`EVENT_RECORD_FIELDS`).

    Times are ISO-8601 UTC strings, missing numbers ``None``, ``contributors`` a list of
    ``{"axis", "share"}`` (empty for axis events), ``asset`` ``None`` for a one-machine table.
    """
    records = []
    for row in events.to_dict("records"):
        records.append(
            {
                "asset": row.get("asset") or None,
                "axis": row["axis"],
                "severity": row["severity"],
                "start": _iso(row.get("start_ts")),
                "end": _iso(row.get("end_ts")),
                "duration_s": _number(row.get("duration_s")),
                "samples": None if _missing(row.get("samples")) else int(row["samples"]),
                "peak_ts": _iso(row.get("peak_ts")),
                "ratio": _number(row.get("ratio")),
                "side": row.get("side") if isinstance(row.get("side"), str) else None,
                "actual": _number(row.get("actual")),
                "expected": _number(row.get("expected")),
                "peak_residual": _number(row.get("peak_residual")),
                "threshold": _number(row.get("threshold")),
                "contributors": _contributors(row.get("contributors")),
                "model_version": row.get("model_version"),
            }
        )
    return records


def format_duration(seconds: float | None) -> str:
    """``3.8s``, ``29m57s``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float | None:
    if _missing(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso(value: Any) -> str | None:
    if _missing(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def _contributors(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, str) or not value:
        return []
    return list(json.loads(value))
