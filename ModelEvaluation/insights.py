"""Profiles and insights of a trained asset: per-axis figures and plain sentences about them.

Per axis (from at most 200,000 evenly spaced rows): p5/p50/p95, mean and std of the active
values; median, p95 of the absolute value,
and std of the calibration residuals; the idle share; the expected alert rate; the relative
change of the level over the window (Theil–Sen on daily medians); and the *headroom*, how many
residual σ MaxC lies above the typical residual. Between axes: the correlation of their active
values. :func:`insight_sentences` turns these into sentences; :func:`compare_assets` ranks the
assets of a fleet by headroom (the tightest is the hardest to keep quiet);
:func:`coinciding_alarms` finds the axes whose alarms come together (the morning digest).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from Thresholding import median_of, percentiles_of

__all__ = [
    "AxisInsight",
    "axis_insight",
    "coinciding_alarms",
    "compare_assets",
    "correlated_pairs",
    "insight_sentences",
]

_DAY = 86_400.0
_MAX_ROWS = 200_000
"""Rows used for percentiles, daily medians and correlations (evenly spaced): enough for the
two or three digits a profile shows, and cheap on a 10M-row window."""


_BLOCK_ROWS = 1 << 15
"""Rows per block when counting the active samples: the block's masks stay in the CPU cache."""


def _active_count(values: np.ndarray) -> int:
    """How many samples are active (non-zero and not NaN), block by block: no full-length
    mask."""
    count = 0
    for start in range(0, values.size, _BLOCK_ROWS):
        block = values[start : start + _BLOCK_ROWS]
        count += int(np.count_nonzero((block > 0) | (block < 0)))
    return count


def _every(n: int) -> np.ndarray:
    """Evenly spaced positions, at most :data:`_MAX_ROWS` of ``n``."""
    return np.linspace(0, n - 1, min(n, _MAX_ROWS)).astype(np.intp) if n else np.empty(0, np.intp)


def _evenly(array: np.ndarray) -> np.ndarray:
    """``array`` at the positions :func:`_every` picks: all of them (the array itself, not a
    copy) up to :data:`_MAX_ROWS`."""
    return array if array.size <= _MAX_ROWS else array[_every(array.size)]


@dataclass(frozen=True)
class AxisInsight:
    """One axis's profile (``None`` where it cannot be computed)."""

    p5: float | None
    p50: float | None
    p95: float | None
    mean: float | None
    std: float | None
    idle_share: float
    residual_median: float | None
    residual_p95_abs: float | None
    residual_std: float | None
    headroom_sigma: float | None
    change_share: float | None
    days: float
    alert_events_per_day: float | None

    def to_dict(self) -> dict[str, Any]:
        # The fields are numbers or None: dataclasses.asdict's recursive deep copy (~25 µs, eight
        # per asset) gives the same dict.
        return {field.name: getattr(self, field.name) for field in fields(self)}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _level_change(seconds: np.ndarray, values: np.ndarray, median: float) -> float | None:
    """Relative change of the daily median over the window (None: under 3 days or no level)."""
    # The last day first: most windows span fewer than 3 days, and need no day of each sample.
    if seconds.size == 0 or np.floor((seconds[-1] - seconds[0]) / _DAY) < 2 or median == 0:
        return None
    days = np.floor((seconds - seconds[0]) / _DAY)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])  # seconds are sorted
    ids = days[starts]
    medians = np.array([median_of(part) for part in np.split(values, starts[1:])])
    slope = _theil_sen_slope(ids, medians)
    return slope * float(ids[-1] - ids[0]) / abs(median)


def _theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The median of the pairwise slopes (the Theil-Sen estimator; a window has a few hundred
    days at most, so every pair is cheap, and importing scipy.stats would cost a second)."""
    first, second = np.triu_indices(x.size, 1)
    run = x[second] - x[first]
    keep = run != 0
    return median_of((y[second] - y[first])[keep] / run[keep])


def axis_insight(
    seconds: np.ndarray,
    values: np.ndarray,
    residuals: np.ndarray,
    *,
    maxc: float,
    alert_events_per_day: float | None = None,
    residual_median: float | None = None,
) -> AxisInsight:
    """The profile of one axis from its values and calibration residuals (NaN = left out).

    ``residual_median``, when known, is the median of the finite ``residuals`` (at most
    200,000 evenly spaced ones, as a drift baseline's centre takes them): it is not computed
    again."""
    values = np.asarray(values, dtype=np.float64)
    seconds = np.asarray(seconds, dtype=np.float64)
    span = float(seconds[-1] - seconds[0]) / _DAY if len(seconds) > 1 else 0.0
    picked = _evenly(values)
    sampled = (picked > 0) | (picked < 0)  # active
    live = picked[sampled]
    # Every value picked: its active ones are counted already.
    active = live.size if picked is values else _active_count(values)
    res = _evenly(np.asarray(residuals, dtype=np.float64))
    res = res[np.isfinite(res)]
    if live.size:
        p5, p50, p95 = percentiles_of(live, [5, 50, 95])
        mean, std = float(live.mean()), float(live.std())
        change = _level_change(_evenly(seconds)[sampled], live, p50)
    else:
        p5 = p50 = p95 = mean = std = change = None
    if res.size > 1:
        med = median_of(res) if residual_median is None else residual_median
        sigma = float(res.std())
        p95_abs = percentiles_of(np.abs(res), [95])[0]
        headroom = _finite((maxc - med) / sigma) if sigma > 0 else None
    else:
        med = sigma = p95_abs = headroom = None
    return AxisInsight(
        p5=p5,
        p50=p50,
        p95=p95,
        mean=mean,
        std=std,
        idle_share=1.0 - active / values.size if values.size else 0.0,
        residual_median=med,
        residual_p95_abs=p95_abs,
        residual_std=sigma,
        headroom_sigma=headroom,
        change_share=change,
        days=span,
        alert_events_per_day=alert_events_per_day,
    )


def correlated_pairs(
    columns: Mapping[str, np.ndarray], threshold: float = 0.8
) -> list[tuple[str, str, float]]:
    """Pairs of axes whose active values correlate at ``|r| >= threshold``, strongest first."""
    names = list(columns)
    if len(names) < 2:
        return []
    arrays = [_evenly(np.asarray(columns[a], dtype=np.float64)) for a in names]
    # The rows where every axis is active, one axis at a time (no reduction along short rows).
    usable = np.isfinite(arrays[0]) & (arrays[0] != 0)
    for array in arrays[1:]:
        usable &= np.isfinite(array) & (array != 0)
    if np.count_nonzero(usable) < 3:
        return []
    table = np.column_stack([array[usable] for array in arrays])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(table, rowvar=False).tolist()
    pairs = [
        (names[i], names[j], corr[i][j])
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if math.isfinite(corr[i][j]) and abs(corr[i][j]) >= threshold
    ]
    return sorted(pairs, key=lambda pair: -abs(pair[2]))


def insight_sentences(
    insights: Mapping[str, AxisInsight],
    pairs: Sequence[tuple[str, str, float]] = (),
    *,
    change_share: float = 0.05,
) -> list[str]:
    """Plain sentences: level changes beyond ``change_share``, the tightest headroom, strongly
    correlated axes."""
    out = []
    for axis, item in insights.items():
        if item.change_share is not None and abs(item.change_share) >= change_share:
            way = "rose" if item.change_share > 0 else "fell"
            out.append(
                f"{axis} {way} {abs(item.change_share):.0%} over {item.days:.0f} days "
                "(trend of its daily median)"
            )
    rooms = {a: i.headroom_sigma for a, i in insights.items() if i.headroom_sigma is not None}
    if len(rooms) > 1:
        tight = min(rooms, key=lambda axis: rooms[axis])
        out.append(
            f"{tight} has the tightest headroom: MaxC is {rooms[tight]:.1f} residual sigma above "
            f"its typical residual (median of all axes {np.median(list(rooms.values())):.1f})"
        )
    for first, second, r in pairs[:3]:
        out.append(f"{first} and {second} move together (correlation {r:.2f})")
    return out


def compare_assets(headrooms: Mapping[str, Mapping[str, float | None]]) -> dict[str, Any]:
    """Per asset (axis → headroom in σ): its tightest headroom, a difficulty score (how many
    fleet standard deviations its tightest headroom lies below the fleet's mean; higher =
    harder) and sentences naming the tightest asset."""
    tightest = {
        asset: min((h for h in rooms.values() if h is not None), default=None)
        for asset, rooms in headrooms.items()
    }
    known = {a: h for a, h in tightest.items() if h is not None}
    values = np.array(list(known.values()), dtype=np.float64)
    spread = float(values.std()) if values.size > 1 else 0.0
    centre = float(values.mean()) if values.size else 0.0
    rows = {
        asset: {
            "tightest_headroom_sigma": h,
            "difficulty": None if h is None or spread == 0 else (centre - h) / spread,
        }
        for asset, h in tightest.items()
    }
    sentences = []
    if len(known) > 1:
        worst = min(known, key=lambda asset: known[asset])
        sentences.append(
            f"asset {worst} has the tightest headroom of the fleet ({known[worst]:.1f} sigma; "
            f"fleet mean {centre:.1f})"
        )
    return {"assets": rows, "insights": sentences}


def _episodes(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping intervals joined (an error inside its alert is one episode), sorted."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    new = np.r_[True, starts[1:] > ends[:-1]]
    last = np.r_[np.flatnonzero(new)[1:] - 1, starts.size - 1]
    return starts[new], ends[last]


def _overlapping(starts: np.ndarray, ends: np.ndarray, other: tuple[np.ndarray, np.ndarray]) -> int:
    """How many of the intervals overlap one of ``other``'s (sorted, disjoint) episodes."""
    other_starts, other_ends = other
    first = np.searchsorted(other_ends, starts, side="left")  # first episode ending ≥ start
    inside = first < other_starts.size
    hit = np.zeros(starts.size, dtype=bool)
    hit[inside] = other_starts[first[inside]] <= ends[inside]
    return int(np.count_nonzero(hit))


def coinciding_alarms(
    axes: Sequence[str],
    starts: Sequence[Any],
    ends: Sequence[Any],
    *,
    min_episodes: int = 3,
    min_share: float = 0.5,
) -> list[dict[str, Any]]:
    """Pairs of axes whose alarms come together, most coinciding first.

    Each axis's events (alert and error alike; ``axes``/``starts``/``ends`` one entry per event,
    times as numbers or timestamps) are joined into episodes where they overlap. For a pair,
    ``share`` = (episodes of either axis that overlap an episode of the other) / (episodes of
    both); a pair is listed when each axis has at least ``min_episodes`` episodes and the share
    is at least ``min_share``. One cause seen on several axes: a move of several joints
    together, or a faulty axis the others are predicted from (``cross``, ``pca``).
    """
    names = np.asarray(axes, dtype=object)
    start_ns = _as_numbers(starts)
    end_ns = _as_numbers(ends)
    episodes = {
        axis: _episodes(start_ns[names == axis], end_ns[names == axis])
        for axis in sorted(set(names.tolist()))
    }
    episodes = {a: e for a, e in episodes.items() if e[0].size >= min_episodes}
    found = []
    ordered = sorted(episodes)
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            together = _overlapping(*episodes[first], episodes[second]) + _overlapping(
                *episodes[second], episodes[first]
            )
            total = episodes[first][0].size + episodes[second][0].size
            share = together / total
            if share >= min_share:
                found.append(
                    {
                        "axes": [first, second],
                        "share": share,
                        "coinciding": together,
                        "episodes": total,
                        "sentence": f"{first} and {second} alarms coincide: {together} of "
                        f"their {total} alarm episodes ({share:.0%}) overlap one of the other",
                    }
                )
    return sorted(found, key=lambda row: (-row["share"], -row["episodes"], row["axes"]))


def _as_numbers(values: Sequence[Any]) -> np.ndarray:
    """Times as int64 nanoseconds (timestamps) or float seconds (numbers)."""
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        return array.astype(np.float64)
    import pandas as pd  # only for timestamps; insights are imported by training

    return pd.to_datetime(pd.Series(values), utc=True).to_numpy("datetime64[ns]").view("int64")
