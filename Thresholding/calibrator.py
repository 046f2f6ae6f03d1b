"""Learn per-axis MinC/MaxC (both sides), sustain steps and the machine channel's thresholds.

Policy (see :class:`~Thresholding.config.ThresholdPolicy` for the keys). The residuals are
the calibration residuals the caller chose (``holdout``: out-of-fold; ``in_sample``: the
final model's own), smoothed first when ``smoothing`` is on. Per axis, ``center`` is their
median and ``scale`` their tail spread (the 95th percentile of ``|r − center|`` over 1.96: the
standard deviation for normal residuals; their standard deviation when that is 0);
``z = (r - center) / scale``.

``pooling: machine`` (default)
    One multiplier for all axes: ``k_alert`` and ``k_error`` are the ``minc_percentile`` and
    ``maxc_percentile`` of the per-sample largest ``z`` across axes (``|z|`` for ``side:
    both``, ``-z`` for ``lower``). So the percentile is the share of samples on which *some*
    axis crosses, whatever the number of axes. ``MinC = center + k_alert · scale`` (upper) and
    ``MinC_low = center − k_alert · scale`` (lower); likewise MaxC with ``k_error``. Method
    ``"pooled"``.

``pooling: axis`` (the seed)
    1. Upper side: positives are the finite residuals > 0. With at least
       ``min_pos_for_percentile`` of them: with at least ``min_pos_for_trim`` positives and
       ``trim_top_ratio > 0``, the largest ``floor(trim_top_ratio * positives)`` are dropped;
       MinC and MaxC are the ``minc_percentile`` and ``maxc_percentile`` (linear interpolation,
       as ``np.percentile``) of the rest. Method ``"percentile"``.
    2. Otherwise, with ``use_mad_fallback``: over all finite residuals, ``med`` = median and
       ``MAD = 1.4826 * median(|r - med|)``; MinC = med + mad_k_minc·MAD, MaxC = med +
       mad_k_maxc·MAD. Method ``"mad"``. Without the fallback, calibration fails for that axis.
    3. The lower side is the same on the negated residuals, negated back.

Steps (both poolings)
    ``default = max(min_steps, ceil(seconds_default / dt_seconds))``. The lengths of the
    maximal runs of consecutive samples beyond MinC (alerts) and MaxC (errors), each side
    on its own, are measured; ``T_long_steps = max(default_long, ceil(quantile(alert runs,
    alert_quantile)))`` when there are runs, else ``default_long``; likewise
    ``T_short_steps``. NaN residuals (idle or missing samples) break runs.

Machine channel (``*``)
    Its score per sample is the mean of ``z²`` over the usable axes (``ssr``), or a machine
    model's score (``pca``, ``iforest``); MinC/MaxC are its ``minc``/``maxc`` percentiles,
    upper side only, with steps as above.

Expected alarm rate
    Levels are computed on the calibration residuals with the learned thresholds; each
    channel's ``expected_events_per_day`` is its number of alert episodes (runs closer than
    ``merge_gap_seconds`` counted once, as the event store joins them) divided by the days of
    usable calibration samples. With ``max_events_per_day`` and a total above it, the
    alert and error steps of the noisiest channel are raised by one at a time (up to 4x their
    start), then the alert percentile halfway to 100 (up to 5 times), until the total fits;
    ``budget_`` lists what changed.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from pydantic import ValidationError

from .config import SEED_POLICY, ThresholdPolicy
from .runs import row_runs
from .selection import (
    SMALL,
    domain_median,
    domain_percentiles,
    median_of,
    percentiles_of,
    quantiles_of,
)
from .smoothing import smooth
from .ssr import ssr_score

__all__ = [
    "MACHINE_CHANNEL",
    "MAD_SCALE",
    "AxisThreshold",
    "CalibrationError",
    "ThresholdCalibrator",
    "alarm_mask",
    "robust_scale",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

MAD_SCALE = 1.4826
"""Scales the median absolute deviation to the standard deviation of normal data."""

MACHINE_CHANNEL = "*"
"""The key of the machine channel in ``thresholds.json`` and its axis name in events."""

TAIL_SCALE = 1.959964
"""The 95th percentile of ``|x|`` for standard normal ``x``."""

_FLOAT_SLACK = 1e-9
"""Tolerance before floor/ceil so 0.29 * 100 counts as 29 and 5.0000000001 as 5."""

_SECONDS_PER_DAY = 86_400.0


class CalibrationError(ValueError):
    """Thresholds cannot be learned from the given residuals, or a saved record is malformed."""


def robust_scale(values: np.ndarray) -> tuple[float, float]:
    """(median, tail scale) of the finite ``values``: the 95th percentile of ``|v − median|``
    over 1.96, which is the standard deviation for normal data and, unlike the MAD, sees the
    jumps of a sample-and-hold signal; the std (or 1e-12) when it is 0."""
    if values.size <= SMALL:
        # A short series: its finite values, gathered once.
        finite_values = values[np.isfinite(values)]
        if finite_values.size == 0:
            return math.nan, math.nan
        center = median_of(finite_values)
        deviation = percentiles_of(np.abs(finite_values - center), [95.0])
    else:
        count = int(np.count_nonzero(np.isfinite(values)))
        if count == 0:
            return math.nan, math.nan

        def finite(rows: slice | np.ndarray) -> np.ndarray:
            block = values[rows]
            return block[np.isfinite(block)]

        # Selected block by block (Thresholding.selection): no copy of the residuals.
        center = domain_median(finite, values.size, count)
        deviation = domain_percentiles(
            lambda rows: np.abs(finite(rows) - center), values.size, count, [95.0]
        )
    scale = deviation[0] / TAIL_SCALE
    if not scale > 0:
        scale = float(np.compress(np.isfinite(values), values).std())
    if not scale > 0:
        scale = 1e-12 * max(1.0, abs(center))
    return center, scale


@dataclass(frozen=True)
class AxisThreshold:
    """Learned thresholds of one channel; :meth:`to_dict` gives its ``thresholds.json`` entry."""

    minc: float
    maxc: float
    t_long_steps: int
    t_short_steps: int
    dt_seconds: float
    method: str
    policy: ThresholdPolicy
    n_residuals: int
    n_positives: int
    n_trimmed: int
    n_alert_runs: int
    n_error_runs: int
    minc_low: float | None = None
    maxc_low: float | None = None
    center: float = 0.0
    scale: float = 1.0
    side: str = "upper"
    calibration: str = "in_sample"
    expected_events_per_day: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the ``thresholds.json`` record with plain Python floats and ints."""
        record: dict[str, Any] = {"MinC": float(self.minc), "MaxC": float(self.maxc)}
        if self.minc_low is not None and self.maxc_low is not None:
            record["MinC_low"] = float(self.minc_low)
            record["MaxC_low"] = float(self.maxc_low)
        record.update(
            {
                "T_long_steps": int(self.t_long_steps),
                "T_short_steps": int(self.t_short_steps),
                "dt_seconds": float(self.dt_seconds),
                "method": self.method,
                "calibration": self.calibration,
                "side": self.side,
                "center": float(self.center),
                "scale": float(self.scale),
                "smoothing": self.policy.smoothing.model_dump(mode="json"),
                "expected_events_per_day": None
                if self.expected_events_per_day is None
                else round(float(self.expected_events_per_day), 6),
                "policy": self.policy.model_dump(mode="json"),
                "counts": {
                    "residuals": int(self.n_residuals),
                    "positives": int(self.n_positives),
                    "trimmed": int(self.n_trimmed),
                    "alert_runs": int(self.n_alert_runs),
                    "error_runs": int(self.n_error_runs),
                },
            }
        )
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], axis: str = "?") -> AxisThreshold:
        """Rebuild a record from :meth:`to_dict` output (also records written before the
        lower side existed: they are upper-side, in-sample, with the seed's policy).

        Raises
        ------
        CalibrationError
            If a key is missing, a value has the wrong type, or the policy is invalid.
        """
        try:
            counts = data.get("counts", {})
            legacy = "side" not in data
            echo = dict(data.get("policy", {}))
            policy = ThresholdPolicy.model_validate({**SEED_POLICY, **echo} if legacy else echo)
            low = data.get("MinC_low"), data.get("MaxC_low")
            expected = data.get("expected_events_per_day")
            return cls(
                minc=float(data["MinC"]),
                maxc=float(data["MaxC"]),
                t_long_steps=int(data["T_long_steps"]),
                t_short_steps=int(data["T_short_steps"]),
                dt_seconds=float(data["dt_seconds"]),
                method=str(data["method"]),
                policy=policy,
                n_residuals=int(counts.get("residuals", 0)),
                n_positives=int(counts.get("positives", 0)),
                n_trimmed=int(counts.get("trimmed", 0)),
                n_alert_runs=int(counts.get("alert_runs", 0)),
                n_error_runs=int(counts.get("error_runs", 0)),
                minc_low=None if low[0] is None else float(low[0]),
                maxc_low=None if low[1] is None else float(low[1]),
                center=float(data.get("center", 0.0)),
                scale=float(data.get("scale", 1.0)),
                side=str(data.get("side", "upper")),
                calibration=str(data.get("calibration", "in_sample")),
                expected_events_per_day=None if expected is None else float(expected),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
            raise CalibrationError(
                f"thresholds for axis {axis!r} are malformed ({type(exc).__name__}: {exc}); "
                "re-train to write a current thresholds.json"
            ) from exc


def default_steps(seconds: float, dt_seconds: float, min_steps: int = 1) -> int:
    """Return ``max(min_steps, ceil(seconds / dt_seconds))``, tolerant of float rounding.

    With ``dt_seconds = 1.891``: 5 s → 3 steps, 3 s → 2 steps.
    """
    return max(int(min_steps), 1, math.ceil(seconds / dt_seconds - _FLOAT_SLACK))


def steps_from_runs(runs: np.ndarray, quantile: float, default: int) -> int:
    """Return ``max(default, ceil(np.quantile(runs, quantile)))``, or ``default`` with no runs."""
    if runs.size == 0:
        return int(default)
    observed = quantiles_of(runs, [quantile])[0]
    return max(int(default), math.ceil(observed - _FLOAT_SLACK))


def trim_count(n_positives: int, policy: ThresholdPolicy) -> int:
    """Return how many of the largest positives the policy drops: ``floor(ratio * n)`` or 0."""
    if policy.trim_top_ratio <= 0 or n_positives < policy.min_pos_for_trim:
        return 0
    return math.floor(policy.trim_top_ratio * n_positives + _FLOAT_SLACK)


def _as_residuals(values: ArrayLike, axis: str) -> np.ndarray:
    try:
        residuals = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(
            f"residuals of axis {axis!r} must be numeric; could not convert them: {exc}"
        ) from exc
    if residuals.ndim != 1:
        raise CalibrationError(
            f"residuals of axis {axis!r} must be a 1-D array in time order, "
            f"got shape {residuals.shape}"
        )
    return residuals


@dataclass(frozen=True)
class _Levels:
    """One sign's MinC/MaxC of an axis (pooling axis) and how they were found."""

    minc: float
    maxc: float
    method: str
    n_positives: int
    n_trimmed: int


def _percentile_levels(
    axis: str,
    residuals: np.ndarray,
    policy: ThresholdPolicy,
    sign: str = "positive",
) -> _Levels:
    """The seed's per-axis MinC/MaxC from the positive residuals (see the module docstring);
    ``sign`` negative: from the negated negative ones, for the lower side."""
    upper = sign == "positive"

    def positives(rows: slice | np.ndarray) -> np.ndarray:
        values = residuals[rows]
        if upper:
            return values[(values > 0) & (values < math.inf)]
        return -values[(values < 0) & (values > -math.inf)]

    # Counted and selected block by block: no copy of the positives (nor of -residuals).
    signed = residuals > 0 if upper else residuals < 0
    n_positives = int(np.count_nonzero(signed & np.isfinite(residuals)))
    if n_positives >= policy.min_pos_for_percentile:
        n_trimmed = trim_count(n_positives, policy)
        minc, maxc = domain_percentiles(
            positives,
            residuals.size,
            n_positives,
            [policy.minc_percentile, policy.maxc_percentile],
            smallest=n_positives - n_trimmed,
        )
        return _Levels(minc, maxc, "percentile", n_positives, n_trimmed)
    if not policy.use_mad_fallback:
        raise CalibrationError(
            f"axis {axis!r} has {n_positives} {sign} residual(s), fewer than "
            f"thresholds.min_pos_for_percentile={policy.min_pos_for_percentile}; "
            "train on more data, lower thresholds.min_pos_for_percentile, "
            "or set thresholds.use_mad_fallback: true"
        )
    finite = np.compress(np.isfinite(residuals), residuals if upper else -residuals)
    median = float(np.median(finite))
    mad = MAD_SCALE * float(np.median(np.abs(finite - median)))
    minc = median + policy.mad_k_minc * mad
    maxc = median + policy.mad_k_maxc * mad
    logger.warning(
        "axis %r: only %d %s residual(s) (< min_pos_for_percentile=%d); "
        "using median + k*MAD of %d residuals (MinC=%.6g, MaxC=%.6g)",
        axis,
        n_positives,
        sign,
        policy.min_pos_for_percentile,
        finite.size,
        minc,
        maxc,
    )
    return _Levels(minc, maxc, "mad", n_positives, 0)


def _beyond(residuals: np.ndarray, record: AxisThreshold, level: str) -> list[np.ndarray]:
    """Positions of the samples beyond the ``level`` (alert/error) threshold, one array per side.

    Positions rather than masks: what lies beyond a threshold is a small share of the samples,
    so the run lengths and alarms below cost little more than the one comparison per side.
    """
    upper, lower = (
        (record.minc, record.minc_low) if level == "alert" else (record.maxc, record.maxc_low)
    )
    rows = []
    if record.side in ("upper", "both"):
        rows.append(np.flatnonzero(residuals > upper))
    if record.side in ("lower", "both") and lower is not None:
        rows.append(np.flatnonzero(residuals < lower))
    return rows


@dataclass(frozen=True)
class _Crossings:
    """Positions beyond a record's alert and error levels, one array per enabled side: found
    once, for its sustain steps and for its alarm rate alike."""

    alert: list[np.ndarray]
    error: list[np.ndarray]

    @classmethod
    def of(cls, residuals: np.ndarray, record: AxisThreshold) -> _Crossings:
        return cls(_beyond(residuals, record, "alert"), _beyond(residuals, record, "error"))

    @functools.cached_property
    def alert_lengths(self) -> list[np.ndarray]:
        """The run lengths of each side's alert positions (found once: the sustain steps and
        the alarm rate both read them)."""
        return [_lengths(rows) for rows in self.alert]

    @functools.cached_property
    def error_lengths(self) -> list[np.ndarray]:
        """As :attr:`alert_lengths`, beyond the error level."""
        return [_lengths(rows) for rows in self.error]


def _lengths(rows: np.ndarray) -> np.ndarray:
    """Lengths of the runs of consecutive positions in sorted, distinct ``rows``."""
    starts, ends = row_runs(rows)
    return ends - starts


def _sustained(rows: np.ndarray, lengths: np.ndarray, min_length: int) -> np.ndarray:
    """:func:`~Thresholding.runs.sustained_rows` of ``rows`` from their run ``lengths``."""
    if min_length <= 1 or rows.size == 0:
        return rows
    return rows[np.repeat(lengths >= min_length, lengths)]


def _alarm_rows(crossings: _Crossings, record: AxisThreshold) -> np.ndarray:
    """Sorted positions of the samples at alert level or worse (see :func:`alarm_mask`)."""
    parts = [
        _sustained(rows, lengths, record.t_long_steps)
        for rows, lengths in zip(crossings.alert, crossings.alert_lengths, strict=True)
    ]
    parts += [
        _sustained(rows, lengths, record.t_short_steps)
        for rows, lengths in zip(crossings.error, crossings.error_lengths, strict=True)
    ]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.intp)


def alarm_mask(residuals: np.ndarray, record: AxisThreshold) -> np.ndarray:
    """Samples at alert level or worse under ``record``'s thresholds and sustain steps."""
    out = np.zeros(residuals.size, dtype=bool)
    out[_alarm_rows(_Crossings.of(residuals, record), record)] = True
    return out


def _steps(crossings: _Crossings, record: AxisThreshold, dt_seconds: float) -> AxisThreshold:
    """``record`` with the sustain steps learned from the runs beyond its thresholds."""
    policy = record.policy
    # Side after side.
    alert_runs = np.concatenate(crossings.alert_lengths)
    error_runs = np.concatenate(crossings.error_lengths)
    t_long = steps_from_runs(
        alert_runs,
        policy.alert_quantile,
        default_steps(policy.alert_seconds_default, dt_seconds, policy.alert_min_steps),
    )
    t_short = steps_from_runs(
        error_runs,
        policy.error_quantile,
        default_steps(policy.error_seconds_default, dt_seconds, policy.error_min_steps),
    )
    return replace(
        record,
        t_long_steps=t_long,
        t_short_steps=t_short,
        n_alert_runs=int(alert_runs.size),
        n_error_runs=int(error_runs.size),
    )


def _episodes(alarm_rows: np.ndarray, dt: float, merge_gap_seconds: float) -> int:
    """Alert episodes among the alarm positions: their runs, those within the merge gap counted
    once (as the event store joins them)."""
    starts, ends = row_runs(alarm_rows)
    if starts.size < 2 or merge_gap_seconds <= 0:
        return int(starts.size)
    # Sample positions of each run's first and last alarm sample.
    first, last = alarm_rows[starts], alarm_rows[ends - 1]
    gaps = (first[1:] - last[:-1]) * dt
    return 1 + int(np.count_nonzero(gaps > merge_gap_seconds))


def _with_rate(
    record: AxisThreshold,
    finite: int,
    dt: float,
    crossings: _Crossings,
    merge_gap_seconds: float = 0.0,
) -> AxisThreshold:
    """``record`` with its alert episodes per day of its ``finite`` calibration samples."""
    days = finite * dt / _SECONDS_PER_DAY
    episodes = _episodes(_alarm_rows(crossings, record), dt, merge_gap_seconds)
    return replace(record, expected_events_per_day=episodes / days if days > 0 else 0.0)


def _learned(
    values: np.ndarray,
    finite: int,
    record: AxisThreshold,
    dt: float,
    merge_gap_seconds: float = 0.0,
) -> AxisThreshold:
    """``record`` with its sustain steps and alarm rate learned from the calibration series."""
    crossings = _Crossings.of(values, record)
    return _with_rate(_steps(crossings, record, dt), finite, dt, crossings, merge_gap_seconds)


@dataclass
class _Series:
    """The calibration series of one channel: (smoothed) residuals or scores, standardised."""

    values: np.ndarray
    center: float
    scale: float
    finite: int = field(init=False)

    def __post_init__(self) -> None:
        self.finite = int(np.count_nonzero(np.isfinite(self.values)))

    @property
    def z(self) -> np.ndarray:
        return (self.values - self.center) / self.scale


class ThresholdCalibrator:
    """Learn per-axis thresholds (and the machine channel's) with a :class:`ThresholdPolicy`.

    Parameters
    ----------
    policy:
        The threshold policy; ``None`` (default) uses ``ThresholdPolicy()``.
    n_jobs:
        Axes prepared at the same time, in threads (NumPy's selection, comparisons and run
        detection release the GIL); ``None`` (default) or 1 works one axis after the other.
        The result does not depend on it.

    Attributes
    ----------
    thresholds_ : dict[str, AxisThreshold]
        Learned record per axis, in input order, then ``"*"`` for the machine channel.
    dt_seconds_ : float
        Sampling interval the steps were computed for.
    expected_events_per_day_ : float
        Estimated false alert events per day of the whole machine (all channels).
    budget_ : dict
        ``max_events_per_day``, the changes it made, and whether it was met.
    residual_medians_ : dict[str, float]
        The median of each axis's finite residuals as given (``np.median``, to the last bit),
        for the axes whose residuals were not smoothed, up to ``SMALL`` samples.
    """

    def __init__(self, policy: ThresholdPolicy | None = None, *, n_jobs: int | None = None) -> None:
        self.policy = policy
        self.n_jobs = n_jobs

    def _n_jobs(self) -> int:
        if self.n_jobs is None:
            return 1
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs < 1:
            raise CalibrationError(f"n_jobs must be None or an integer >= 1, got {self.n_jobs!r}")
        return self.n_jobs

    def _map(self, function: Callable[[str], _T], axes: list[str]) -> list[_T]:
        """``function`` of every axis, in order; on ``n_jobs`` threads when it is above 1."""
        n_jobs = self._n_jobs()
        if n_jobs > 1 and len(axes) > 1:
            with ThreadPoolExecutor(max_workers=min(n_jobs, len(axes))) as pool:
                return list(pool.map(function, axes))
        return [function(axis) for axis in axes]

    def _policy(self) -> ThresholdPolicy:
        if self.policy is None:
            return ThresholdPolicy()
        if not isinstance(self.policy, ThresholdPolicy):
            raise CalibrationError(
                f"policy must be a ThresholdPolicy, got {type(self.policy).__name__}"
            )
        return self.policy

    def fit(
        self,
        residuals: Mapping[str, ArrayLike],
        dt_seconds: float,
        *,
        machine: str = "none",
        machine_scores: ArrayLike | None = None,
        merge_gap_seconds: float = 0.0,
    ) -> ThresholdCalibrator:
        """Learn MinC, MaxC (and their lower counterparts), T_long_steps and T_short_steps.

        Parameters
        ----------
        residuals:
            Axis name → 1-D residual array in time order, NaN where the sample is idle or
            missing; all of equal length for ``pooling: machine`` or a machine channel.
            Not modified.
        dt_seconds:
            Median sampling interval in seconds; finite and > 0.
        machine:
            The machine channel: ``none``, ``ssr`` (from the standardised residuals) or the
            name of a machine model whose ``machine_scores`` are given.
        machine_scores:
            The machine model's score per sample (aligned with ``residuals``).
        merge_gap_seconds:
            Alarm runs this close count as one episode in the expected alarm rate, as the
            event store joins them (``events.merge_gap_seconds``).

        Returns
        -------
        ThresholdCalibrator
            ``self``, fitted.

        Raises
        ------
        CalibrationError
            If ``dt_seconds`` is not a finite positive number, ``residuals`` is empty or not
            a mapping, an axis has no finite residuals, arrays differ in length where they
            must not, or an axis has too few residuals of a sign while ``use_mad_fallback``
            is off.
        """
        policy = self._policy()
        self._n_jobs()  # a bad n_jobs fails before any work
        dt = self._dt(dt_seconds)
        self.merge_gap_seconds_ = max(0.0, float(merge_gap_seconds))
        if not isinstance(residuals, Mapping):
            raise CalibrationError(
                "residuals must be a mapping of axis name to residual array, "
                f"got {type(residuals).__name__}"
            )
        if not residuals:
            raise CalibrationError("residuals is empty; pass at least one axis")
        axes = [str(axis) for axis in residuals]
        if machine == "ssr" and len(axes) < 2:
            # The SSR of one axis is that axis again: a second set of the same events.
            logger.info("one axis: no ssr machine channel (it would repeat the axis)")
            machine = "none"

        unsmoothed: set[str] = set()

        def prepare(axis: str) -> _Series:
            # Looked up here, so a mapping that computes residuals on access does so in
            # the worker, and only the axes in flight are in memory.
            given = _as_residuals(residuals[axis], axis)
            values = smooth(given, policy.smoothing)
            if values is given:
                unsmoothed.add(axis)
            if not np.isfinite(values).any():
                raise CalibrationError(
                    f"axis {axis!r} has no finite residuals ({values.size} samples, all idle "
                    "or missing); widen the training window or remove the axis"
                )
            return _Series(values, *robust_scale(values))

        series = dict(zip(axes, self._map(prepare, axes), strict=True))
        self.residual_medians_ = {
            a: s.center for a, s in series.items() if a in unsmoothed and s.values.size <= SMALL
        }
        sizes = {s.values.size for s in series.values()}
        pooled = policy.pooling == "machine" or machine != "none"
        if pooled and len(sizes) > 1:
            raise CalibrationError(
                "pooled thresholds and the machine channel need the residuals of every axis "
                f"on the same rows, got lengths {sorted(sizes)}"
            )
        channel = None
        if machine != "none":
            channel = self._machine_series(series, machine, machine_scores)
        percentile = policy.minc_percentile
        records = self._records(series, channel, dt, policy, percentile)
        budget: dict[str, Any] = {"max_events_per_day": policy.max_events_per_day, "changes": []}
        if policy.max_events_per_day is not None:
            records = self._fit_budget(series, channel, dt, policy, records, budget)
        self.thresholds_ = records
        self.dt_seconds_ = dt
        self.expected_events_per_day_ = float(
            sum(r.expected_events_per_day or 0.0 for r in records.values())
        )
        budget["met"] = (
            policy.max_events_per_day is None
            or self.expected_events_per_day_ <= policy.max_events_per_day
        )
        self.budget_ = budget
        return self

    @staticmethod
    def _dt(dt_seconds: float) -> float:
        if isinstance(dt_seconds, bool) or not isinstance(dt_seconds, (int, float, np.number)):
            raise CalibrationError(f"dt_seconds must be a number, got {dt_seconds!r}")
        if not (math.isfinite(dt_seconds) and dt_seconds > 0):
            raise CalibrationError(
                f"dt_seconds must be finite and > 0, got {dt_seconds!r}; "
                "the data needs at least two samples with distinct times"
            )
        return float(dt_seconds)

    @staticmethod
    def _machine_series(
        series: Mapping[str, _Series], machine: str, scores: ArrayLike | None
    ) -> _Series:
        if machine == "ssr":
            values = ssr_score(
                [s.values for s in series.values()],
                [s.center for s in series.values()],
                [s.scale for s in series.values()],
            )
        else:
            if scores is None:
                raise CalibrationError(f"the {machine} machine channel needs its scores")
            values = _as_residuals(scores, MACHINE_CHANNEL)
            size = next(iter(series.values())).values.size
            if values.size != size:
                raise CalibrationError(
                    f"machine scores have {values.size} samples, the residuals {size}"
                )
        if not np.isfinite(values).any():
            raise CalibrationError("the machine channel has no finite score; check the axes")
        return _Series(values, 0.0, 1.0)

    def _records(
        self,
        series: Mapping[str, _Series],
        channel: _Series | None,
        dt: float,
        policy: ThresholdPolicy,
        percentile: float,
    ) -> dict[str, AxisThreshold]:
        """Every channel's record at alert percentile ``percentile`` (steps learned)."""
        policy_used = policy.model_copy(
            update={
                "minc_percentile": percentile,
                "maxc_percentile": max(policy.maxc_percentile, percentile),
            }
        )
        if policy.pooling == "machine":
            k_alert, k_error = self._pooled_multipliers(series, policy_used)

        def record_of(axis: str) -> AxisThreshold:
            s = series[axis]
            if policy.pooling == "machine":
                record = self._pooled_record(s, k_alert, k_error, dt, policy_used)
            else:
                record = self._axis_record(axis, s, dt, policy_used)
            return _learned(s.values, s.finite, record, dt, self.merge_gap_seconds_)

        records = dict(zip(series, self._map(record_of, list(series)), strict=True))
        if channel is not None:
            finite = channel.values[np.isfinite(channel.values)]
            minc, maxc = percentiles_of(
                finite, [policy_used.minc_percentile, policy_used.maxc_percentile]
            )
            record = AxisThreshold(
                minc=float(minc),
                maxc=float(max(maxc, minc)),
                t_long_steps=1,
                t_short_steps=1,
                dt_seconds=dt,
                method="machine",
                policy=policy_used,
                n_residuals=channel.finite,
                n_positives=channel.finite,
                n_trimmed=0,
                n_alert_runs=0,
                n_error_runs=0,
                side="upper",
                calibration=policy.calibration,
            )
            records[MACHINE_CHANNEL] = _learned(
                channel.values, channel.finite, record, dt, self.merge_gap_seconds_
            )
        return records

    @staticmethod
    def _pooled_multipliers(
        series: Mapping[str, _Series], policy: ThresholdPolicy
    ) -> tuple[float, float]:
        # The largest z of each sample, NaN-skipping, one axis at a time (no samples x axes
        # matrix, no reduction along its short rows).
        largest = None
        for s in series.values():
            z = s.z
            if policy.side == "both":
                np.abs(z, out=z)
            elif policy.side == "lower":
                np.negative(z, out=z)
            largest = z if largest is None else np.fmax(largest, z, out=largest)
        assert largest is not None  # at least one axis
        largest = np.compress(np.isfinite(largest), largest)
        k_alert, k_error = percentiles_of(largest, [policy.minc_percentile, policy.maxc_percentile])
        k_alert = max(float(k_alert), 0.0)
        return k_alert, max(float(k_error), k_alert)

    @staticmethod
    def _pooled_record(
        s: _Series, k_alert: float, k_error: float, dt: float, policy: ThresholdPolicy
    ) -> AxisThreshold:
        lower = policy.side in ("lower", "both")
        return AxisThreshold(
            minc=s.center + k_alert * s.scale,
            maxc=s.center + k_error * s.scale,
            minc_low=s.center - k_alert * s.scale if lower else None,
            maxc_low=s.center - k_error * s.scale if lower else None,
            t_long_steps=1,
            t_short_steps=1,
            dt_seconds=dt,
            method="pooled",
            policy=policy,
            n_residuals=s.finite,
            n_positives=int(np.count_nonzero(s.values > s.center)),
            n_trimmed=0,
            n_alert_runs=0,
            n_error_runs=0,
            center=s.center,
            scale=s.scale,
            side=policy.side,
            calibration=policy.calibration,
        )

    @staticmethod
    def _axis_record(axis: str, s: _Series, dt: float, policy: ThresholdPolicy) -> AxisThreshold:
        residuals = s.values
        upper = lower = None
        if policy.side in ("upper", "both"):
            upper = _percentile_levels(axis, residuals, policy)
        if policy.side in ("lower", "both"):
            lower = _percentile_levels(axis, residuals, policy, "negative")
        main = upper or lower
        assert main is not None  # side is one of the three
        methods = {level.method for level in (upper, lower) if level is not None}
        # A lower-only record keeps MinC/MaxC as the mirror image (unused, but finite JSON).
        mirror = upper or _Levels(-main.minc, -main.maxc, main.method, 0, 0)
        return AxisThreshold(
            minc=mirror.minc,
            maxc=mirror.maxc,
            minc_low=-lower.minc if lower else None,
            maxc_low=-lower.maxc if lower else None,
            t_long_steps=1,
            t_short_steps=1,
            dt_seconds=dt,
            method="percentile" if methods == {"percentile"} else "mad",
            policy=policy,
            n_residuals=s.finite,
            n_positives=main.n_positives,
            n_trimmed=main.n_trimmed,
            n_alert_runs=0,
            n_error_runs=0,
            center=s.center,
            scale=s.scale,
            side=policy.side,
            calibration=policy.calibration,
        )

    def _fit_budget(
        self,
        series: Mapping[str, _Series],
        channel: _Series | None,
        dt: float,
        policy: ThresholdPolicy,
        records: dict[str, AxisThreshold],
        budget: dict[str, Any],
    ) -> dict[str, AxisThreshold]:
        """Raise sustain steps, then the alert percentile, until the total fits the budget."""
        limit = float(policy.max_events_per_day or math.inf)
        values = {**{a: s.values for a, s in series.items()}}
        if channel is not None:
            values[MACHINE_CHANNEL] = channel.values
        start_steps = {name: r.t_long_steps for name, r in records.items()}
        percentile = policy.minc_percentile

        def total(recs: Mapping[str, AxisThreshold]) -> float:
            return sum(r.expected_events_per_day or 0.0 for r in recs.values())

        # The policy's percentile, then up to 5 raised ones; each one's steps are raised, the
        # last one's too (its records would otherwise be returned with no step raised).
        for raised_percentiles in range(6):
            while total(records) > limit:
                raisable = [
                    name
                    for name, r in records.items()
                    if (r.expected_events_per_day or 0) > 0
                    and r.t_long_steps < 4 * start_steps[name]
                ]
                if not raisable:
                    break
                worst = max(raisable, key=lambda n: records[n].expected_events_per_day or 0.0)
                old = records[worst]
                raised = replace(
                    old, t_long_steps=old.t_long_steps + 1, t_short_steps=old.t_short_steps + 1
                )
                finite = int(np.count_nonzero(np.isfinite(values[worst])))
                crossings = _Crossings.of(values[worst], raised)
                records[worst] = _with_rate(raised, finite, dt, crossings, self.merge_gap_seconds_)
                budget["changes"].append(
                    f"{worst}: T_long_steps {old.t_long_steps} -> {raised.t_long_steps}, "
                    f"T_short_steps {old.t_short_steps} -> {raised.t_short_steps}"
                )
            if total(records) <= limit or percentile >= 99.999 or raised_percentiles == 5:
                break
            new_percentile = percentile + (100.0 - percentile) / 2
            budget["changes"].append(
                f"minc_percentile {percentile:g} -> {new_percentile:g} "
                f"({total(records):.3g} events/day > {limit:g})"
            )
            percentile = new_percentile
            records = self._records(series, channel, dt, policy, percentile)
            start_steps = {name: r.t_long_steps for name, r in records.items()}
        if total(records) > limit:
            logger.warning(
                "thresholds.max_events_per_day=%g not met: %.3g expected events per day after %d "
                "changes; the calibration residuals alarm too often, check the data",
                limit,
                total(records),
                len(budget["changes"]),
            )
        return records

    def _check_fitted(self) -> None:
        if not hasattr(self, "thresholds_"):
            # Imported here: scikit-learn (and SciPy under it) takes ~1 s to import, and the
            # pipeline needs only this exception, only when raising it.
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "this ThresholdCalibrator is not fitted yet; call fit(residuals, dt_seconds) "
                "or ThresholdCalibrator.from_dict(...) first"
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return ``{axis: record}`` exactly as written to ``thresholds.json``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the calibrator is not fitted.
        """
        self._check_fitted()
        return {axis: record.to_dict() for axis, record in self.thresholds_.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> ThresholdCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output (a loaded ``thresholds.json``).

        Raises
        ------
        CalibrationError
            If the data is empty or not a mapping, a record is malformed, or the records
            disagree on ``policy`` or ``dt_seconds``.
        """
        if not isinstance(data, Mapping) or not data:
            raise CalibrationError(
                "thresholds data must be a non-empty mapping of axis name to record"
            )
        records = {
            str(axis): AxisThreshold.from_dict(record, str(axis)) for axis, record in data.items()
        }
        first_axis, first = next(iter(records.items()))
        for axis, record in records.items():
            if record.policy != first.policy or record.dt_seconds != first.dt_seconds:
                raise CalibrationError(
                    f"thresholds for axis {axis!r} were learned with a different policy or "
                    f"dt_seconds than axis {first_axis!r}; re-train to write a consistent "
                    "thresholds.json"
                )
        calibrator = cls(first.policy)
        calibrator.thresholds_ = records
        calibrator.dt_seconds_ = first.dt_seconds
        calibrator.expected_events_per_day_ = float(
            sum(r.expected_events_per_day or 0.0 for r in records.values())
        )
        calibrator.budget_ = {"max_events_per_day": first.policy.max_events_per_day}
        return calibrator
