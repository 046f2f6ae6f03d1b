"""Learn per-axis MinC/MaxC and alert/error step counts from training residuals.

Policy (see :class:`~Thresholding.config.ThresholdPolicy` for the keys):

1. Positives are the finite residuals > 0. With at least ``min_pos_for_percentile`` of them:
   when there are at least ``min_pos_for_trim`` positives and ``trim_top_ratio > 0``, the
   largest ``floor(trim_top_ratio * positives)`` are dropped; MinC and MaxC are the
   ``minc_percentile`` and ``maxc_percentile`` (linear interpolation, as ``np.percentile``)
   of the rest. Method ``"percentile"``.
2. Otherwise, with ``use_mad_fallback``: over all finite residuals, ``med`` = median and
   ``MAD = 1.4826 * median(|r - med|)`` (consistent with the standard deviation for normal
   data); MinC = med + mad_k_minc·MAD, MaxC = med + mad_k_maxc·MAD. Method ``"mad"``.
   Without the fallback, calibration fails for that axis.
3. Steps: ``default = max(1, ceil(seconds_default / dt_seconds))``. The lengths of the
   maximal runs of consecutive samples with residual > MinC (alerts) and > MaxC (errors)
   are measured; ``T_long_steps = max(default_long, ceil(quantile(alert runs,
   alert_quantile)))`` when there are runs, else ``default_long``; likewise
   ``T_short_steps`` with the error runs and ``error_quantile``. NaN residuals (idle or
   missing samples) break runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pydantic import ValidationError

from .config import ThresholdPolicy
from .runs import run_lengths

__all__ = ["MAD_SCALE", "AxisThreshold", "CalibrationError", "ThresholdCalibrator"]

logger = logging.getLogger(__name__)

MAD_SCALE = 1.4826
"""Scales the median absolute deviation to the standard deviation of normal data."""

_FLOAT_SLACK = 1e-9
"""Tolerance before floor/ceil so 0.29 * 100 counts as 29 and 5.0000000001 as 5."""


class CalibrationError(ValueError):
    """Thresholds cannot be learned from the given residuals, or a saved record is malformed."""


@dataclass(frozen=True)
class AxisThreshold:
    """Learned thresholds of one axis; :meth:`to_dict` gives its ``thresholds.json`` entry."""

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

    def to_dict(self) -> dict[str, Any]:
        """Return the ``thresholds.json`` record with plain Python floats and ints."""
        return {
            "MinC": float(self.minc),
            "MaxC": float(self.maxc),
            "T_long_steps": int(self.t_long_steps),
            "T_short_steps": int(self.t_short_steps),
            "dt_seconds": float(self.dt_seconds),
            "method": self.method,
            "policy": self.policy.model_dump(mode="json"),
            "counts": {
                "residuals": int(self.n_residuals),
                "positives": int(self.n_positives),
                "trimmed": int(self.n_trimmed),
                "alert_runs": int(self.n_alert_runs),
                "error_runs": int(self.n_error_runs),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], axis: str = "?") -> AxisThreshold:
        """Rebuild a record from :meth:`to_dict` output.

        Raises
        ------
        CalibrationError
            If a key is missing, a value has the wrong type, or the policy is invalid.
        """
        try:
            counts = data.get("counts", {})
            return cls(
                minc=float(data["MinC"]),
                maxc=float(data["MaxC"]),
                t_long_steps=int(data["T_long_steps"]),
                t_short_steps=int(data["T_short_steps"]),
                dt_seconds=float(data["dt_seconds"]),
                method=str(data["method"]),
                policy=ThresholdPolicy.model_validate(data.get("policy", {})),
                n_residuals=int(counts.get("residuals", 0)),
                n_positives=int(counts.get("positives", 0)),
                n_trimmed=int(counts.get("trimmed", 0)),
                n_alert_runs=int(counts.get("alert_runs", 0)),
                n_error_runs=int(counts.get("error_runs", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
            raise CalibrationError(
                f"thresholds for axis {axis!r} are malformed ({type(exc).__name__}: {exc}); "
                "re-train to write a current thresholds.json"
            ) from exc


def default_steps(seconds: float, dt_seconds: float) -> int:
    """Return ``max(1, ceil(seconds / dt_seconds))``, tolerant of float rounding.

    With ``dt_seconds = 1.891``: 5 s → 3 steps, 3 s → 2 steps.
    """
    return max(1, math.ceil(seconds / dt_seconds - _FLOAT_SLACK))


def steps_from_runs(runs: np.ndarray, quantile: float, default: int) -> int:
    """Return ``max(default, ceil(np.quantile(runs, quantile)))``, or ``default`` with no runs."""
    if runs.size == 0:
        return int(default)
    observed = float(np.quantile(runs, quantile))
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


class ThresholdCalibrator:
    """Learn per-axis thresholds with a :class:`ThresholdPolicy`.

    Parameters
    ----------
    policy:
        The threshold policy; ``None`` (default) uses ``ThresholdPolicy()``.
    n_jobs:
        Axes calibrated at the same time, in threads (NumPy's selection, comparisons and
        run detection release the GIL, so two cores nearly halve the time); ``None``
        (default) or 1 calibrates one axis after the other. The result does not depend on it.

    Attributes
    ----------
    thresholds_ : dict[str, AxisThreshold]
        Learned record per axis, in input order.
    dt_seconds_ : float
        Sampling interval the steps were computed for.
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

    def _policy(self) -> ThresholdPolicy:
        if self.policy is None:
            return ThresholdPolicy()
        if not isinstance(self.policy, ThresholdPolicy):
            raise CalibrationError(
                f"policy must be a ThresholdPolicy, got {type(self.policy).__name__}"
            )
        return self.policy

    def fit(self, residuals: Mapping[str, ArrayLike], dt_seconds: float) -> ThresholdCalibrator:
        """Learn MinC, MaxC, T_long_steps and T_short_steps for every axis.

        Parameters
        ----------
        residuals:
            Axis name → 1-D residual array in time order (the ``{axis}_res`` column), NaN
            where the sample is idle or missing. Not modified.
        dt_seconds:
            Median sampling interval in seconds; finite and > 0.

        Returns
        -------
        ThresholdCalibrator
            ``self``, fitted.

        Raises
        ------
        CalibrationError
            If ``dt_seconds`` is not a finite positive number, ``residuals`` is empty or not
            a mapping, an axis has no finite residuals, or an axis has too few positive
            residuals while ``use_mad_fallback`` is off.
        """
        policy = self._policy()
        n_jobs = self._n_jobs()
        if isinstance(dt_seconds, bool) or not isinstance(dt_seconds, (int, float, np.number)):
            raise CalibrationError(f"dt_seconds must be a number, got {dt_seconds!r}")
        if not (math.isfinite(dt_seconds) and dt_seconds > 0):
            raise CalibrationError(
                f"dt_seconds must be finite and > 0, got {dt_seconds!r}; "
                "the data needs at least two samples with distinct times"
            )
        if not isinstance(residuals, Mapping):
            raise CalibrationError(
                "residuals must be a mapping of axis name to residual array, "
                f"got {type(residuals).__name__}"
            )
        if not residuals:
            raise CalibrationError("residuals is empty; pass at least one axis")
        dt = float(dt_seconds)

        def fit_axis(axis: str) -> AxisThreshold:
            # Looked up here, so a mapping that computes residuals on access does so in
            # the worker, and only the axes in flight are in memory.
            return self._fit_axis(str(axis), _as_residuals(residuals[axis], str(axis)), dt, policy)

        axes = list(residuals)
        if n_jobs > 1 and len(axes) > 1:
            with ThreadPoolExecutor(max_workers=min(n_jobs, len(axes))) as pool:
                records = list(pool.map(fit_axis, axes))
        else:
            records = [fit_axis(axis) for axis in axes]
        self.thresholds_ = {str(axis): record for axis, record in zip(axes, records, strict=True)}
        self.dt_seconds_ = dt
        return self

    @staticmethod
    def _fit_axis(
        axis: str, residuals: np.ndarray, dt_seconds: float, policy: ThresholdPolicy
    ) -> AxisThreshold:
        is_finite = np.isfinite(residuals)
        n_finite = int(np.count_nonzero(is_finite))
        if n_finite == 0:
            raise CalibrationError(
                f"axis {axis!r} has no finite residuals ({residuals.size} samples, all idle "
                "or missing); widen the training window or remove the axis"
            )
        # np.compress is ~4x faster than a boolean index when the mask flips at random.
        positives = np.compress((residuals > 0) & is_finite, residuals)
        n_positives = int(positives.size)
        n_trimmed = 0
        if n_positives >= policy.min_pos_for_percentile:
            n_trimmed = trim_count(n_positives, policy)
            kept = positives
            if n_trimmed:
                keep = n_positives - n_trimmed
                kept = np.partition(positives, keep - 1)[:keep]
            # Linear-time selection (introselect) in place: ``positives`` is our own copy.
            minc, maxc = np.percentile(
                kept,
                [policy.minc_percentile, policy.maxc_percentile],
                method="linear",
                overwrite_input=True,
            )
            method = "percentile"
        elif policy.use_mad_fallback:
            finite = np.compress(is_finite, residuals)
            median = float(np.median(finite))
            mad = MAD_SCALE * float(np.median(np.abs(finite - median)))
            minc = median + policy.mad_k_minc * mad
            maxc = median + policy.mad_k_maxc * mad
            method = "mad"
            logger.warning(
                "axis %r: only %d positive residual(s) (< min_pos_for_percentile=%d); "
                "using median + k*MAD of %d residuals (MinC=%.6g, MaxC=%.6g)",
                axis,
                n_positives,
                policy.min_pos_for_percentile,
                n_finite,
                minc,
                maxc,
            )
        else:
            raise CalibrationError(
                f"axis {axis!r} has {n_positives} positive residual(s), fewer than "
                f"thresholds.min_pos_for_percentile={policy.min_pos_for_percentile}; "
                "train on more data, lower thresholds.min_pos_for_percentile, "
                "or set thresholds.use_mad_fallback: true"
            )

        alert_runs = run_lengths(residuals > minc)
        error_runs = run_lengths(residuals > maxc)
        t_long = steps_from_runs(
            alert_runs,
            policy.alert_quantile,
            default_steps(policy.alert_seconds_default, dt_seconds),
        )
        t_short = steps_from_runs(
            error_runs,
            policy.error_quantile,
            default_steps(policy.error_seconds_default, dt_seconds),
        )
        logger.debug(
            "axis %r: %s MinC=%.6g MaxC=%.6g T_long=%d T_short=%d",
            axis,
            method,
            minc,
            maxc,
            t_long,
            t_short,
        )
        return AxisThreshold(
            minc=float(minc),
            maxc=float(maxc),
            t_long_steps=t_long,
            t_short_steps=t_short,
            dt_seconds=dt_seconds,
            method=method,
            policy=policy,
            n_residuals=n_finite,
            n_positives=n_positives,
            n_trimmed=n_trimmed,
            n_alert_runs=int(alert_runs.size),
            n_error_runs=int(error_runs.size),
        )

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
        return calibrator
