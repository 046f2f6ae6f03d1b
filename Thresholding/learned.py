"""Learned thresholds (``thresholds.mode: learned``): MinC/MaxC/sustain per axis from outcomes.

The percentile policy sets each axis's thresholds from the spread of normal residuals; it knows
nothing of what operators said about the events. With labelled outcomes in the window — windows
of known incidents (the labels table and confirmed events, weighted by their severity), events
marked false positive, and events marked ignore — a grid search scales each axis's percentile
thresholds by a multiplier ``m`` (MinC, MaxC and their lower-side twins alike) and picks an
alert sustain ``k`` (``T_long_steps``) that maximise

    objective = sum over incidents i found of  w_i * (1 - 0.5 * min(1, delay_i / length_i))
                - false_alarm_cost * (alarm runs overlapping no incident and no ignored window)

An alarm run is a maximal run of residuals beyond ``m`` times the percentile thresholds, kept
when at least ``k`` samples long; it raises its alert at its ``k``-th sample. An incident is
*found* when a kept run overlaps it and raises its alert before the incident ends; its delay is
from the incident's start to that alert (0 when the run began earlier). So finding an incident
early is worth up to its weight, late half of it, and every false alarm costs. Ties go to the
larger multiplier (fewer alarms on data not seen), then the shorter sustain (earlier alarms).

Incidents of the whole machine (axis NULL or ``*``) may show on some axes only: for each axis
they excuse alarms, like events labelled ignore, but are not the axis's to find.

Confidence in [0, 1] = min(1, labels / min_labels) x max(0, recall - false discovery rate) at
the optimum, with labels = incidents + false positives of the axis, recall = weight found /
weight of all incidents, false discovery rate = false alarms / (false alarms + incidents
found). An axis whose confidence is below ``min_confidence`` (or without a positive percentile
MinC to scale) keeps its percentile thresholds; every axis says which it uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .runs import run_bounds

__all__ = ["LearnedRule", "Outcomes", "apply_learned", "outcome_rows", "search_rule"]

KINDS = ("confirmed", "false-positive", "ignore")


@dataclass(frozen=True)
class Outcomes:
    """Labelled windows of one axis as row ranges of the residual series (inclusive ends).

    ``kind`` is one of ``confirmed``, ``false-positive``, ``ignore``; ``weight`` counts for
    confirmed windows only.
    """

    start: np.ndarray
    end: np.ndarray
    kind: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[tuple[int, int, str, float]]) -> Outcomes:
        """From ``(start, end, kind, weight)`` tuples."""
        start, end, kind, weight = zip(*rows, strict=True) if rows else ((), (), (), ())
        return cls(
            np.asarray(start, dtype=np.int64),
            np.asarray(end, dtype=np.int64),
            np.asarray(kind, dtype=object),
            np.asarray(weight, dtype=np.float64),
        )

    def of_kind(self, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start, end and weight of the windows of ``kind``, by start."""
        keep = self.kind == kind
        order = np.argsort(self.start[keep], kind="stable")
        return self.start[keep][order], self.end[keep][order], self.weight[keep][order]


@dataclass(frozen=True)
class LearnedRule:
    """The best multiplier and sustain of one axis, what they achieve, and the confidence."""

    multiplier: float
    sustain: int
    objective: float
    incidents: int
    found: int
    false_alarms: int
    false_positive_labels: int
    mean_delay_samples: float | None
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            key: (round(v, 6) if isinstance(v, float) else v) for key, v in asdict(self).items()
        }


def _covered(first: np.ndarray, last: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per run ``[first, last]``: whether it overlaps any window ``[start, end]`` (by start)."""
    if start.size == 0:
        return np.zeros(first.size, dtype=bool)
    reach = np.maximum.accumulate(end)
    before = np.searchsorted(start, last, side="right") - 1
    return (before >= 0) & (reach[np.maximum(before, 0)] >= first)


def _score(
    first: np.ndarray,
    last: np.ndarray,
    sustain: int,
    incidents: tuple[np.ndarray, np.ndarray, np.ndarray],
    excused: tuple[np.ndarray, np.ndarray],
    false_alarm_cost: float,
) -> tuple[float, int, int, float, float | None]:
    """Objective, incidents found, false alarms, weight found, mean delay of kept runs."""
    keep = (last - first + 1) >= sustain
    first, last = first[keep], last[keep]
    alarm = first + sustain - 1
    start, end, weight = incidents
    found_weight, n_found, delay = 0.0, 0, None
    value = 0.0
    if start.size and first.size:
        nxt = np.searchsorted(last, start, side="left")  # first run ending at/after the start
        has = nxt < first.size
        at = np.where(has, alarm[np.minimum(nxt, first.size - 1)], 0)
        found = has & (at <= end)
        delays = np.maximum(0, at - start)[found]
        length = (end - start + 1)[found]
        value = float(np.sum(weight[found] * (1.0 - 0.5 * np.minimum(1.0, delays / length))))
        found_weight, n_found = float(weight[found].sum()), int(found.sum())
        delay = float(delays.mean()) if delays.size else None
    innocent = ~(_covered(first, last, start, end) | _covered(first, last, *excused))
    false_alarms = int(innocent.sum())
    return value - false_alarm_cost * false_alarms, n_found, false_alarms, found_weight, delay


def search_rule(
    exceed: np.ndarray,
    outcomes: Outcomes,
    *,
    multipliers: Sequence[float],
    sustains: Sequence[int],
    false_alarm_cost: float = 1.0,
    min_labels: int = 5,
) -> LearnedRule | None:
    """The multiplier and sustain maximising the objective of the module docstring.

    Args:
        exceed: per row, the residual as a multiple of its side's percentile threshold (> 1:
            beyond it); NaN where no judgement is possible (idle).
        outcomes: the axis's labelled windows.
        multipliers, sustains: the grid searched.
        false_alarm_cost: the cost of one alarm run that overlaps no incident.
        min_labels: labels (incidents + false positives) for full confidence.

    Returns:
        The best rule, or None without any incident to find.
    """
    incidents = outcomes.of_kind("confirmed")
    if incidents[0].size == 0:
        return None
    false_positives = int(np.count_nonzero(outcomes.kind == "false-positive"))
    ig_start, ig_end, _ = outcomes.of_kind("ignore")
    # A window labelled ignore excuses a run; one labelled false positive does not.
    excused = (ig_start, ig_end)
    values = np.nan_to_num(np.asarray(exceed, dtype=np.float64), nan=-np.inf)
    best: tuple[tuple[float, float, int], LearnedRule] | None = None
    total = float(incidents[2].sum())
    labels = incidents[0].size + false_positives
    for multiplier in sorted(set(float(m) for m in multipliers)):
        starts, ends = run_bounds(values > multiplier)
        first, last = starts, ends - 1
        for sustain in sorted(set(int(k) for k in sustains)):
            value, found, false_alarms, weight, delay = _score(
                first, last, sustain, incidents, excused, false_alarm_cost
            )
            key = (round(value, 9), multiplier, -sustain)
            if best is not None and key <= best[0]:
                continue
            recall = weight / total
            fdr = false_alarms / (false_alarms + found) if false_alarms + found else 0.0
            confidence = min(1.0, labels / max(1, min_labels)) * max(0.0, recall - fdr)
            rule = LearnedRule(
                multiplier=multiplier,
                sustain=sustain,
                objective=value,
                incidents=int(incidents[0].size),
                found=found,
                false_alarms=false_alarms,
                false_positive_labels=false_positives,
                mean_delay_samples=delay,
                confidence=confidence,
            )
            best = (key, rule)
    assert best is not None
    return best[1]


def outcome_rows(
    ts: pd.Series, windows: pd.DataFrame, axis: str, weights: Mapping[str, float]
) -> Outcomes:
    """The windows (``start_ts``, ``end_ts``, ``axis``, ``kind``, ``severity``) that concern
    ``axis`` (its own, the machine's: axis None or ``*``) as row ranges of ``ts``; windows
    holding no row are left out. ``weights`` maps a severity to its weight (default 1).
    Incidents of the whole machine become ``ignore`` for the axis (see the module docstring)."""
    if windows.empty:
        return Outcomes.of([])
    times = (
        pd.to_datetime(ts, utc=True)
        if not pd.api.types.is_numeric_dtype(ts)
        else (pd.to_datetime(ts.astype("float64"), unit="s", utc=True))
    )
    ns = times.to_numpy("datetime64[ns]").view("int64")
    axes = windows["axis"].astype(object)
    mine = windows[axes.isna() | axes.isin([axis, "*"])]
    lo = np.searchsorted(
        ns,
        pd.to_datetime(mine["start_ts"], utc=True).to_numpy("datetime64[ns]").view("int64"),
        "left",
    )
    hi = (
        np.searchsorted(
            ns,
            pd.to_datetime(mine["end_ts"], utc=True).to_numpy("datetime64[ns]").view("int64"),
            "right",
        )
        - 1
    )
    weight = mine["severity"].map(lambda s: weights.get(str(s), 1.0)).to_numpy(np.float64)
    kind = mine["kind"].to_numpy(object).copy()
    # An incident of the whole machine may show on other axes only: it excuses this axis's
    # alarms but is not this axis's to find.
    machine_wide = (mine["axis"].isna() | (mine["axis"] == "*")).to_numpy(bool)
    kind[machine_wide & (kind == "confirmed")] = "ignore"
    held = lo <= hi
    return Outcomes(lo[held], hi[held], kind[held], weight[held])


def _exceed(residual: np.ndarray, record: Mapping[str, Any]) -> np.ndarray | None:
    """The residual as a multiple of its side's alert threshold; None when a side's MinC cannot
    be scaled (not beyond zero)."""
    side = record.get("side", "upper")
    parts = []
    if side in ("upper", "both"):
        if not record["MinC"] > 0:
            return None
        parts.append(residual / record["MinC"])
    if side in ("lower", "both"):
        low = record.get("MinC_low")
        if low is None or not low < 0:
            return None
        parts.append(residual / low)
    return np.fmax.reduce(parts) if len(parts) > 1 else parts[0]


def _scaled(record: Mapping[str, Any], rule: LearnedRule) -> dict[str, Any]:
    scaled = dict(record)
    for key in ("MinC", "MaxC", "MinC_low", "MaxC_low"):
        if scaled.get(key) is not None:
            scaled[key] = float(scaled[key]) * rule.multiplier
    scaled["T_long_steps"] = rule.sustain
    scaled["T_short_steps"] = min(int(record["T_short_steps"]), rule.sustain)
    return scaled


def apply_learned(
    records: Mapping[str, Mapping[str, Any]],
    residuals: Mapping[str, np.ndarray],
    outcomes: Mapping[str, Outcomes],
    *,
    multipliers: Sequence[float],
    sustains: Sequence[int],
    false_alarm_cost: float,
    min_labels: int,
    min_confidence: float,
) -> dict[str, dict[str, Any]]:
    """The percentile ``records`` with the learned rule where confident, each saying which
    it uses (``threshold_source``: ``learned`` or ``percentile``, and why, in ``learned``).

    Args:
        records: ``thresholds.json`` entries of the percentile policy.
        residuals: per axis, the residuals compared with the thresholds (smoothed as scoring
            smooths them), row-aligned with the outcomes; channels without one keep theirs.
        outcomes: per axis, its labelled windows.
        multipliers, sustains, false_alarm_cost, min_labels: as in :func:`search_rule`.
        min_confidence: below it an axis keeps its percentile thresholds.
    """
    result: dict[str, dict[str, Any]] = {}
    for axis, record in records.items():
        report: dict[str, Any]
        residual = residuals.get(axis)  # once: a lazy mapping computes on each access
        exceed = None if residual is None else _exceed(residual, record)
        rule = None
        if exceed is None:
            report = {"reason": "no residuals to learn from, or a threshold not beyond zero"}
        else:
            sustain_grid = sorted({*sustains, int(record["T_long_steps"])})
            rule = search_rule(
                exceed,
                outcomes.get(axis, Outcomes.of([])),
                multipliers=multipliers,
                sustains=sustain_grid,
                false_alarm_cost=false_alarm_cost,
                min_labels=min_labels,
            )
            report = (
                {"reason": "no labelled incident in the window"}
                if rule is None
                else {
                    **rule.to_dict(),
                    "reason": "confident"
                    if rule.confidence >= min_confidence
                    else f"confidence below thresholds.learned.min_confidence ({min_confidence})",
                }
            )
        confident = rule is not None and rule.confidence >= min_confidence
        entry = _scaled(record, rule) if confident else dict(record)
        entry["threshold_source"] = "learned" if confident else "percentile"
        entry["learned"] = report
        result[axis] = entry
    return result
