"""An evaluation run: score a range with a version, without writing, and compare with labels.

The range is scored exactly as ``score`` would (chunks with look-back and look-ahead, the
version's thresholds, ``events.merge_gap_seconds``) but nothing is written: no events, no
state, no CSV. Its flagged samples and alert episodes are compared with the windows of
``labels.table`` (see :mod:`Labels.metrics` for every figure).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from Labels import DetectionReport, evaluate_detection, read_labels
from Scoring import Level

from .config import ConfigError, LoadedConfig
from .context import DatabaseSession, open_database
from .scoring import _as_utc, _check_axes, _chunk_span, _just_after, _load_model, _RangeScorer

__all__ = ["DryScore", "EvaluationRun", "detection", "dry_score", "run_evaluation"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationRun:
    """The outcome of ``evaluate``: what was scored, against which labels, and the figures."""

    version: str
    labels_table: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    report: DetectionReport

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` payload of ``evaluate`` (without ``status``)."""
        return {
            "version": self.version,
            "labels_table": self.labels_table,
            "window": {
                "start": None if self.start is None else self.start.isoformat(),
                "end": None if self.end is None else self.end.isoformat(),
            },
            "evaluation": self.report.to_dict(),
        }


@dataclass(frozen=True)
class DryScore:
    """A range scored without writing anything: per-sample times and worst levels, and the
    events of each chunk (as ``ScoreResult.events`` gives them)."""

    ts: pd.Series
    worst: np.ndarray
    events: list[pd.DataFrame]

    @property
    def days(self) -> float:
        """The time the scored samples span, in days (0 with fewer than two)."""
        if len(self.ts) < 2:
            return 0.0
        return (_as_utc(self.ts.iloc[-1]) - _as_utc(self.ts.iloc[0])).total_seconds() / 86_400


def dry_score(
    loaded: LoadedConfig,
    session: DatabaseSession,
    model: Any,
    start: dt.datetime | None,
    end: dt.datetime | None,
    asset: Any = None,
) -> DryScore:
    """Score ``[start, end)`` exactly as ``score`` does (chunks with look-back and look-ahead,
    the version's thresholds) on an open database, writing nothing: no events, no state."""
    data = loaded.config.data
    scorer = _RangeScorer(
        session.engine,
        session.target,
        data,
        model,
        _check_axes(data, model),
        loaded.config.database.fast_path,
        asset,
    )
    span = _chunk_span(loaded.config.scoring.chunk_rows, model.dt_seconds)
    times: list[pd.Series] = []
    worst: list[np.ndarray] = []
    events: list[pd.DataFrame] = []
    gap = loaded.config.events.merge_gap_seconds
    for chunk in scorer.chunks(start, end, span):
        if chunk.result is None:
            continue
        times.append(chunk.result.frame["ts"])
        worst.append(np.asarray(chunk.result.worst_codes))
        events.append(chunk.result.events(merge_gap_seconds=gap))
    if not times:
        return DryScore(pd.Series([], dtype="datetime64[ns, UTC]"), np.zeros(0, np.int8), [])
    return DryScore(pd.concat(times, ignore_index=True), np.concatenate(worst), events)


def _episodes(
    events: list[pd.DataFrame],
    gap: float,
    cooldown: float = 0.0,
    severities: tuple[str, ...] = ("alert",),
) -> pd.DataFrame:
    """The episodes of ``severities`` of all chunks as the event store keeps them: runs cut at
    a chunk edge joined again, episodes of one channel within ``gap`` seconds merged, and an
    episode starting within ``cooldown`` seconds after the previous kept one's end left out
    (suppressed). Each severity's episodes are kept apart (column ``severity``)."""
    frames = [
        _episodes_of([frame[frame["severity"] == kind] for frame in events if len(frame)], gap)
        .pipe(_cooled, cooldown)
        .assign(severity=kind)
        for kind in severities
    ]
    return pd.concat(frames, ignore_index=True)[["axis", "start", "end", "severity"]]


def _episodes_of(alerts: list[pd.DataFrame], gap: float) -> pd.DataFrame:
    if not alerts:
        return pd.DataFrame(columns=["axis", "start", "end"])
    joined = pd.concat(alerts, ignore_index=True)
    rows: list[dict[str, Any]] = []
    for axis, group in joined.groupby("axis", sort=False):
        current: dict[str, Any] | None = None
        for event in group.sort_values("start", kind="stable").to_dict("records"):
            start, end = _as_utc(event["start"]), _as_utc(event["end"])
            touches = current is not None and current["open_end"] and event["starts_at_frame_start"]
            if current is not None and (touches or (start - current["end"]).total_seconds() <= gap):
                current["end"] = max(current["end"], end)
                current["open_end"] = bool(event["ends_at_frame_end"])
                continue
            current = {
                "axis": axis,
                "start": start,
                "end": end,
                "open_end": bool(event["ends_at_frame_end"]),
            }
            rows.append(current)
    return pd.DataFrame(rows, columns=["axis", "start", "end"])


def _cooled(frame: pd.DataFrame, cooldown: float) -> pd.DataFrame:
    if cooldown <= 0:
        return frame
    kept: list[int] = []
    last_end: dict[str, pd.Timestamp] = {}
    for index, row in frame.iterrows():  # in time order per channel
        previous = last_end.get(row["axis"])
        if previous is not None and (row["start"] - previous).total_seconds() <= cooldown:
            continue
        kept.append(index)
        last_end[row["axis"]] = row["end"]
    return frame.loc[kept]


def detection(loaded: LoadedConfig, scored: DryScore, labels: pd.DataFrame) -> DetectionReport:
    """The detection figures of a dry-scored range against ``labels`` (alert episodes)."""
    events = loaded.config.events
    found = _episodes(scored.events, events.merge_gap_seconds, events.cooldown_seconds)
    codes = scored.worst
    return evaluate_detection(scored.ts, codes >= Level.ALERT, codes >= Level.OK, found, labels)


def run_evaluation(
    loaded: LoadedConfig,
    *,
    version: str = "latest",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> EvaluationRun:
    """Score ``[start, end)`` with ``version`` (writing nothing) and compare with the labels.

    Args:
        loaded: the validated config (``data``, ``registry``, ``events``, ``labels``).
        version: registry version, default ``latest``.
        start: range start; None = just after the version's training window.
        end: range end, exclusive; None = up to the newest sample.

    Raises:
        ConfigError: ``labels.table`` is not set (status ``invalid-config``).
        VersionNotFoundError, RegistryError: as for ``score``.
        LabelsError, ScoringInputError, ExtractionError: unusable labels or data
            (status ``invalid-input``).
        DatabaseError: the database failed (status ``db-error``).
    """
    table = loaded.config.labels.table
    if table is None:
        raise ConfigError(
            loaded.source,
            [
                "labels.table: not set; name the table of labelled anomaly windows "
                "(start_ts, end_ts, axis, kind, severity) to evaluate against"
            ],
        )
    model = _load_model(loaded, version)
    _check_axes(loaded.config.data, model)
    if start is None and model.trained_until is not None:
        start = _just_after(model.trained_until)
    session = open_database(loaded, access="read")
    try:
        labels = read_labels(session.engine, session.target, table)
        scored = dry_score(loaded, session, model, start, end)
    finally:
        session.close()
    report = detection(loaded, scored, labels)
    ts = scored.ts
    first = None if ts.empty else _as_utc(ts.iloc[0])
    last = None if ts.empty else _as_utc(ts.iloc[-1])
    logger.info(
        "evaluated %s on %d samples from %s to %s against %d label(s) of %s: event recall %s, "
        "%d false event(s)",
        model.version,
        report.samples,
        first,
        last,
        report.labels,
        table,
        "n/a" if report.event_recall is None else f"{report.event_recall:.3f}",
        report.false_events,
    )
    return EvaluationRun(model.version, table, first, last, report)
