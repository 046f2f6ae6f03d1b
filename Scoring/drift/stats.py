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

import math
from collections.abc import Mapping
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


def block_sums(seconds: np.ndarray, z: Mapping[str, np.ndarray], block_seconds: float) -> BlockSums:
    """Group time-sorted samples into epoch-aligned blocks of ``block_seconds``.

    Args:
        seconds: epoch seconds of the samples, sorted.
        z: axis → standardised residual per sample (NaN: idle or missing, left out).
        block_seconds: block length.
    """
    seconds = np.asarray(seconds, dtype=np.float64)
    ids = np.floor(seconds / block_seconds).astype(np.int64)
    if not ids.size:
        empty = np.empty(0)
        return BlockSums(
            ids, empty, empty, {a: empty for a in z}, {a: empty.astype(np.int64) for a in z}
        )
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], ids.size] - 1
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for axis, values in z.items():
        missing = np.isnan(values)
        sums[axis] = np.add.reduceat(np.where(missing, 0.0, values), starts)
        counts[axis] = (ends - starts + 1) - np.add.reduceat(missing, starts, dtype=np.int64)
    return BlockSums(ids[starts], seconds[starts], seconds[ends], sums, counts)
