"""Vectorised detection of runs of consecutive ``True`` samples.

Both threshold calibration (observed run lengths) and scoring (sustained
alert/error runs) need the same primitive, so it lives here once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["row_runs", "run_bounds", "run_lengths", "sustained", "sustained_rows"]


def run_bounds(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the start and end indices of every maximal run of ``True`` in ``mask``.

    Parameters
    ----------
    mask:
        One-dimensional boolean array.

    Returns
    -------
    (starts, ends):
        Two int64 arrays of equal length; run ``i`` covers ``mask[starts[i]:ends[i]]``
        (``ends`` is exclusive).
    """
    flags = np.asarray(mask, dtype=bool)
    if flags.ndim != 1:
        raise ValueError(f"run_bounds expects a 1-D mask, got shape {flags.shape}")
    # Where a value differs from the one before (a boolean compare: no int8 diff pass, and
    # no padded copy of the mask); a run open at either end gets its edge added.
    edges = np.flatnonzero(flags[1:] != flags[:-1]).astype(np.int64, copy=False)
    edges += 1
    if flags.size and flags[0]:
        edges = np.concatenate(([0], edges))
    if flags.size and flags[-1]:
        edges = np.concatenate((edges, [flags.size]))
    return edges[0::2], edges[1::2]


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """Return the length of every maximal run of ``True`` in ``mask``, in order."""
    starts, ends = run_bounds(mask)
    return ends - starts


def sustained(mask: np.ndarray, min_length: int) -> np.ndarray:
    """Mask of the samples that lie in a maximal ``True`` run of at least ``min_length``."""
    if min_length <= 1:
        return mask
    starts, ends = run_bounds(mask)
    long_enough = (ends - starts) >= min_length
    if long_enough.all():
        return mask
    starts, ends = starts[long_enough], ends[long_enough]
    # Paint the kept runs in one pass: the array splits into alternating segments
    # gap, run, gap, run, ..., gap whose lengths come from the run bounds.
    bounds = np.empty(2 * starts.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, mask.size
    bounds[1:-1:2], bounds[2:-1:2] = starts, ends
    inside = np.zeros(2 * starts.size + 1, dtype=bool)
    inside[1::2] = True
    return np.repeat(inside, np.diff(bounds))


def row_runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the runs of consecutive positions begin and end in sorted, distinct ``rows``.

    ``rows`` lists the ``True`` samples of a mask (``np.flatnonzero(mask)``); run ``i`` is
    ``rows[starts[i]:ends[i]]``, so ``ends - starts`` are the :func:`run_lengths` of the mask.
    Its cost follows the ``True`` samples, not the mask: what alarms is a small share of it.
    """
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate(([0], breaks)) if rows.size else breaks
    ends = np.concatenate((breaks, [rows.size])) if rows.size else breaks
    return starts, ends


def sustained_rows(rows: np.ndarray, min_length: int) -> np.ndarray:
    """The positions of sorted, distinct ``rows`` that lie in a run of at least ``min_length``
    consecutive positions: ``np.flatnonzero(sustained(mask, min_length))`` for
    ``rows = np.flatnonzero(mask)``."""
    if min_length <= 1 or rows.size == 0:
        return rows
    starts, ends = row_runs(rows)
    lengths = ends - starts
    return rows[np.repeat(lengths >= min_length, lengths)]
