"""Residual smoothing shared by calibration and scoring: a truncated EWMA.

``smoothed[i] = sum_k w_k r[i-k] / sum_k w_k`` over ``k = 0 .. span-1`` with
``w_k = alpha (1 - alpha)^k``, counting only the finite residuals (idle or missing samples
are NaN and drop out of the mean; an idle sample itself stays NaN). Cutting the weights at
``span`` makes a smoothed value depend on the last ``span`` rows only, so ``span - 1`` rows of
look-back make scoring back-to-back windows equal scoring their union exactly.
"""

from __future__ import annotations

import numpy as np

from .config import SmoothingConfig

__all__ = ["smooth"]


def smooth(residuals: np.ndarray, config: SmoothingConfig) -> np.ndarray:
    """The smoothed residuals (``residuals`` itself when smoothing is off).

    Parameters
    ----------
    residuals:
        1-D float residuals in time order, NaN where idle or missing. Not modified.
    config:
        The ``thresholds.smoothing`` section.
    """
    values = np.asarray(residuals, dtype=np.float64)
    span = config.span
    if config.method == "none" or span <= 1:
        return values
    weights = config.alpha * (1.0 - config.alpha) ** np.arange(span)
    finite = np.isfinite(values)
    numerator = np.convolve(np.where(finite, values, 0.0), weights)[: values.size]
    denominator = np.convolve(finite.astype(np.float64), weights)[: values.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = numerator / denominator
    out[~finite] = np.nan
    return out
