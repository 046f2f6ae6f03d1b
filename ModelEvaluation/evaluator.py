"""Goodness of fit per axis: R², MAE and RMSE on the rows that have a residual."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["METRIC_COLUMNS", "EvaluationError", "evaluate"]

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ("axis", "n", "r2", "mae", "rmse")


class EvaluationError(ValueError):
    """The predicted frame lacks the columns needed to evaluate or plot an axis."""


def require_columns(frame: pd.DataFrame, columns: Sequence[str], purpose: str) -> None:
    """Raise :class:`EvaluationError` naming every column of ``columns`` missing from ``frame``."""
    if not isinstance(frame, pd.DataFrame):
        raise EvaluationError(f"{purpose} expects a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = ", ".join(repr(str(c)) for c in frame.columns) or "(none)"
        raise EvaluationError(
            f"{purpose} needs column(s) {', '.join(map(repr, missing))}, missing from the "
            f"frame; available columns: {available}. Pass the frame returned by "
            "AxisModelSet.predict and only axes that were fitted"
        )


def r2_from_arrays(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Return R² as ``sklearn.metrics.r2_score`` does (NaN below two samples).

    A constant ``actual`` gives 1.0 for a perfect prediction and 0.0 otherwise, like
    scikit-learn's ``force_finite=True``.
    """
    if actual.size < 2:
        return float("nan")
    ss_res = float(np.sum((actual - predicted) ** 2))
    ss_tot = float(np.sum((actual - actual.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def evaluate(predicted: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """Return one row of fit metrics per axis, in ``axes`` order.

    Metrics use the rows where ``{axis}_res`` is finite (idle and missing rows have NaN
    residuals and are left out). ``r2`` compares the axis value with ``{axis}_pred``
    (identical to ``sklearn.metrics.r2_score``); ``mae`` = mean |residual|;
    ``rmse`` = sqrt(mean residual²). With no rows, every metric is NaN and ``n`` is 0.

    Parameters
    ----------
    predicted:
        Frame from ``AxisModelSet.predict``: the axis column, ``{axis}_pred`` and
        ``{axis}_res`` for every axis in ``axes``.
    axes:
        Axes to evaluate.

    Returns
    -------
    pandas.DataFrame
        Columns ``axis`` (str), ``n`` (int64), ``r2``, ``mae``, ``rmse`` (float64).

    Raises
    ------
    EvaluationError
        If a needed column is missing.
    """
    axes = list(axes)
    require_columns(
        predicted,
        [c for axis in axes for c in (axis, f"{axis}_pred", f"{axis}_res")],
        "evaluation",
    )
    rows = []
    for axis in axes:
        residual = predicted[f"{axis}_res"].to_numpy(dtype=np.float64, na_value=np.nan)
        keep = np.isfinite(residual)
        residual = residual[keep]
        n = int(residual.size)
        if n == 0:
            logger.warning("axis %r has no finite residuals; its metrics are NaN", axis)
            rows.append((axis, 0, np.nan, np.nan, np.nan))
            continue
        actual = predicted[axis].to_numpy(dtype=np.float64, na_value=np.nan)[keep]
        fitted = predicted[f"{axis}_pred"].to_numpy(dtype=np.float64, na_value=np.nan)[keep]
        mae = float(np.mean(np.abs(residual)))
        rmse = float(np.sqrt(np.mean(residual**2)))
        rows.append((axis, n, r2_from_arrays(actual, fitted), mae, rmse))
    metrics = pd.DataFrame.from_records(rows, columns=list(METRIC_COLUMNS))
    return metrics.astype({"axis": str, "n": np.int64, "r2": float, "mae": float, "rmse": float})
