"""Maximal alert/error runs of scored samples, as rows of the events table.

Representation of nested severities: levels are ordered, and an event of severity ``s`` is a
maximal run of samples whose level is **at least** ``s``. An error run therefore always lies
inside an alert event (the alert *episode*), and both are reported: the alert event covers the
whole episode, with its peak over all of it, and the error event covers the error samples only.
Counting alert events counts episodes, whatever their worst level.

The *peak* of an event is its sample furthest beyond the alert level, measured as
``(r − center) / (MinC − center)`` above and ``(r − center) / (MinC_low − center)`` below; the
event reports that sample's time, residual, side (``above``/``below``), actual and expected
value, and ``ratio``: the same measure against the event's own threshold (MinC for alerts,
MaxC for errors), so 1.0 means "just at the threshold". Machine-channel events (axis ``*``)
also name the axes that contributed most at the peak, with their share of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from ._time import TimeAxis, time_axis
from .errors import ScoringInputError
from .levels import LEVEL_DTYPE, LEVEL_NAMES, Level
from .rules import MACHINE_CHANNEL, AxisRule, parse_thresholds

__all__ = ["EVENT_COLUMNS", "SENSOR_SEVERITY", "SEVERITIES", "extract_events", "sensor_events"]

SEVERITIES: tuple[str, ...] = (Level.ALERT.label, Level.ERROR.label)
"""Alarm event severities, least severe first."""
SENSOR_SEVERITY = Level.SENSOR.label
"""Severity of sensor-fault events (:func:`sensor_events`): a kind of its own, not an alarm."""

EVENT_COLUMNS: tuple[str, ...] = (
    "axis",
    "severity",
    "start",
    "end",
    "duration_s",
    "samples",
    "peak_residual",
    "threshold",
    "side",
    "peak_ts",
    "actual",
    "expected",
    "ratio",
    "contributors",
    "starts_at_frame_start",
    "ends_at_frame_end",
)
"""Columns of the frame returned by :func:`extract_events`, in order."""

TOP_CONTRIBUTORS = 3
"""Axes named per machine-channel event."""

SIDES = pd.Index(["above", "below"], dtype="str")
"""An event's ``side``, by whether its peak lies below the center."""

_SEVERITY_CODES = (int(Level.ALERT), int(Level.ERROR))
"""The level codes of :data:`SEVERITIES`, as plain ints: an array compares with an int
several times faster than with the enum member."""


def extract_events(
    ts: Any,
    residuals: Mapping[str, Any],
    levels: Mapping[str, Any],
    thresholds: Mapping[str, Mapping[str, Any]],
    *,
    axes: Sequence[str],
    merge_gap_seconds: float = 0.0,
    cooldown_seconds: float = 0.0,
    values: Mapping[str, Any] | None = None,
    expected: Mapping[str, Any] | None = None,
    contributions: tuple[Sequence[str], Any] | None = None,
    raw_residuals: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Turn every maximal run of samples at a severity into one event.

    For each channel (axis, or ``*`` for the machine) and severity (``alert``, ``error``), an
    event is a maximal run of consecutive rows whose level is at least that severity (see the
    module docstring). Then, per channel and severity and in this order:

    1. ``merge_gap_seconds > 0`` joins consecutive events whose gap (next ``start`` minus
       previous ``end``) is at most that many seconds: ``start`` of the first, ``end`` of the
       last, ``samples`` added, the peak of the furthest one (samples in the gap are not
       counted; ``duration_s`` spans it).
    2. ``cooldown_seconds > 0`` drops an event whose ``start`` is at most that many seconds after
       the ``end`` of the previous *kept* event.

    Parameters
    ----------
    ts:
        Sorted instants of the rows (UTC datetimes or float epoch seconds).
    residuals, levels:
        Channel → 1-D array-like with one entry per row: the residuals compared with the
        thresholds (the machine score for ``*``), and levels as :class:`Level` codes, level
        names, or a ``LEVEL_DTYPE`` categorical.
    thresholds:
        Channel → thresholds entry (``MinC``, ``MaxC``, their lower counterparts when the
        lower side is on, ``center``).
    axes:
        Channels to extract, in output order.
    merge_gap_seconds, cooldown_seconds:
        See above; 0 (default) turns the step off.
    values, expected:
        Axis → actual and expected value per row, reported at each event's peak (NaN when
        not given, and for ``*``).
    contributions:
        (axis names, rows × axes array of each axis's share of the machine score, or anything
        that gives the rows of an integer array of rows, as :class:`Scoring.MachineShares`):
        the top axes at a machine event's peak are reported in ``contributors`` (JSON).
    raw_residuals:
        Axis → the residual before smoothing, per row: an axis missing from ``expected`` reports
        ``values − raw_residuals`` at the peak as its expected value.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_COLUMNS`, one row per event, sorted by ``start``, then channel (in
        ``axes`` order), then severity. ``start``/``end``/``peak_ts`` are instants in the type
        of ``ts``; ``duration_s`` is ``end - start`` in seconds. ``starts_at_frame_start`` says
        the run begins at the first row (it may continue a run seen by an earlier window),
        ``ends_at_frame_end`` that it reaches the last row (it may go on in the next window,
        and its first samples may be provisional).

    Raises
    ------
    ScoringInputError
        On an unknown channel, arrays of the wrong length, unknown level names, or a negative
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

    found: list[_Events] = []
    for axis_number, axis in enumerate(axes):
        codes = _level_codes(_column(levels, axis, "levels", n_rows), axis)
        series = np.asarray(_column(residuals, axis, "residuals", n_rows), dtype=np.float64)
        rule = rules[axis]
        changes = _changes(codes)
        for severity_number, level in enumerate(_SEVERITY_CODES):
            starts, ends = _level_runs(codes, changes, lambda c, at=level: c >= at)
            if starts.size == 0:
                continue
            found.append(
                _Events(
                    group=np.full(starts.size, axis_number * len(SEVERITIES) + severity_number),
                    first=starts,
                    last=ends - 1,
                    samples=ends - starts,
                    peak_at=_run_peaks(series, rule, starts, ends),
                )
            )
    events = _Events.concatenate(found)
    if merge_gap_seconds > 0:
        events = events.merged(
            times, merge_gap_seconds * times.units_per_second, axes, residuals, rules
        )
    if cooldown_seconds > 0:
        events = events.cooled(times, cooldown_seconds * times.units_per_second)
    return events.to_frame(
        times,
        axes,
        n_rows,
        _Details(residuals, rules, values, expected, contributions, raw_residuals),
    )


def _changes(codes: np.ndarray) -> np.ndarray:
    """Rows ``k`` whose level differs from row ``k + 1``'s (one pass over the codes)."""
    return np.flatnonzero(codes[1:] != codes[:-1])


def _level_runs(
    codes: np.ndarray, changes: np.ndarray, flags: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``run_bounds(flags(codes))`` from the rows where the codes change (:func:`_changes`):
    a run of flagged rows can only begin or end where the level changes, so only those rows
    are looked at, not the whole window once per severity."""
    flips = flags(codes[changes]) != flags(codes[changes + 1])
    edges = changes[flips].astype(np.int64, copy=False)
    edges += 1
    if codes.size and flags(codes[:1])[0]:
        edges = np.concatenate(([0], edges))
    if codes.size and flags(codes[-1:])[0]:
        edges = np.concatenate((edges, [codes.size]))
    return edges[0::2], edges[1::2]


def _deviation(series: np.ndarray, rule: AxisRule) -> np.ndarray:
    """How far each sample is beyond the alert level, as a multiple of its distance (NaN-free)."""
    parts = []
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule.upper:
            parts.append((series - rule.center) / (rule.min_c - rule.center))
        if rule.lower and rule.min_c_low is not None:
            parts.append((series - rule.center) / (rule.min_c_low - rule.center))
    deviation = parts[0] if len(parts) == 1 else np.fmax(parts[0], parts[1])
    return np.where(np.isnan(deviation), -np.inf, deviation)


def _run_peaks(
    series: np.ndarray, rule: AxisRule, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Row of each run's peak, the sample furthest beyond the alert level (the first on ties).

    Only the samples inside the runs are measured (a few percent of a window's rows).
    """
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths  # where each run starts among the gathered rows
    rows = np.arange(int(lengths.sum())) + np.repeat(starts - offsets, lengths)
    return rows[_first_max(_deviation(series[rows], rule), offsets, lengths)]


def _first_max(values: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Position in ``values`` of the largest value of each segment (the first on ties).

    Segment ``i`` is ``values[offsets[i] : offsets[i] + lengths[i]]``; segments are
    consecutive and non-empty, and ``values`` holds no NaN.
    """
    largest = np.maximum.reduceat(values, offsets)
    hits = np.flatnonzero(values == np.repeat(largest, lengths))
    segment = np.searchsorted(offsets, hits, side="right") - 1
    return hits[np.concatenate(([True], segment[1:] != segment[:-1]))]


@dataclass(frozen=True)
class _Details:
    """What an event reports about its peak sample."""

    residuals: Mapping[str, Any]
    rules: Mapping[str, AxisRule]
    values: Mapping[str, Any] | None
    expected: Mapping[str, Any] | None
    contributions: tuple[Sequence[str], Any] | None
    raw_residuals: Mapping[str, Any] | None = None

    def describe(
        self, axes: list[str], axis_numbers: np.ndarray, errors: np.ndarray, rows: np.ndarray
    ) -> dict[str, Any]:
        """Per event (channel number, whether it is an error, peak row): the reported columns.

        Computed channel by channel on the peak rows only.
        """
        size = rows.size
        out: dict[str, Any] = {
            name: np.full(size, np.nan)
            for name in ("peak_residual", "threshold", "actual", "expected", "ratio")
        }
        out["below"] = np.zeros(size, dtype=bool)
        out["contributors"] = [None] * size
        for axis_number in np.unique(axis_numbers):
            axis = axes[int(axis_number)]
            events = np.flatnonzero(axis_numbers == axis_number)
            for name, value in self._channel(axis, errors[events], rows[events]).items():
                if name == "contributors":
                    for event, text in zip(events.tolist(), value, strict=True):
                        out[name][event] = text
                else:
                    out[name][events] = value
        return out

    def _channel(self, axis: str, errors: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
        rule = self.rules[axis]
        residual = np.asarray(self.residuals[axis], dtype=np.float64)[rows]
        if rule.lower and rule.upper:
            below = residual < rule.center
        else:
            below = np.full(rows.size, rule.lower)
        above_levels = np.where(errors, rule.max_c, rule.min_c)
        if rule.lower:
            assert rule.min_c_low is not None and rule.max_c_low is not None  # by validation
            threshold = np.where(
                below, np.where(errors, rule.max_c_low, rule.min_c_low), above_levels
            )
        else:
            threshold = above_levels
        distance = threshold - rule.center
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(distance != 0, (residual - rule.center) / distance, np.inf)
        return {
            "peak_residual": residual,
            "threshold": threshold,
            "below": below,
            "actual": self._pick(self.values, axis, rows),
            "expected": self._expected(axis, rows),
            "ratio": ratio,
            "contributors": self._contributors(axis, rows),
        }

    @staticmethod
    def _pick(source: Mapping[str, Any] | None, axis: str, rows: np.ndarray) -> np.ndarray:
        if source is None or axis not in source:
            return np.full(rows.size, np.nan)
        return np.asarray(source[axis], dtype=np.float64)[rows]

    def _expected(self, axis: str, rows: np.ndarray) -> np.ndarray:
        if self.expected is not None and axis in self.expected:
            return self._pick(self.expected, axis, rows)
        if self.raw_residuals is None or axis not in self.raw_residuals:
            return np.full(rows.size, np.nan)
        return self._pick(self.values, axis, rows) - self._pick(self.raw_residuals, axis, rows)

    def _contributors(self, axis: str, rows: np.ndarray) -> list[str | None]:
        if axis != MACHINE_CHANNEL or self.contributions is None:
            return [None] * rows.size
        names, shares = self.contributions
        row_shares = np.nan_to_num(np.asarray(shares[rows], dtype=np.float64), nan=0.0)
        top = np.argsort(-row_shares, axis=1, kind="stable")[:, :TOP_CONTRIBUTORS]
        # json.dumps([{"axis": name, "share": round(share, 4)}, ...]) of each event, with the
        # names encoded once: a machine channel can have tens of thousands of events. The
        # shares are finite (nan_to_num), and JSON writes a finite float as its repr.
        encoded = np.array([json.dumps(name) for name in names], dtype=object)
        labels = encoded[top].tolist()  # per event, its top axes' names and their shares
        chosen = np.take_along_axis(row_shares, top, axis=1).tolist()
        if top.shape[1] == 3:  # the usual case, written out: no generator per event
            return [
                f'[{{"axis": {a}, "share": {round(x, 4)!r}}}, '
                f'{{"axis": {b}, "share": {round(y, 4)!r}}}, '
                f'{{"axis": {c}, "share": {round(z, 4)!r}}}]'
                for (a, b, c), (x, y, z) in zip(labels, chosen, strict=True)
            ]
        return [
            "["
            + ", ".join(
                f'{{"axis": {name}, "share": {round(share, 4)!r}}}'
                for name, share in zip(names_of, shares_of, strict=True)
            )
            + "]"
            for names_of, shares_of in zip(labels, chosen, strict=True)
        ]


@dataclass(frozen=True)
class _Events:
    """Column arrays of events sorted by (group, first row); group = channel x severity."""

    group: np.ndarray
    first: np.ndarray
    last: np.ndarray
    samples: np.ndarray
    peak_at: np.ndarray

    @staticmethod
    def concatenate(parts: list[_Events]) -> _Events:
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return _Events(empty, empty, empty, empty, empty)
        return _Events(
            *(
                np.concatenate([getattr(part, column.name) for part in parts])
                for column in fields(_Events)
            )
        )

    def _take(self, rows: np.ndarray) -> _Events:
        return _Events(*(getattr(self, column.name)[rows] for column in fields(self)))

    def _gaps(self, times: TimeAxis) -> tuple[np.ndarray, np.ndarray]:
        """Per event except the first: same group as the previous one, and time since its end."""
        same_group = self.group[1:] == self.group[:-1]
        gap = times.units[self.first[1:]] - times.units[self.last[:-1]]
        return same_group, gap

    def merged(
        self,
        times: TimeAxis,
        max_gap: float,
        axes: list[str],
        residuals: Mapping[str, Any],
        rules: Mapping[str, AxisRule],
    ) -> _Events:
        if self.group.size < 2:
            return self
        same_group, gap = self._gaps(times)
        opens = np.flatnonzero(np.concatenate(([True], ~(same_group & (gap <= max_gap)))))
        closes = np.concatenate((opens[1:], [self.group.size])) - 1
        # The merged event's peak is its furthest member's peak.
        deviation = np.empty(self.group.size)
        axis_numbers = self.group // len(SEVERITIES)
        for axis_number in np.unique(axis_numbers):
            members = axis_numbers == axis_number
            axis = axes[int(axis_number)]
            series = np.asarray(residuals[axis], dtype=np.float64)
            deviation[members] = _deviation(series[self.peak_at[members]], rules[axis])
        peaks = self.peak_at[_first_max(deviation, opens, closes - opens + 1)]
        return _Events(
            group=self.group[opens],
            first=self.first[opens],
            last=self.last[closes],
            samples=np.add.reduceat(self.samples, opens),
            peak_at=peaks.astype(np.int64, copy=False),
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

    def to_frame(
        self, times: TimeAxis, axes: list[str], n_rows: int, details: _Details
    ) -> pd.DataFrame:
        axis_number, severity_number = np.divmod(self.group, len(SEVERITIES))
        order = np.lexsort((severity_number, axis_number, self.first))
        first, last = self.first[order], self.last[order]
        start_units, end_units = times.units[first], times.units[last]
        peaks = self.peak_at[order]
        described = details.describe(
            axes, axis_number[order], severity_number[order] == SEVERITIES.index("error"), peaks
        )
        # The columns are given in EVENT_COLUMNS order: a ``columns=`` argument would cost
        # a selection per call (about half of building the frame) for the same frame.
        return pd.DataFrame(
            {
                "axis": pd.Index(axes, dtype="str").take(axis_number[order]),
                "severity": pd.Index(SEVERITIES, dtype="str").take(severity_number[order]),
                "start": times.take(first),
                "end": times.take(last),
                "duration_s": (end_units - start_units) / times.units_per_second,
                "samples": self.samples[order].astype(np.int64),
                "peak_residual": described["peak_residual"],
                "threshold": described["threshold"],
                "side": SIDES.take(described["below"].astype(np.intp)),
                "peak_ts": times.take(peaks),
                "actual": described["actual"],
                "expected": described["expected"],
                "ratio": described["ratio"],
                "contributors": pd.array(described["contributors"], dtype=object),
                "starts_at_frame_start": first == 0,
                "ends_at_frame_end": last == n_rows - 1,
            }
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
    # Codes (what ScoreResult holds) are tested first: comparing a NumPy dtype with the
    # categorical LEVEL_DTYPE formats the categorical's repr on every call (~70 µs).
    if isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.integer):
        codes = np.asarray(levels)
    elif dtype == LEVEL_DTYPE:
        codes = np.asarray(pd.Categorical(levels, dtype=LEVEL_DTYPE).codes)
    elif dtype is not None and pd.api.types.is_integer_dtype(dtype):
        codes = np.asarray(levels)
    else:
        codes = LEVEL_DTYPE.categories.get_indexer(pd.Index(np.asarray(levels, dtype=object)))
    if codes.size and (codes.min() < Level.IDLE or codes.max() > Level.ERROR):
        raise ScoringInputError(
            f"levels[{axis!r}] holds values that are not levels; expected codes "
            f"0-{int(Level.ERROR)} or the names {list(LEVEL_NAMES)}"
        )
    return codes


def sensor_events(
    ts: Any, levels: Mapping[str, Any], axes: Sequence[str], steps: int
) -> pd.DataFrame:
    """One ``sensor`` event per maximal run of ``SENSOR`` levels of each axis.

    Columns :data:`EVENT_COLUMNS`; ``threshold`` is ``steps`` (the shortest fault),
    ``peak_residual`` 0 and the peak the run's first sample (a dead sensor has no residual).
    """
    times = time_axis(ts)
    n_rows = times.units.size
    parts = []
    for axis in axes:
        codes = _level_codes(_column(levels, axis, "levels", n_rows), axis)
        starts, ends = _level_runs(codes, _changes(codes), lambda c: c == Level.SENSOR)
        if not starts.size:
            continue
        last = ends - 1
        parts.append(
            pd.DataFrame(
                {
                    "axis": axis,
                    "severity": SENSOR_SEVERITY,
                    "start": times.take(starts),
                    "end": times.take(last),
                    "duration_s": (times.units[last] - times.units[starts])
                    / times.units_per_second,
                    "samples": (ends - starts).astype(np.int64),
                    "peak_residual": 0.0,
                    "threshold": float(steps),
                    "side": None,
                    "peak_ts": times.take(starts),
                    "actual": np.nan,
                    "expected": np.nan,
                    "ratio": np.nan,
                    "contributors": None,
                    "starts_at_frame_start": starts == 0,
                    "ends_at_frame_end": last == n_rows - 1,
                },
                columns=list(EVENT_COLUMNS),
            )
        )
    if not parts:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    return pd.concat(parts, ignore_index=True).sort_values("start", kind="stable")
