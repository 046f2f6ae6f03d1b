"""Drift of an axis's residual level: block means, a two-sided CUSUM and an EWMA chart.

Per sample, the residual is standardised with the version's baseline (``z = (r − center) /
scale``, ``scale`` the residual σ learned at training) and clipped to ``±clip``, so a spike or
a short incident moves a block by at most ``clip`` times its share of the block. The samples of
each time block (``block_seconds``, aligned to the epoch: hourly blocks start on the hour) are
averaged, and every *closed* block (a sample of a later block has been seen) updates

* the CUSUM ``S⁺ₙ = max(0, S⁺ₙ₋₁ + zₙ − k)``, ``S⁻ₙ = max(0, S⁻ₙ₋₁ − zₙ − k)``, signalling when
  either exceeds ``h`` (``k`` and ``h`` in residual σ);
* the EWMA ``Eₙ = λ zₙ + (1 − λ) Eₙ₋₁``, signalling when ``|Eₙ| > L √(λ / (2 − λ))`` (its
  asymptotic control limit in residual σ).

An axis's *strength* is the largest of ``S⁺/h``, ``S⁻/h`` and ``|E|/limit``: it drifts while the
strength exceeds 1 and, with ``isolate_ratio`` set, is at least that share of the strongest axis
of the asset in the same block. Multivariate families (``cross``, ``pca``) predict one axis from
the others, so a degrading axis also shifts the residuals of the axes predicted from it, by a
fraction of its own shift; isolation keeps the drift on the axis that moved.

Blocks without an active sample of an axis leave its statistics as they were. Both recursions
are computed with array accumulations (``np.minimum.accumulate`` and ``scipy.signal.lfilter``),
never a loop over samples or blocks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from DataExtractionAnalysis import epoch_seconds

__all__ = [
    "BlockSums",
    "DriftParameters",
    "active_only",
    "block_sums",
    "cusum_path",
    "drift_strength",
    "epoch_seconds",
    "ewma_limit",
    "ewma_path",
    "standardise",
]


@dataclass(frozen=True)
class DriftParameters:
    """The charts' settings, stored with the version (``drift.json``).

    Attributes:
        block_seconds: length of the time blocks whose mean residual the charts follow.
        cusum_k, cusum_h: CUSUM slack and decision threshold, in residual σ.
        ewma_lambda, ewma_l: EWMA weight of the newest block and control-limit width.
        clip: standardised residuals are clipped to ``±clip`` before averaging.
        isolate_ratio: an axis drifts only while its strength is at least this share of the
            strongest axis's in the block (None: every axis on its own).
    """

    block_seconds: float = 3600.0
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    ewma_lambda: float = 0.2
    ewma_l: float = 3.0
    clip: float = 3.0
    isolate_ratio: float | None = 0.75

    @property
    def limit(self) -> float:
        """The EWMA control limit in residual σ."""
        return ewma_limit(self.ewma_lambda, self.ewma_l)


def active_only(residuals: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """``residuals`` with NaN where the value is 0 (idle) or NaN (missing): no evidence."""
    out = np.array(residuals, dtype=np.float64)
    if values is not None:
        value = np.asarray(values)
        out[~((value > 0) | (value < 0))] = np.nan  # NaN compares False both ways
    return out


def ewma_limit(lam: float, width: float) -> float:
    """``width · √(λ / (2 − λ))``: the EWMA's asymptotic control limit for unit variance."""
    return width * math.sqrt(lam / (2.0 - lam))


def standardise(
    residuals: np.ndarray,
    center: float,
    scale: float,
    clip: float,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """``clip((r − center) / scale, −clip, clip)``; NaN stays NaN, and so does every sample
    whose value (when given) is 0 or NaN (see :func:`active_only`). One new array."""
    z = np.subtract(residuals, center, dtype=np.float64)
    z *= 1.0 / scale
    np.clip(z, -clip, clip, out=z)
    if values is not None:
        value = np.asarray(values)
        np.copyto(z, np.nan, where=~((value > 0) | (value < 0)))
    return z


def cusum_path(
    z: np.ndarray, k: float, start_pos: float = 0.0, start_neg: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The two-sided CUSUM after each of ``z`` (finite values), from the given start.

    ``S⁺ₙ = max(0, S⁺ₙ₋₁ + zₙ − k)`` unrolls to ``Cₙ − min(0, min_{j≤n} Cⱼ)`` with
    ``Cₙ = S⁺₀ + Σ_{i≤n} (zᵢ − k)``, so both sides are one cumulative sum and one running
    minimum each.
    """
    z = np.asarray(z, dtype=np.float64)
    return _lindley(z - k, start_pos), _lindley(-z - k, start_neg)


def _lindley(steps: np.ndarray, start: float) -> np.ndarray:
    """``Sₙ = max(0, Sₙ₋₁ + stepₙ)`` from ``S₀ = start`` (>= 0), vectorised."""
    if not steps.size:
        return steps.copy()
    walk = start + np.cumsum(steps)
    floor = np.minimum.accumulate(np.minimum(walk, 0.0))
    return np.maximum(walk - floor, 0.0)


def ewma_path(z: np.ndarray, lam: float, start: float = 0.0) -> np.ndarray:
    """``Eₙ = λ zₙ + (1 − λ) Eₙ₋₁`` after each of ``z`` (finite values), from ``E₀ = start``."""
    z = np.asarray(z, dtype=np.float64)
    if not z.size:
        return z.copy()
    from scipy.signal import lfilter  # imported when used: scipy.signal costs ~1.4 s

    out, _ = lfilter([lam], [1.0, lam - 1.0], z, zi=[(1.0 - lam) * start])
    return out


def drift_strength(
    pos: np.ndarray, neg: np.ndarray, ewma: np.ndarray, params: DriftParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Strength (largest of ``S⁺/h``, ``S⁻/h``, ``|E|/limit``) and direction (+1 up, −1 down).

    The direction is the side of the stronger statistic; a tie goes up.
    """
    up = np.maximum(pos / params.cusum_h, np.maximum(ewma, 0.0) / params.limit)
    down = np.maximum(neg / params.cusum_h, np.maximum(-ewma, 0.0) / params.limit)
    return np.maximum(up, down), np.where(down > up, -1, 1).astype(np.int8)


@dataclass(frozen=True)
class BlockSums:
    """Per time block of a stretch of samples: its id, first and last sample time, and per
    axis the sum and count of the finite standardised residuals."""

    ids: np.ndarray
    first: np.ndarray
    last: np.ndarray
    sums: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.ids.size)


_CHUNK_ROWS = 1 << 16
"""Rows per piece of :func:`block_sums`: the piece's scratch arrays stay in the CPU cache instead
of several full-length temporaries per axis (a piece is whole blocks, so every block's sum is
the same ``np.add.reduceat`` over the same values)."""

ZSource = np.ndarray | Callable[[int, int], np.ndarray]
"""An axis's standardised residuals: the array, or a function giving rows ``lo`` to ``hi``."""


def block_sums(seconds: np.ndarray, z: Mapping[str, ZSource], block_seconds: float) -> BlockSums:
    """Group time-sorted samples into epoch-aligned blocks of ``block_seconds``.

    Args:
        seconds: epoch seconds of the samples, sorted.
        z: axis → standardised residual per sample (NaN: idle or missing, left out), or a
            function ``(lo, hi) -> array`` of those of rows ``lo`` to ``hi`` (computed piece by
            piece, never whole).
        block_seconds: block length.
    """
    seconds = np.asarray(seconds, dtype=np.float64)
    if not seconds.size:
        ids = np.floor(seconds / block_seconds).astype(np.int64)
        empty = np.empty(0)
        return BlockSums(
            ids, empty, empty, {a: empty for a in z}, {a: empty.astype(np.int64) for a in z}
        )
    ids, starts = _block_starts(seconds, block_seconds)
    size = seconds.size
    ends = np.r_[starts[1:], size] - 1
    # Pieces of whole blocks, about _CHUNK_ROWS rows each (a longer block is a piece alone).
    cuts = np.unique(np.r_[0, np.searchsorted(starts, np.arange(_CHUNK_ROWS, size, _CHUNK_ROWS))])
    cuts = np.r_[cuts[cuts < starts.size], starts.size]
    sums: dict[str, list[np.ndarray]] = {axis: [] for axis in z}
    counts: dict[str, list[np.ndarray]] = {axis: [] for axis in z}
    for begin, stop in itertools.pairwise(cuts):
        lo = int(starts[begin])
        hi = int(starts[stop]) if stop < starts.size else size
        local = starts[begin:stop] - lo
        lengths = ends[begin:stop] - starts[begin:stop] + 1
        for axis, source in z.items():
            values = source(lo, hi) if callable(source) else source[lo:hi]
            missing = np.isnan(values)
            sums[axis].append(np.add.reduceat(np.where(missing, 0.0, values), local))
            counts[axis].append(lengths - np.add.reduceat(missing, local, dtype=np.int64))
    return BlockSums(
        ids,
        seconds[starts],
        seconds[ends],
        {axis: np.concatenate(parts) for axis, parts in sums.items()},
        {axis: np.concatenate(parts) for axis, parts in counts.items()},
    )


def _block_starts(seconds: np.ndarray, block_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The id of every block of the (non-empty, sorted) samples and its first row, piece by
    piece."""
    starts: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    previous: np.int64 | None = None
    for lo in range(0, seconds.size, _CHUNK_ROWS):
        block = np.floor(seconds[lo : lo + _CHUNK_ROWS] / block_seconds).astype(np.int64)
        new = np.empty(block.size, dtype=bool)
        new[0] = previous is None or block[0] != previous
        np.not_equal(block[1:], block[:-1], out=new[1:])
        at = np.flatnonzero(new)
        starts.append(at + lo)
        ids.append(block[at])
        previous = block[-1]
    return np.concatenate(ids), np.concatenate(starts)
