"""The machine channel's ``ssr`` score, shared by calibration and scoring.

Per sample, ``ssr`` is the mean over the axes with a finite residual of ``z² = ((r − center) /
scale)²`` (NaN where no axis has one), and an axis's *share* is its ``z²`` over their sum. The
sum runs over the axes in order, skipping NaN. Rows are taken one cache-sized block at a time:
a 10 M-row window of 8 axes never holds a rows × axes matrix (640 MB), and NumPy never reduces
along its short rows, which costs more than the arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ssr_score", "ssr_shares"]

BLOCK_ROWS = 1 << 15
"""Rows per block: a block's scratch arrays stay in the CPU cache."""


def _squared_z(residual: np.ndarray, center: float, scale: float) -> np.ndarray:
    """``((residual − center) / scale)²`` as a new array."""
    z = residual - center
    z /= scale
    return np.square(z, out=z)


def _add(total: np.ndarray, count: np.ndarray, squares: np.ndarray) -> None:
    """Add one axis's ``z²`` to the running NaN-skipping sum and the count of finite ones."""
    count += np.isfinite(squares)
    total += np.where(np.isnan(squares), 0.0, squares)


def ssr_score(
    residuals: Sequence[np.ndarray], centers: Sequence[float], scales: Sequence[float]
) -> np.ndarray:
    """The ``ssr`` score of every row (see the module docstring).

    Parameters
    ----------
    residuals:
        One 1-D float64 array per axis, all of one length; NaN where the axis is idle or
        missing.
    centers, scales:
        Per axis, the residual's median and spread from its thresholds (``center``, ``scale``).

    Returns
    -------
    numpy.ndarray
        A new float64 array, NaN on rows where no axis has a finite residual.
    """
    rows = residuals[0].size if residuals else 0
    out = np.empty(rows)
    for start in range(0, rows, BLOCK_ROWS):
        block = slice(start, min(start + BLOCK_ROWS, rows))
        total = np.zeros(block.stop - start)
        count = np.zeros(block.stop - start)
        for residual, center, scale in zip(residuals, centers, scales, strict=True):
            _add(total, count, _squared_z(residual[block], center, scale))
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(total, count, out=out[block])
    return out


def ssr_shares(
    residuals: Sequence[np.ndarray],
    centers: Sequence[float],
    scales: Sequence[float],
    rows: slice | np.ndarray,
) -> np.ndarray:
    """The ``rows`` (a slice or positions) × axes: each axis's share of its row's ``z²`` sum.

    NaN where the axis has no finite residual, and on rows whose every ``z²`` is 0 or missing.
    """
    squares = np.column_stack(
        [
            _squared_z(residual[rows], center, scale)
            for residual, center, scale in zip(residuals, centers, scales, strict=True)
        ]
    )
    total = np.zeros(squares.shape[0])
    count = np.zeros(squares.shape[0])
    for column in squares.T:
        _add(total, count, column)
    with np.errstate(invalid="ignore", divide="ignore"):
        return squares / total[:, None]
