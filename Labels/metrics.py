"""How well flagged samples and events match labelled anomalies (the seeds' F1 and friends).

Pointwise, over the scored samples that count (not idle): a sample is *positive* when it lies
inside any label window, *flagged* when its worst level is alert or error.

- precision = flagged positives / flagged; recall = flagged positives / positives;
  F1 = their harmonic mean;
- false-alarm rate = flagged negatives / negatives; missed-alarm rate = 1 − recall.

Event-wise, over the labels that overlap the scored range and the events of that range:

- a label is *found* when an event overlaps it in time on its axis, on the machine channel
  (``*``) or, for a machine-wide label (no axis), on any axis; event recall = found / labels;
- an event is *true* when it overlaps any label in time; event precision = true / events;
- time to detect = first finding event's start − label start (0 when it started before);
- false events per day = events that overlap no label / days of the scored range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import LabelsError

__all__ = ["DetectionReport", "evaluate_detection"]


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


@dataclass(frozen=True)
class DetectionReport:
    """Pointwise and event-wise detection figures of one scored range against labels."""

    samples: int
    positives: int
    flagged: int
    true_positives: int
    precision: float | None
    recall: float | None
    f1: float | None
    false_alarm_rate: float | None
    missed_alarm_rate: float | None
    labels: int
    labels_found: int
    event_recall: float | None
    events: int
    true_events: int
    event_precision: float | None
    mean_time_to_detect_s: float | None
    false_events: int
    days: float
    false_events_per_day: float | None
    per_label: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (timestamps as ISO strings)."""
        data = asdict(self)
        for row in data["per_label"]:
            for key in ("start_ts", "end_ts"):
                row[key] = pd.Timestamp(row[key]).isoformat()
        return data


def _ns(values: Any) -> np.ndarray:
    series = pd.Series(values)
    if pd.api.types.is_numeric_dtype(series):
        series = pd.to_datetime(series.astype("float64"), unit="s", utc=True)
    else:
        series = pd.to_datetime(series, utc=True)
    return series.to_numpy("datetime64[ns]").view("int64")


def evaluate_detection(
    ts: Any,
    flagged: np.ndarray,
    counted: np.ndarray,
    events: pd.DataFrame,
    labels: pd.DataFrame,
) -> DetectionReport:
    """Compare flagged samples and events with labels (see the module docstring).

    Parameters
    ----------
    ts:
        Sorted times of the scored samples (UTC timestamps or epoch seconds).
    flagged:
        Per sample: worst level is alert or error.
    counted:
        Per sample: whether it counts pointwise (e.g. the machine was not idle).
    events:
        Columns ``axis``, ``start``, ``end`` (kept, not suppressed, events of the range).
    labels:
        As :func:`Labels.read_labels` returns.

    Raises
    ------
    LabelsError
        If the arrays do not match ``ts`` in length.
    """
    times = _ns(ts)
    flagged = np.asarray(flagged, dtype=bool)
    counted = np.asarray(counted, dtype=bool)
    if flagged.shape != times.shape or counted.shape != times.shape:
        raise LabelsError(
            f"flagged and counted need one value per sample ({times.size}), got "
            f"{flagged.size} and {counted.size}"
        )
    first, last = (int(times[0]), int(times[-1])) if times.size else (0, -1)
    label_start = _ns(labels["start_ts"]) if len(labels) else np.zeros(0, dtype=np.int64)
    label_end = _ns(labels["end_ts"]) if len(labels) else np.zeros(0, dtype=np.int64)
    inside = (label_end >= first) & (label_start <= last)
    positive = np.zeros(times.size, dtype=bool)
    for start, end in zip(label_start[inside], label_end[inside], strict=True):
        positive[np.searchsorted(times, start, "left") : np.searchsorted(times, end, "right")] = (
            True
        )
    positive &= counted
    hit = flagged & counted
    tp = int(np.count_nonzero(hit & positive))
    n_flagged, n_positive = int(np.count_nonzero(hit)), int(np.count_nonzero(positive))
    negatives = int(np.count_nonzero(counted)) - n_positive
    precision = _ratio(tp, n_flagged)
    recall = _ratio(tp, n_positive)
    f1 = None
    if precision is not None and recall is not None and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)

    event_axis = events["axis"].astype(str).to_numpy() if len(events) else np.zeros(0, str)
    event_start = _ns(events["start"]) if len(events) else np.zeros(0, dtype=np.int64)
    event_end = _ns(events["end"]) if len(events) else np.zeros(0, dtype=np.int64)
    true_event = np.zeros(event_start.size, dtype=bool)
    per_label: list[dict[str, Any]] = []
    delays: list[float] = []
    kept = labels[inside].reset_index(drop=True)
    for row, start, end in zip(
        kept.itertuples(index=False), label_start[inside], label_end[inside], strict=True
    ):
        overlaps = (event_start <= end) & (event_end >= start)
        true_event |= overlaps
        axis = getattr(row, "axis", None)
        axis = None if axis is None or (isinstance(axis, float) and math.isnan(axis)) else axis
        finding = overlaps if axis is None else overlaps & np.isin(event_axis, [axis, "*"])
        found = bool(finding.any())
        delay = None
        if found:
            delay = max(0.0, (int(event_start[finding].min()) - int(start)) / 1e9)
            delays.append(delay)
        per_label.append(
            {
                "start_ts": row.start_ts,
                "end_ts": row.end_ts,
                "axis": axis,
                "kind": getattr(row, "kind", None),
                "found": found,
                "detected_after_s": delay,
                "events": int(np.count_nonzero(overlaps)),
            }
        )
    days = (last - first) / 1e9 / 86_400.0 if times.size else 0.0
    false_events = int(np.count_nonzero(~true_event))
    n_labels = len(per_label)
    n_found = sum(1 for row in per_label if row["found"])
    return DetectionReport(
        samples=int(np.count_nonzero(counted)),
        positives=n_positive,
        flagged=n_flagged,
        true_positives=tp,
        precision=precision,
        recall=recall,
        f1=f1,
        false_alarm_rate=_ratio(n_flagged - tp, negatives),
        missed_alarm_rate=None if recall is None else 1.0 - recall,
        labels=n_labels,
        labels_found=n_found,
        event_recall=_ratio(n_found, n_labels),
        events=int(event_start.size),
        true_events=int(np.count_nonzero(true_event)),
        event_precision=_ratio(int(np.count_nonzero(true_event)), event_start.size),
        mean_time_to_detect_s=float(np.mean(delays)) if delays else None,
        false_events=false_events,
        days=days,
        false_events_per_day=_ratio(false_events, days),
        per_label=per_label,
    )
