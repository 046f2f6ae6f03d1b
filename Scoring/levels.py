"""Per-sample levels of one axis: idle < ok < sensor < alert < error, as small integers.

The order of the codes is the order of severity, so the worst level across axes is an
element-wise maximum and "at least alert" is ``codes >= Level.ALERT``. ``idle`` is the
*machine* at rest (every axis 0 or missing); ``sensor`` is one axis reading 0 or nothing while
another axis runs (:func:`mark_sensor_faults`): a dead sensor, not a stopped machine.
"""

from __future__ import annotations

from enum import IntEnum
from numbers import Integral, Real

import numpy as np
import pandas as pd

from Thresholding import sustained_rows

from .errors import ScoringInputError

__all__ = [
    "LEVEL_DTYPE",
    "LEVEL_NAMES",
    "Level",
    "assign_levels",
    "level_labels",
    "mark_sensor_faults",
]


class Level(IntEnum):
    """Severity of one sample; larger is worse."""

    IDLE = 0
    OK = 1
    SENSOR = 2
    ALERT = 3
    ERROR = 4

    @property
    def label(self) -> str:
        """The name used in output frames and the events table (``"alert"``)."""
        return self.name.lower()


LEVEL_NAMES: tuple[str, ...] = tuple(level.label for level in Level)
LEVEL_DTYPE = pd.CategoricalDtype(list(LEVEL_NAMES), ordered=True)
"""Ordered categorical dtype of level columns: ``idle < ok < sensor < alert < error``."""


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
    minc_low: float | None = None,
    maxc_low: float | None = None,
    upper: bool = True,
    active: np.ndarray | None = None,
) -> np.ndarray:
    """Level of every sample of one channel.

    A sample is

    * ``ERROR`` if it lies in a maximal run of at least ``t_short`` consecutive samples with
      ``residual > maxc`` (upper side) or ``residual < maxc_low`` (lower side, when given);
    * else ``ALERT`` if it lies in such a run of at least ``t_long`` samples beyond ``minc``
      (or below ``minc_low``);
    * else ``IDLE`` if it is not active (by default: its value is 0 or NaN);
    * else ``OK``.

    Each side's runs are counted on their own: a run must stay on one side. Comparisons are
    strict: a residual equal to ``minc`` is not beyond it. An idle sample never counts as
    beyond a threshold and so breaks runs, whatever its residual; the trainer already sets
    those residuals to NaN, and enforcing it here keeps a stopped axis from ever raising an
    alarm. A NaN residual on an active sample is ``OK`` and breaks runs too.

    Parameters
    ----------
    values, residuals:
        1-D float arrays of equal length, in time order.
    minc, maxc:
        Alert and error levels above (``MinC``, ``MaxC``); finite.
    t_long, t_short:
        Minimum run lengths in samples (``T_long_steps``, ``T_short_steps``); integers >= 1.
    minc_low, maxc_low:
        Alert and error levels below (``MinC_low``, ``MaxC_low``); None = no lower side.
    upper:
        Whether the upper side alarms (False for a lower-only rule).
    active:
        Which samples are active; default: ``values`` neither 0 nor NaN.

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
    levels = {"minc": minc, "maxc": maxc}
    if minc_low is not None or maxc_low is not None:
        levels.update({"minc_low": minc_low, "maxc_low": maxc_low})
    for name, level in levels.items():
        if not isinstance(level, Real) or not np.isfinite(level):
            raise ScoringInputError(f"assign_levels: {name} must be a finite number, got {level!r}")
    for name, steps in (("t_long", t_long), ("t_short", t_short)):
        if not isinstance(steps, Integral) or isinstance(steps, bool) or steps < 1:
            raise ScoringInputError(
                f"assign_levels: {name} must be an integer >= 1 (samples), got {steps!r}"
            )

    active = active_mask(values) if active is None else np.asarray(active, dtype=bool)
    # Work on the positions beyond each threshold (a small share of the samples), not on masks.
    sides: list[tuple[np.ufunc, float, float]] = []
    if upper:
        sides.append((np.greater, minc, maxc))
    if minc_low is not None and maxc_low is not None:
        sides.append((np.less, minc_low, maxc_low))
    # Beyond the error level implies beyond the alert level (the usual case): the error rows
    # are looked for among the alert rows only; otherwise they are a scan of their own.
    implied = [bool(beyond(error, alert) or error == alert) for beyond, alert, error in sides]
    scans = [(beyond, alert) for beyond, alert, _ in sides]
    for (beyond, _, error), inside in zip(sides, implied, strict=True):
        if not inside:
            scans.append((beyond, error))
    found = iter(_active_rows_beyond(residuals, active, scans))
    alerts = [next(found) for _ in sides]
    codes = active.astype(np.int8)  # IDLE 0, OK 1
    errors: list[np.ndarray] = []
    for (beyond, _, error_level), alert_rows, inside in zip(sides, alerts, implied, strict=True):
        error_rows = (
            alert_rows[beyond(residuals[alert_rows], error_level)] if inside else next(found)
        )
        codes[sustained_rows(alert_rows, int(t_long))] = Level.ALERT
        errors.append(sustained_rows(error_rows, int(t_short)))
    for rows in errors:
        codes[rows] = Level.ERROR
    return codes


_BLOCK_ROWS = 1 << 15
"""Rows per block of the scans of values and residuals: a block's masks stay in the CPU cache,
so each input is read from memory once and no full-length temporary is made."""


def active_mask(values: np.ndarray) -> np.ndarray:
    """Whether each value is active: neither 0 nor NaN (NaN compares False both ways)."""
    values = np.asarray(values)
    out = np.empty(values.shape, dtype=bool)
    if values.ndim != 1:
        return np.logical_or(values > 0, values < 0, out=out)
    for lo in range(0, values.size, _BLOCK_ROWS):
        block = values[lo : lo + _BLOCK_ROWS]
        mask = np.greater(block, 0, out=out[lo : lo + _BLOCK_ROWS])
        mask |= block < 0
    return out


def _active_rows_beyond(
    residuals: np.ndarray, active: np.ndarray, scans: list[tuple[np.ufunc, float]]
) -> list[np.ndarray]:
    """Per (comparison, level) of ``scans``: the sorted active rows whose residual is beyond the
    level (``np.flatnonzero(beyond(residuals, level) & active)``), all in one pass."""
    found: list[list[np.ndarray]] = [[] for _ in scans]
    for lo in range(0, residuals.size, _BLOCK_ROWS):
        block = residuals[lo : lo + _BLOCK_ROWS]
        on = active[lo : lo + _BLOCK_ROWS]
        for parts, (beyond, level) in zip(found, scans, strict=True):
            rows = np.flatnonzero(beyond(block, level))
            parts.append(rows[on[rows]] + lo)
    return [np.concatenate(parts) if parts else np.empty(0, np.intp) for parts in found]


def mark_sensor_faults(codes: np.ndarray, active: list[np.ndarray], steps: int) -> list[np.ndarray]:
    """Raise ``IDLE`` to ``SENSOR`` where an axis is inactive while another axis is active,
    in runs of at least ``steps`` samples.

    Args:
        codes: per axis, ``int8`` level codes (changed in place), same order as ``active``.
        active: per axis, whether each sample is active (neither 0 nor NaN).
        steps: shortest run of such samples that is a sensor fault (>= 1).

    Returns:
        ``codes``. With one axis there is no other to tell a running machine: nothing changes.
    """
    if len(active) < 2:
        return list(codes)
    running = np.zeros(active[0].size, dtype=bool)
    for mask in active:
        running |= mask
    for level, mask in zip(codes, active, strict=True):
        # Where this axis is inactive, "some axis runs" means "another axis runs".
        dead = np.flatnonzero(running > mask)
        level[sustained_rows(dead, int(steps))] = Level.SENSOR
    return list(codes)
