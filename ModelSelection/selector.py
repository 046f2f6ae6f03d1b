"""The family table, and choosing a family per axis by validation on a held-out tail.

Criterion (``model.type: auto``)
    Every candidate family (and each of its hyperparameter settings) is fitted on the first
    part of the window and predicts the held-out tail (``model.validation_share`` of the
    running rows: idle, missing and masked rows do not count, so a stop at the window's end
    does not leave the tail empty).
    Its *detectable shift* on the axis is::

        spread / |shift_gain|        spread = 95th percentile of |r − median(r)| / 1.96

    the smallest sustained offset that stands one robust standard deviation out of its
    residual noise, in the axis's own units. Lower is better. Dividing by the shift gain keeps
    a model that predicts the next sample by copying the last one (``ar``) from winning: it
    also copies a fault. A family is chosen over the ones listed before it in
    ``model.candidates`` only when its shift is at least ``SIMPLER_MARGIN`` smaller.

    When the tail holds labelled anomalies (``labels.table``), the criterion is instead the
    ROC AUC with which ``|r − median(r)|`` separates the labelled tail samples from the others
    (higher is better; ties fall back to the detectable shift).

Tuning
    Without tuning each family tries a small fixed grid (:data:`GRIDS`). With
    ``model.tuning.trials > 0`` Optuna's TPE sampler (seeded, so runs repeat) searches each
    family's space (:data:`SPACES`) per axis on the same criterion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ._base import AxisModel, ModelError, SharedMoments, as_float_column, usable
from ._linear import LinearTrend
from .families import (
    ARModel,
    ConstantLevel,
    CrossAxis,
    PCAReconstruction,
    PiecewiseLinear,
    components_for_share,
    explained_variance,
)

__all__ = [
    "GRIDS",
    "MODEL_FAMILIES",
    "SIMPLER_MARGIN",
    "SPACES",
    "AxisChoice",
    "Selection",
    "UnknownModelError",
    "build_model",
    "fit_family",
    "robust_spread",
    "select_families",
    "select_model",
]

logger = logging.getLogger(__name__)


class UnknownModelError(ValueError):
    """``model.type`` (or a saved ``family``) names no registered model family."""


MODEL_FAMILIES: Mapping[str, type[AxisModel]] = MappingProxyType(
    {
        ConstantLevel.family: ConstantLevel,
        LinearTrend.family: LinearTrend,
        PiecewiseLinear.family: PiecewiseLinear,
        ARModel.family: ARModel,
        CrossAxis.family: CrossAxis,
        PCAReconstruction.family: PCAReconstruction,
    }
)
"""Read-only name → family class table. Add a family by adding one entry here."""

GRIDS: Mapping[str, tuple[dict[str, Any], ...]] = MappingProxyType(
    {
        "constant": ({},),
        "linear": ({},),
        "spline": ({"knots": 2}, {"knots": 8}, {"knots": 32}),
        "ar": ({"lags": 1}, {"lags": 2}, {"lags": 4}, {"lags": 8}),
        "cross": ({"alpha": 0.001}, {"alpha": 0.01}, {"alpha": 0.1}, {"alpha": 1.0}),
        "pca": ({"share": 0.8}, {"share": 0.9}, {"share": 0.95}, {"share": 0.99}),
    }
)
"""Hyperparameter settings tried without tuning. ``pca``'s ``share`` becomes the fewest
components that explain that share of the variance of the standardised axes."""

SPACES: Mapping[str, Mapping[str, tuple[str, float, float]]] = MappingProxyType(
    {
        "spline": {"knots": ("int_log", 1, 128)},
        "ar": {"lags": ("int_log", 1, 32), "exog": ("bool", 0, 1)},
        "cross": {"alpha": ("float_log", 1e-6, 10.0)},
        "pca": {"components": ("int", 1, -1)},
    }
)
"""Optuna search space per family: name → (kind, low, high); ``-1`` = number of axes − 1."""

SIMPLER_MARGIN = 0.02
"""A family must beat the simpler ones listed before it by this share to be chosen."""


def select_model(name: str) -> type[AxisModel]:
    """Return the model family registered under ``name``.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the valid names.
    """
    try:
        return MODEL_FAMILIES[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(MODEL_FAMILIES))
        raise UnknownModelError(f"unknown model family {name!r}; valid families: {valid}") from None


def build_model(family: str, params: Mapping[str, Any]) -> AxisModel:
    """An unfitted model of ``family`` with ``params``.

    Raises
    ------
    UnknownModelError
        On an unknown family.
    ModelError
        If ``params`` names a parameter the family does not take.
    """
    cls = select_model(family)
    try:
        return cls(**dict(params))
    except TypeError as exc:
        raise ModelError(f"{family}: invalid parameters {dict(params)!r}: {exc}") from exc


def fit_family(
    model: AxisModel,
    frame: pd.DataFrame,
    axis: str,
    where: np.ndarray | None = None,
    shared: SharedMoments | None = None,
) -> AxisModel:
    """``model.fit(frame, axis, where)``, handing ``shared`` moments to families that use them."""
    if shared is not None and getattr(model, "joint", False):
        return model.fit(frame, axis, where=where, shared=shared)  # type: ignore[call-arg]
    return model.fit(frame, axis, where=where)


def robust_spread(residuals: np.ndarray) -> float:
    """The 95th percentile of ``|r − median(r)|`` over 1.96 (the standard deviation for normal
    residuals; unlike the MAD it sees the jumps of a sample-and-hold signal, which are where
    alarms happen); their standard deviation when it is 0."""
    finite = np.compress(np.isfinite(residuals), residuals)  # our own copy: selected in place
    if finite.size == 0:
        return math.inf
    center = np.median(finite, overwrite_input=True)
    deviation = np.abs(np.subtract(finite, center, out=finite), out=finite)
    spread = float(np.percentile(deviation, 95.0, overwrite_input=True)) / 1.959964
    if spread > 0:
        return spread
    return float(np.compress(np.isfinite(residuals), residuals).std())


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for ``positive`` (Mann-Whitney, ties half); None for one class."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = scores.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class AxisChoice:
    """One candidate's result on one axis: its best setting and how it scored on the tail."""

    axis: str
    family: str
    params: dict[str, Any]
    spread: float
    gain: float
    shift: float
    auc: float | None = None
    error: str | None = None
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A row of ``selection.json``'s table (non-finite numbers as None)."""

        def finite(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else float(value)

        return {
            "axis": self.axis,
            "family": self.family,
            "params": dict(self.params),
            "spread": finite(self.spread),
            "gain": finite(self.gain),
            "shift": finite(self.shift),
            "auc": finite(self.auc),
            "error": self.error,
            "chosen": self.chosen,
        }


@dataclass(frozen=True)
class Selection:
    """The chosen family and parameters per axis, and the whole comparison table."""

    chosen: dict[str, tuple[str, dict[str, Any]]]
    table: list[AxisChoice]
    criterion: str
    fit_rows: int
    tail_rows: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Contents of ``selection.json``."""
        return {
            "criterion": self.criterion,
            "fit_rows": self.fit_rows,
            "tail_rows": self.tail_rows,
            "chosen": {a: {"family": f, "params": p} for a, (f, p) in self.chosen.items()},
            "table": [row.to_dict() for row in self.table],
            **self.details,
        }


def _resolved(
    family: str,
    params: Mapping[str, Any],
    frame: pd.DataFrame,
    axes: Sequence[str],
    fit_rows: np.ndarray,
    spectrum: dict[str, np.ndarray | None],
) -> dict[str, Any]:
    """Turn grid shorthands into real parameters (``pca``'s variance share → components).

    ``spectrum`` caches the axes' explained variance, computed once for all shares.
    """
    if family == "pca" and "share" in params:
        if "pca" not in spectrum:
            spectrum["pca"] = explained_variance(frame.loc[fit_rows, list(axes)], axes)
        return {"components": components_for_share(spectrum["pca"], float(params["share"]))}
    return dict(params)


def _evaluate(
    frame: pd.DataFrame,
    axis: str,
    family: str,
    params: Mapping[str, Any],
    fit_rows: np.ndarray,
    tail: slice,
    tail_ok: np.ndarray,
    labelled: np.ndarray | None,
    shared: SharedMoments,
) -> tuple[float, float, float, float | None]:
    """(spread, gain, shift, auc) of one setting on the tail (ModelError propagates)."""
    model = fit_family(build_model(family, params), frame, axis, fit_rows, shared)
    start = max(tail.start - model.lookback_, 0)
    predicted = model.predict(frame.iloc[start : tail.stop], axis)[tail.start - start :]
    actual = as_float_column(frame, axis)[tail]
    residual = np.where(tail_ok, actual - predicted, np.nan)
    normal = tail_ok if labelled is None else tail_ok & ~labelled
    spread = robust_spread(residual[normal])
    gain = model.shift_gain()
    shift = spread / abs(gain) if gain != 0 else math.inf
    auc = None
    if labelled is not None:
        deviation = np.abs(residual - np.nanmedian(residual[normal]))
        auc = _auc(deviation[tail_ok], labelled[tail_ok])
    return spread, gain, shift, auc


def _suggest(trial: Any, family: str, n_axes: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, (kind, low, high) in SPACES[family].items():
        high = n_axes - 1 if high == -1 else high
        if kind == "int_log":
            params[name] = trial.suggest_int(name, int(low), int(high), log=True)
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(low), max(int(low), int(high)))
        elif kind == "float_log":
            params[name] = trial.suggest_float(name, low, high, log=True)
        else:
            params[name] = trial.suggest_categorical(name, [False, True])
    return params


def _better(a: AxisChoice, b: AxisChoice) -> bool:
    """Is ``a`` strictly better than ``b`` (AUC first when both have one, then the shift)?"""
    if a.auc is not None and b.auc is not None and a.auc != b.auc:
        return a.auc > b.auc
    return a.shift < b.shift


def _pick(rows: Sequence[AxisChoice]) -> AxisChoice | None:
    """The chosen row: a later (less simple) family must beat the pick by the margin."""
    pick: AxisChoice | None = None
    for row in rows:
        if row.error is not None:
            continue
        if pick is None:
            pick = row
        elif row.auc is not None and pick.auc is not None and row.auc != pick.auc:
            if row.auc > pick.auc:
                pick = row
        elif row.shift < pick.shift * (1 - SIMPLER_MARGIN):
            pick = row
    return pick


@dataclass(frozen=True)
class _Split:
    """The validation split of one window: fit rows, the tail, and what is allowed."""

    frame: pd.DataFrame
    fit_rows: np.ndarray
    tail: slice
    allowed: np.ndarray
    shared: SharedMoments


def _axis_rows(
    split: _Split,
    axis: str,
    candidates: Sequence[str],
    grids: Mapping[str, list[dict[str, Any]]],
    labelled: np.ndarray | None,
    n_axes: int,
    trials: int,
    seed: int,
) -> list[AxisChoice]:
    """One row per candidate family: its best setting on this axis, or why it failed."""
    tail = split.tail
    values = as_float_column(split.frame, axis)[tail]
    tail_ok = usable(values) & split.allowed[tail]
    tail_labels = None
    if labelled is not None:
        tail_labels = np.asarray(labelled, dtype=bool)[tail] & usable(values)
        if tail_labels.any():
            tail_ok = tail_ok | tail_labels
        else:
            tail_labels = None
    if not tail_ok.any():
        logger.warning(
            "axis %s has no usable row in the validation tail (idle, missing or masked): the "
            "families cannot be compared on it, the first candidate that fits is kept; "
            "widen the training window or lower model.validation_share",
            axis,
        )
    rows: list[AxisChoice] = []
    for family in candidates:
        failures: list[str] = []

        def trial_of(
            params: dict[str, Any], family: str = family, failures: list[str] = failures
        ) -> AxisChoice | None:
            try:
                spread, gain, shift, auc = _evaluate(
                    split.frame,
                    axis,
                    family,
                    params,
                    split.fit_rows,
                    tail,
                    tail_ok,
                    tail_labels,
                    split.shared,
                )
            except ModelError as exc:
                failures.append(str(exc))
                return None
            return AxisChoice(axis, family, dict(params), spread, gain, shift, auc)

        best: AxisChoice | None = None
        if family in grids:
            for params in grids[family]:
                result = trial_of(params)
                if result is not None and (best is None or _better(result, best)):
                    best = result
        else:
            best = _tune(family, trial_of, n_axes, trials, seed)
        if best is None:
            error = failures[-1] if failures else "not fitted"
            best = AxisChoice(axis, family, {}, math.nan, math.nan, math.inf, error=error)
        rows.append(best)
    return rows


def _tail_start(
    frame: pd.DataFrame, axes: Sequence[str], allowed: np.ndarray, validation_share: float
) -> int:
    """First row of the validation tail: the tail holds the last ``validation_share`` of the
    *running* rows (some axis usable, the row allowed), so a window that ends in a long stop
    or a labelled incident still validates on real data (a tail of idle rows has no residual
    to compare families by)."""
    running = np.zeros(len(frame), dtype=bool)
    for axis in axes:
        running |= usable(as_float_column(frame, axis))
    positions = np.flatnonzero(running & allowed)
    if positions.size < 2:
        return round(len(frame) * (1 - validation_share))
    return int(positions[min(round(positions.size * (1 - validation_share)), positions.size - 1)])


def select_families(
    frame: pd.DataFrame,
    axes: Sequence[str],
    candidates: Sequence[str],
    *,
    validation_share: float = 0.2,
    where: np.ndarray | None = None,
    labelled: Mapping[str, np.ndarray] | None = None,
    fixed: Mapping[str, Mapping[str, Any]] | None = None,
    trials: int = 0,
    seed: int = 0,
    n_jobs: int = 1,
) -> Selection:
    """Choose a family (and its parameters) per axis by validation on the window's tail.

    Parameters
    ----------
    frame:
        The prepared window (``time_s`` and every axis), in time order. Not modified.
    axes:
        Axes to choose for.
    candidates:
        Family names to compare, simplest first (see :data:`SIMPLER_MARGIN`).
    validation_share:
        Share of the rows held out at the end (0 < share < 1).
    where:
        Rows allowed in fits and in the tail's normal statistics (default all), e.g. without
        labelled incidents.
    labelled:
        Axis → boolean mask of labelled anomalous rows; switches that axis to the AUC
        criterion when its tail holds some.
    fixed:
        Family → parameters to use instead of the grid or tuning.
    trials:
        Optuna trials per family and axis (0 = the fixed grid).
    seed:
        Seed of Optuna's sampler.
    n_jobs:
        Axes compared at once, on threads (NumPy does the work outside the GIL); each axis's
        comparison is independent of the others', so the result is the same for any value.

    Returns
    -------
    Selection

    Raises
    ------
    ModelError
        If the share is out of range, or no candidate could be fitted to an axis (each
        failure is listed).
    UnknownModelError
        On an unknown candidate name.
    """
    if not 0 < validation_share < 1:
        raise ModelError(f"validation_share must be between 0 and 1, got {validation_share!r}")
    for family in candidates:
        select_model(family)
    n = len(frame)
    allowed = np.ones(n, dtype=bool) if where is None else np.asarray(where, dtype=bool)
    tail_start = _tail_start(frame, axes, allowed, validation_share)
    fit_rows = allowed.copy()
    fit_rows[tail_start:] = False
    shared = SharedMoments(frame, axes, fit_rows)
    split = _Split(frame, fit_rows, slice(tail_start, n), allowed, shared)
    fixed = fixed or {}
    grids: dict[str, list[dict[str, Any]]] = {}
    spectrum: dict[str, np.ndarray | None] = {}
    for family in candidates:
        if family in fixed:
            grids[family] = [dict(fixed[family])]
        elif trials == 0 or family not in SPACES:
            grids[family] = [
                _resolved(family, params, frame, axes, fit_rows, spectrum)
                for params in GRIDS[family]
            ]
    table: list[AxisChoice] = []
    chosen: dict[str, tuple[str, dict[str, Any]]] = {}
    labelled = labelled or {}

    def rows_of(axis: str) -> list[AxisChoice]:
        return _axis_rows(
            split, axis, candidates, grids, labelled.get(axis), len(axes), trials, seed
        )

    if n_jobs > 1 and len(axes) > 1:
        with ThreadPoolExecutor(max_workers=min(n_jobs, len(axes))) as pool:
            per_axis = list(pool.map(rows_of, axes))
    else:
        per_axis = [rows_of(axis) for axis in axes]
    for axis, rows in zip(axes, per_axis, strict=True):
        pick = _pick(rows)
        if pick is None:
            problems = "; ".join(f"{r.family}: {r.error}" for r in rows)
            raise ModelError(f"no candidate family could be fitted to axis {axis!r}: {problems}")
        chosen[axis] = (pick.family, dict(pick.params))
        table.extend(replace(row, chosen=row is pick) for row in rows)
        logger.info(
            "axis %s: %s %s (detectable shift %.4g%s)",
            axis,
            pick.family,
            pick.params,
            pick.shift,
            "" if pick.auc is None else f", AUC {pick.auc:.3f}",
        )
    uses_labels = any(row.auc is not None for row in table)
    return Selection(
        chosen=chosen,
        table=table,
        criterion="label-auc" if uses_labels else "detectable-shift",
        fit_rows=int(np.count_nonzero(fit_rows)),
        tail_rows=n - tail_start,
        details={"validation_share": validation_share, "trials": trials, "seed": seed},
    )


def _tune(
    family: str,
    trial_of: Callable[[dict[str, Any]], AxisChoice | None],
    n_axes: int,
    trials: int,
    seed: int,
) -> AxisChoice | None:
    """Search ``family``'s space with Optuna's seeded TPE sampler; the best result or None."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[int, AxisChoice] = {}

    def objective(trial: Any) -> float:
        result = trial_of(_suggest(trial, family, n_axes))
        if result is None:
            raise optuna.TrialPruned()
        results[trial.number] = result
        if result.auc is not None:
            return -result.auc
        return result.shift if math.isfinite(result.shift) else 1e300

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    completed = [t for t in study.trials if t.number in results]
    if not completed:
        return None
    best = min(completed, key=lambda t: (t.value, t.number))
    return results[best.number]
