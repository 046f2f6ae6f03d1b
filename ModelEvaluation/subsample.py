"""Deterministic subsampling of a plotted series that keeps its extremes.

A series longer than ``max_points`` is cut, in time order, into ``max_points // 4`` buckets of
equal size (the last may be shorter); each bucket keeps its minimum, its maximum, its first and
its middle sample. Peaks, the global minimum and the global maximum therefore always survive,
the body of the distribution stays visible, and the same input always gives the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .evaluator import EvaluationError

__all__ = ["Picked", "pick", "subsample_extremes"]


def subsample_extremes(values: np.ndarray, max_points: int) -> np.ndarray:
    """Return sorted indices of at most ``max_points`` samples that keep every bucket's extremes.

    ``values`` (finite, in time order) is cut into ``max_points // 4`` buckets of
    ``ceil(len / buckets)`` consecutive samples (the last may be shorter). Each bucket keeps
    its first minimum, its first maximum, its first sample and its middle sample: the
    extremes keep peaks (and the global minimum and maximum), the two evenly spaced samples
    keep the body of the distribution visible, so noise does not look like two bands.
    With ``len(values) <= max_points`` every index is returned.

    Parameters
    ----------
    values:
        1-D array of finite values.
    max_points:
        Upper bound on the number of indices returned; at least 4.

    Returns
    -------
    numpy.ndarray
        Sorted, unique int64 indices into ``values``.

    Raises
    ------
    EvaluationError
        If ``max_points < 4`` or ``values`` is not 1-D.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise EvaluationError(f"values must be 1-D, got shape {data.shape}")
    if max_points < 4:
        raise EvaluationError(f"max_points must be at least 4, got {max_points}")
    n = data.size
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    bucket_size = math.ceil(n / (max_points // 4))
    n_buckets = math.ceil(n / bucket_size)
    full = n // bucket_size
    # Full buckets are a reshaped view (no copy); a shorter last bucket is reduced on its own.
    body = data[: full * bucket_size].reshape(full, bucket_size)
    lows, highs = body.argmin(axis=1), body.argmax(axis=1)
    if full < n_buckets:
        tail = data[full * bucket_size :]
        lows = np.append(lows, tail.argmin())
        highs = np.append(highs, tail.argmax())
    starts = np.arange(n_buckets, dtype=np.int64) * bucket_size
    middles = np.minimum(starts + bucket_size // 2, n - 1)
    return np.unique(np.concatenate((starts, middles, starts + lows, starts + highs)))


_RANK_BLOCK = 1 << 16


def _rows_of(mask: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Row index of the ``ranks``-th True entries of ``mask`` (``ranks`` sorted).

    Works block by block, so no full-length index array (8 bytes per row) is built.
    """
    if ranks.size == 0 or mask.all():
        return ranks
    starts = np.arange(0, mask.size, _RANK_BLOCK)
    full = mask.size // _RANK_BLOCK * _RANK_BLOCK
    counts = np.count_nonzero(mask[:full].reshape(-1, _RANK_BLOCK), axis=1)
    if full < mask.size:
        counts = np.append(counts, np.count_nonzero(mask[full:]))
    ends = np.cumsum(counts)
    blocks = np.searchsorted(ends, ranks, side="right")
    rows = np.empty_like(ranks)
    for block in np.unique(blocks):
        chosen = blocks == block
        start = int(starts[block])
        inside = np.flatnonzero(mask[start : start + _RANK_BLOCK])
        rows[chosen] = start + inside[ranks[chosen] - (ends[block] - counts[block])]
    return rows


@dataclass(frozen=True)
class Picked:
    """The subsampled points of one series: row indices, values, how many rows were usable."""

    rows: np.ndarray
    values: np.ndarray
    n_total: int


def pick(values: np.ndarray, usable: np.ndarray, max_points: int) -> Picked:
    """Subsample ``values[usable]`` (see :func:`subsample_extremes`) into at most max_points.

    A long series is gathered block by block and each block's whole buckets are reduced at
    once, so no full-length copy of it is made; the x of each kept point is looked up by its
    row instead of gathering the x column as well.
    """
    total = int(np.count_nonzero(usable))
    if total <= max_points or max_points < 4:
        gathered = values[usable]
        keep = subsample_extremes(gathered, max_points)
        return Picked(rows=_rows_of(usable, keep), values=gathered[keep], n_total=total)
    size = math.ceil(total / (max_points // 4))  # samples per bucket, as subsample_extremes
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    counts: list[int] = []  # usable rows per block
    waiting: list[np.ndarray] = []  # gathered values of the buckets not reduced yet
    held = 0
    for start in range(0, usable.size, _RANK_BLOCK):
        block = values[start : start + _RANK_BLOCK][usable[start : start + _RANK_BLOCK]]
        counts.append(block.size)
        waiting.append(block)
        held += block.size
        if held < size:
            continue
        ready = np.concatenate(waiting) if len(waiting) > 1 else block
        whole = held - held % size
        buckets = ready[:whole].reshape(-1, size)
        lows.append(buckets.argmin(axis=1))
        highs.append(buckets.argmax(axis=1))
        waiting, held = [ready[whole:]], held - whole
    if held:  # the shorter last bucket
        tail = np.concatenate(waiting)
        lows.append(np.array([tail.argmin()]))
        highs.append(np.array([tail.argmax()]))
    starts = np.arange(math.ceil(total / size), dtype=np.int64) * size
    middles = np.minimum(starts + size // 2, total - 1)
    keep = np.unique(
        np.concatenate(
            (starts, middles, starts + np.concatenate(lows), starts + np.concatenate(highs))
        )
    )
    rows = _block_rows(usable, keep, np.array(counts))
    return Picked(rows=rows, values=values[rows], n_total=total)


def _block_rows(mask: np.ndarray, ranks: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`_rows_of` with the True entries of each block of ``mask`` already counted."""
    ends = np.cumsum(counts)
    # ranks[bounds[b]:bounds[b + 1]] fall in block b
    bounds = np.searchsorted(ranks, np.r_[0, ends], side="left")
    rows = np.empty_like(ranks)
    for block in np.flatnonzero(bounds[1:] > bounds[:-1]):
        first, last = bounds[block], bounds[block + 1]
        start = int(block) * _RANK_BLOCK
        inside = np.flatnonzero(mask[start : start + _RANK_BLOCK])
        rows[first:last] = start + inside[ranks[first:last] - (ends[block] - counts[block])]
    return rows
