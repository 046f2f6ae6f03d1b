"""Maximal alert/error runs of scored samples, as rows of the events table.

Representation of nested severities: levels are ordered, and an event of severity ``s`` is a
maximal run of samples whose level is **at least** ``s``. An error run therefore always lies
inside an alert event (the alert *episode*), and both are reported: the alert event covers the
whole episode, with its peak over all of it, and the error event covers the error samples only.
Counting alert events counts episodes, whatever their worst level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from Thresholding import run_bounds

from ._time import TimeAxis, time_axis
from .errors import ScoringInputError
from .levels import LEVEL_DTYPE, LEVEL_NAMES, Level
from .rules import parse_thresholds

__all__ = ["EVENT_COLUMNS", "SEVERITIES", "extract_events"]

SEVERITIES: tuple[str, ...] = (Level.ALERT.label, Level.ERROR.label)
"""Event severities, least severe first."""

EVENT_COLUMNS: tuple[str, ...] = (
    "axis",
    "severity",
    "start",
    "end",
    "duration_s",
    "samples",
    "peak_residual",
    "threshold",
    "starts_at_frame_start",
    "ends_at_frame_end",
)
"""Columns of the frame returned by :func:`extract_events`, in order."""


def extract_events(
    ts: Any,
    residuals: Mapping[str, Any],
    levels: Mapping[str, Any],
    thresholds: Mapping[str, Mapping[str, Any]],
    *,
    axes: Sequence[str],
    merge_gap_seconds: float = 0.0,
    cooldown_seconds: float = 0.0,
) -> pd.DataFrame:
    """Turn every maximal run of samples at a severity into one event.

    For each axis and severity (``alert``, ``error``), an event is a maximal run of consecutive
    rows whose level is at least that severity (see the module docstring). Then, per axis and
    severity and in this order:

    1. ``merge_gap_seconds > 0`` joins consecutive events whose gap (next ``start`` minus
       previous ``end``) is at most that many seconds: ``start`` of the first, ``end`` of the
       last, ``samples`` added, ``peak_residual`` the maximum (samples in the gap are not
       counted; ``duration_s`` spans it).
    2. ``cooldown_seconds > 0`` drops an event whose ``start`` is at most that many seconds after
       the ``end`` of the previous *kept* event.

    Parameters
    ----------
    ts:
        Sorted instants of the rows (UTC datetimes or float epoch seconds).
    residuals, levels:
        Axis → 1-D array-like with one entry per row: residuals (floats), and levels as
        :class:`Level` codes, level names, or a ``LEVEL_DTYPE`` categorical.
    thresholds:
        Axis → thresholds entry; ``MinC`` is reported for alert events, ``MaxC`` for errors.
    axes:
        Axes to extract, in output order.
    merge_gap_seconds, cooldown_seconds:
        See above; 0 (default) turns the step off.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_COLUMNS`, one row per event, sorted by ``start``, then axis (in
        ``axes`` order), then severity. ``start``/``end`` are the instants of the first and last
        sample, in the type of ``ts``; ``duration_s`` is ``end - start`` in seconds.
        ``starts_at_frame_start`` says the run begins at the first row (it may continue a run
        seen by an earlier window), ``ends_at_frame_end`` that it reaches the last row (it may
        go on in the next window, and its first samples may be provisional).

    Raises
    ------
    ScoringInputError
        On an unknown axis, arrays of the wrong length, unknown level names, or a negative
        gap/cooldown.
    """
    options = {"merge_gap_seconds": merge_gap_seconds, "cooldown_seconds": cooldown_seconds}
    for name, seconds in options.items():
        is_number = isinstance(seconds, Real) and not isinstance(seconds, bool)
        if not is_number or not np.isfinite(seconds) or seconds < 0:
            raise ScoringInputError(f"{name} must be a number >= 0 (seconds), got {seconds!r}")
    if isinstance(axes, str):
        raise ScoringInputError(f"axes must be a sequence of axis names, got the string {axes!r}")
    axes = list(axes)
    rules = parse_thresholds(thresholds, axes)
    times = time_axis(ts)
    n_rows = times.units.size

    found: list[tuple[np.ndarray, ...]] = []
    for axis_number, axis in enumerate(axes):
        codes = _level_codes(_column(levels, axis, "levels", n_rows), axis)
        values = np.asarray(_column(residuals, axis, "residuals", n_rows), dtype=np.float64)
        rule = rules[axis]
        for severity_number, (level, threshold) in enumerate(
            ((Level.ALERT, rule.min_c), (Level.ERROR, rule.max_c))
        ):
            starts, ends = run_bounds(codes >= level)
            if starts.size == 0:
                continue
            found.append(
                (
                    np.full(starts.size, axis_number, dtype=np.int64),
                    np.full(starts.size, severity_number, dtype=np.int64),
                    starts,
                    ends,
                    _segment_peaks(values, starts, ends),
                    np.full(starts.size, threshold, dtype=np.float64),
                )
            )
    if found:
        group_axis, group_severity, starts, ends, peaks, threshold = (
            np.concatenate(parts) for parts in zip(*found, strict=True)
        )
    else:
        group_axis = group_severity = starts = ends = np.empty(0, dtype=np.int64)
        peaks = threshold = np.empty(0, dtype=np.float64)
    events = _Events(
        group=group_axis * len(SEVERITIES) + group_severity,
        first=starts,
        last=ends - 1,
        samples=ends - starts,
        peak=peaks,
        threshold=threshold,
    )
    if merge_gap_seconds > 0:
        events = events.merged(times, merge_gap_seconds * times.units_per_second)
    if cooldown_seconds > 0:
        events = events.cooled(times, cooldown_seconds * times.units_per_second)
    return events.to_frame(times, axes, n_rows)


@dataclass(frozen=True)
class _Events:
    """Column arrays of events sorted by (group, first row); group = axis x severity."""

    group: np.ndarray
    first: np.ndarray
    last: np.ndarray
    samples: np.ndarray
    peak: np.ndarray
    threshold: np.ndarray

    def _take(self, rows: np.ndarray) -> _Events:
        return _Events(*(getattr(self, column.name)[rows] for column in fields(self)))

    def _gaps(self, times: TimeAxis) -> tuple[np.ndarray, np.ndarray]:
        """Per event except the first: same group as the previous one, and time since its end."""
        same_group = self.group[1:] == self.group[:-1]
        gap = times.units[self.first[1:]] - times.units[self.last[:-1]]
        return same_group, gap

    def merged(self, times: TimeAxis, max_gap: float) -> _Events:
        if self.group.size < 2:
            return self
        same_group, gap = self._gaps(times)
        opens = np.flatnonzero(np.concatenate(([True], ~(same_group & (gap <= max_gap)))))
        closes = np.concatenate((opens[1:], [self.group.size])) - 1
        return _Events(
            group=self.group[opens],
            first=self.first[opens],
            last=self.last[closes],
            samples=np.add.reduceat(self.samples, opens),
            peak=np.fmax.reduceat(self.peak, opens),
            threshold=self.threshold[opens],
        )

    def cooled(self, times: TimeAxis, cooldown: float) -> _Events:
        if self.group.size < 2:
            return self
        same_group, gap = self._gaps(times)
        if not (same_group & (gap <= cooldown)).any():
            return self
        # Whether an event is kept depends on the previous *kept* one, so this is sequential;
        # it loops over events (plain Python numbers), never over samples.
        keep = np.ones(self.group.size, dtype=bool)
        starts = times.units[self.first].tolist()
        ends = times.units[self.last].tolist()
        groups = self.group.tolist()
        kept_group, kept_end = groups[0], ends[0]
        for index in range(1, len(groups)):
            if groups[index] == kept_group and starts[index] - kept_end <= cooldown:
                keep[index] = False
            else:
                kept_group, kept_end = groups[index], ends[index]
        return self._take(keep)

    def to_frame(self, times: TimeAxis, axes: list[str], n_rows: int) -> pd.DataFrame:
        axis_number, severity_number = np.divmod(self.group, len(SEVERITIES))
        order = np.lexsort((severity_number, axis_number, self.first))
        first, last = self.first[order], self.last[order]
        start_units, end_units = times.units[first], times.units[last]
        return pd.DataFrame(
            {
                "axis": pd.Index(axes, dtype="str").take(axis_number[order]),
                "severity": pd.Index(SEVERITIES, dtype="str").take(severity_number[order]),
                "start": times.take(first),
                "end": times.take(last),
                "duration_s": (end_units - start_units) / times.units_per_second,
                "samples": self.samples[order].astype(np.int64),
                "peak_residual": self.peak[order],
                "threshold": self.threshold[order],
                "starts_at_frame_start": first == 0,
                "ends_at_frame_end": last == n_rows - 1,
            },
            columns=list(EVENT_COLUMNS),
        )


def _column(source: Mapping[str, Any], axis: str, name: str, n_rows: int) -> Any:
    try:
        column = source[axis]
    except (KeyError, IndexError, TypeError) as exc:
        raise ScoringInputError(
            f"{name} has no entry for axis {axis!r}; pass one array per axis in axes"
        ) from exc
    if len(column) != n_rows:
        raise ScoringInputError(
            f"{name}[{axis!r}] has {len(column)} entries but ts has {n_rows}; they must align"
        )
    return column


def _level_codes(levels: Any, axis: str) -> np.ndarray:
    """Level codes from codes, names, or a level categorical."""
    dtype = getattr(levels, "dtype", None)
    if dtype == LEVEL_DTYPE:
        codes = np.asarray(pd.Categorical(levels, dtype=LEVEL_DTYPE).codes)
    elif dtype is not None and pd.api.types.is_integer_dtype(dtype):
        codes = np.asarray(levels)
    else:
        codes = LEVEL_DTYPE.categories.get_indexer(pd.Index(np.asarray(levels, dtype=object)))
    if ((codes < Level.IDLE) | (codes > Level.ERROR)).any():
        raise ScoringInputError(
            f"levels[{axis!r}] holds values that are not levels; expected codes 0-3 or the "
            f"names {list(LEVEL_NAMES)}"
        )
    return codes


def _segment_peaks(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Largest non-NaN value of ``values[starts[i]:ends[i]]`` for every (non-empty) run."""
    bounds = np.empty(2 * starts.size, dtype=np.int64)
    bounds[0::2], bounds[1::2] = starts, ends
    if bounds[-1] == values.size:
        bounds = bounds[:-1]  # reduceat runs the last segment to the end of the array
    return np.fmax.reduceat(values, bounds)[0::2]
