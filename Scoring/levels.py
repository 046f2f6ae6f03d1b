"""Per-sample levels of one axis: idle < ok < alert < error, as small integers.

The order of the codes is the order of severity, so the worst level across axes is an
element-wise maximum and "at least alert" is ``codes >= Level.ALERT``.
"""

from __future__ import annotations

from enum import IntEnum
from numbers import Integral, Real

import numpy as np
import pandas as pd

from Thresholding import sustained

from .errors import ScoringInputError

__all__ = ["LEVEL_DTYPE", "LEVEL_NAMES", "Level", "assign_levels", "level_labels"]


class Level(IntEnum):
    """Severity of one sample; larger is worse."""

    IDLE = 0
    OK = 1
    ALERT = 2
    ERROR = 3

    @property
    def label(self) -> str:
        """The name used in output frames and the events table (``"alert"``)."""
        return self.name.lower()


LEVEL_NAMES: tuple[str, ...] = tuple(level.label for level in Level)
LEVEL_DTYPE = pd.CategoricalDtype(list(LEVEL_NAMES), ordered=True)
"""Ordered categorical dtype of level columns: ``idle < ok < alert < error``."""


def level_labels(codes: np.ndarray) -> pd.Categorical:
    """Turn level codes into an ordered categorical of level names (no per-sample strings).

    The codes are copied, so editing the categorical never changes ``codes``.
    """
    return pd.Categorical.from_codes(np.array(codes, dtype=np.int8), dtype=LEVEL_DTYPE)


def assign_levels(
    values: np.ndarray,
    residuals: np.ndarray,
    *,
    minc: float,
    maxc: float,
    t_long: int,
    t_short: int,
) -> np.ndarray:
    """Level of every sample of one axis.

    A sample is

    * ``ERROR`` if it lies in a maximal run of at least ``t_short`` consecutive samples with
      ``residual > maxc``;
    * else ``ALERT`` if it lies in a maximal run of at least ``t_long`` consecutive samples with
      ``residual > minc``;
    * else ``IDLE`` if its value is 0 or NaN;
    * else ``OK``.

    Comparisons are strict: a residual equal to ``minc`` is not above it. An idle sample (value 0
    or NaN) never counts as above a threshold and so breaks runs, whatever its residual; the
    trainer already sets those residuals to NaN, and enforcing it here keeps a stopped axis from
    ever raising an alarm. A NaN residual on a non-idle sample is ``OK`` and breaks runs too.

    Parameters
    ----------
    values, residuals:
        1-D float arrays of equal length, in time order.
    minc, maxc:
        Alert and error residual levels (``MinC``, ``MaxC``); finite.
    t_long, t_short:
        Minimum run lengths in samples (``T_long_steps``, ``T_short_steps``); integers >= 1.

    Returns
    -------
    numpy.ndarray
        ``int8`` codes of :class:`Level`, same length as ``values``.

    Raises
    ------
    ScoringInputError
        If the arrays are not 1-D of equal length or a parameter is out of range.
    """
    values = np.asarray(values, dtype=np.float64)
    residuals = np.asarray(residuals, dtype=np.float64)
    if values.ndim != 1 or residuals.shape != values.shape:
        raise ScoringInputError(
            f"assign_levels: values and residuals must be 1-D arrays of equal length, got shapes "
            f"{values.shape} and {residuals.shape}"
        )
    for name, level in (("minc", minc), ("maxc", maxc)):
        if not isinstance(level, Real) or not np.isfinite(level):
            raise ScoringInputError(f"assign_levels: {name} must be a finite number, got {level!r}")
    for name, steps in (("t_long", t_long), ("t_short", t_short)):
        if not isinstance(steps, Integral) or isinstance(steps, bool) or steps < 1:
            raise ScoringInputError(
                f"assign_levels: {name} must be an integer >= 1 (samples), got {steps!r}"
            )

    # NaN compares False both ways, so this is "value is neither 0 nor NaN" in two passes.
    active = (values > 0) | (values < 0)
    error = sustained((residuals > maxc) & active, int(t_short))
    alert_or_error = sustained((residuals > minc) & active, int(t_long)) | error
    # Both masks lie inside ``active``, so the sum is IDLE=0, OK=1, ALERT=2 or ERROR=3.
    return active.view(np.int8) + alert_or_error.view(np.int8) + error.view(np.int8)

