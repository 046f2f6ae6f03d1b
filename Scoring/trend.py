"""Time to threshold: a robust trend of an axis's residual level, projected to MaxC.

The residual level is the mean residual per time block (the drift charts' blocks). A
Theil–Sen line (the median of the pairwise slopes, ``scipy.stats.theilslopes``) through the
block means of the last ``window_seconds`` is robust to incidents and spikes; its confidence
interval (``confidence``) is the uncertainty. The trend is *significant* when that interval
excludes 0; only then is it projected: from the line's level at the newest block, at the
slope and at the interval's two ends, to the time the level reaches the error threshold on
the side it moves towards (``MaxC`` rising, ``MaxC_low`` falling, when that side is on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .drift import BlockSums, active_only, block_sums

__all__ = ["LevelHistory", "TrendProjection", "project_crossing"]


@dataclass(frozen=True)
class TrendProjection:
    """A significant trend of one axis's residual level and when it reaches the threshold.

    Attributes:
        slope_per_day, slope_low, slope_high: the Theil–Sen slope and its confidence interval,
            in residual units per day.
        level: the trend line's residual level at ``at`` (epoch seconds of the newest block).
        threshold: the error threshold it moves towards (MaxC, or MaxC_low when falling).
        days, days_early, days_late: days from ``at`` to the crossing at the slope, at the
            steeper and at the flatter end of the interval (0: already beyond).
        blocks: block means the line was fitted to.
    """

    slope_per_day: float
    slope_low: float
    slope_high: float
    level: float
    threshold: float
    at: float
    days: float
    days_early: float
    days_late: float
    blocks: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def sentence(self, axis: str) -> str:
        """E.g. ``axis3 reaches its error threshold in about 12.0 days (8.1 to 19.5) at the
        current trend``."""
        return (
            f"{axis} reaches its error threshold in about {self.days:.1f} days "
            f"({self.days_early:.1f} to {self.days_late:.1f}) at the current trend"
        )


def _days_to(level: float, threshold: float, slope_per_day: float) -> float:
    """Days until ``level`` reaches ``threshold`` at ``slope_per_day`` (non-zero, towards it);
    0 when it is already there or beyond."""
    return max((threshold - level) / slope_per_day, 0.0)


@dataclass(frozen=True)
class _Fit:
    """A significant Theil–Sen trend: slope and interval per day, level at the newest block."""

    slope: float
    low: float
    high: float
    level: float
    at: float
    blocks: int


def _significant(
    seconds: np.ndarray, levels: np.ndarray, confidence: float, min_blocks: int
) -> _Fit | None:
    """The Theil–Sen line of ``levels`` when its slope interval excludes 0 (None: fewer than
    ``min_blocks`` finite blocks, or no significant trend)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    finite = np.isfinite(levels) & np.isfinite(seconds)
    if np.count_nonzero(finite) < max(min_blocks, 3):
        return None
    days = (seconds[finite] - seconds[finite][-1]) / 86_400.0
    from scipy.stats import theilslopes  # imported when used: scipy.stats costs ~0.4 s

    fit = theilslopes(levels[finite], days, confidence)
    low, high = float(fit.low_slope), float(fit.high_slope)
    if low <= 0.0 <= high:
        return None
    return _Fit(
        slope=float(fit.slope),
        low=low,
        high=high,
        level=float(fit.intercept),  # at day 0: the newest block
        at=float(seconds[finite][-1]),
        blocks=int(np.count_nonzero(finite)),
    )


def _projected(fit: _Fit, maxc: float | None, maxc_low: float | None) -> TrendProjection | None:
    """``fit`` projected to the threshold on the side it moves towards (None: no threshold
    there)."""
    threshold = maxc if fit.slope > 0 else maxc_low
    if threshold is None or not math.isfinite(threshold):
        return None
    steep, flat = (fit.high, fit.low) if fit.slope > 0 else (fit.low, fit.high)
    return TrendProjection(
        slope_per_day=fit.slope,
        slope_low=fit.low,
        slope_high=fit.high,
        level=fit.level,
        threshold=float(threshold),
        at=fit.at,
        days=_days_to(fit.level, threshold, fit.slope),
        days_early=_days_to(fit.level, threshold, steep),
        days_late=_days_to(fit.level, threshold, flat),
        blocks=fit.blocks,
    )


def project_crossing(
    seconds: np.ndarray,
    levels: np.ndarray,
    *,
    maxc: float | None,
    maxc_low: float | None = None,
    confidence: float = 0.95,
    min_blocks: int = 12,
) -> TrendProjection | None:
    """The significant trend of ``levels`` (block means at ``seconds``) and its crossing.

    Returns None with fewer than ``min_blocks`` finite blocks, without a significant trend, or
    when the trend moves towards a side without a threshold.
    """
    fit = _significant(seconds, levels, confidence, min_blocks)
    return None if fit is None else _projected(fit, maxc, maxc_low)


Blocks = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Block ids (ascending), sums and counts of one axis."""

_NO_IDS = np.empty(0, dtype=np.int64)
_NO_SUMS = np.empty(0, dtype=np.float64)
_NO_COUNTS = np.empty(0, dtype=np.int64)


def _sum_by_block(ids: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> Blocks:
    """Sums and counts per block id, ids ascending: ``pandas`` ``groupby(id).sum()``, value
    for value, without a frame per axis and run (it was most of a fleet score run's CPU).

    A block occurs at most twice (cut by one window edge, or stored and added): pandas's
    compensated sum of one or two values is ``0.0 + a (+ b)`` in their order, as here. A block
    seen more often (windows shorter than a block) goes through pandas itself.
    """
    order = np.argsort(ids, kind="stable")
    ids, sums, counts = ids[order], sums[order], counts[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if ids.size else _NO_IDS
    sizes = np.diff(np.r_[starts, ids.size])
    if sizes.size and sizes.max() > 2:
        frame = pd.DataFrame({"id": ids, "sum": sums, "count": counts})
        joined = frame.groupby("id", sort=True).sum()
        return (
            joined.index.to_numpy(),
            joined["sum"].to_numpy(dtype=np.float64),
            joined["count"].to_numpy(),
        )
    total = np.add(0.0, sums[starts], dtype=np.float64)
    number = counts[starts].copy()
    pairs = starts[sizes == 2]
    total[sizes == 2] += sums[pairs + 1]
    number[sizes == 2] += counts[pairs + 1]
    return ids[starts], total, number


class LevelHistory:
    """Each axis's mean residual per time block, gathered from a run's windows in time order.

    Args:
        block_seconds: the block length (the drift charts').
    """

    def __init__(
        self,
        block_seconds: float,
        stored: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.block_seconds = block_seconds
        self._parts: list[BlockSums] = []
        self._stored = dict(stored or {})
        """Axis → (block ids, sums, counts) of earlier runs (not written again)."""
        self._added: dict[str, Blocks] = {}

    def add(
        self,
        seconds: np.ndarray,
        residuals: Mapping[str, np.ndarray],
        values: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Add a window's samples (idle and missing ones left out, given ``values``)."""
        raw = {
            axis: active_only(r, None if values is None else values.get(axis))
            for axis, r in residuals.items()
        }
        self._parts.append(block_sums(seconds, raw, self.block_seconds))
        self._added.clear()

    def blocks(self, axis: str) -> Blocks:
        """This history's own blocks of ``axis``: (block ids ascending, sums, counts), a block
        cut by a window edge joined, blocks without samples left out. Kept until the next
        :meth:`add` (a run's save and its projection read the same blocks)."""
        found = self._added.get(axis)
        if found is None:
            parts = [p for p in self._parts if axis in p.sums and len(p)]
            if not parts:
                found = (_NO_IDS, _NO_SUMS, _NO_COUNTS)
            else:
                found = _sum_by_block(
                    np.concatenate([p.ids for p in parts]),
                    np.concatenate([p.sums[axis] for p in parts]),
                    np.concatenate([p.counts[axis] for p in parts]),
                )
                keep = found[2] > 0
                found = (found[0][keep], found[1][keep], found[2][keep])
            self._added[axis] = found
        return found

    def added(self, axis: str) -> pd.DataFrame:
        """:meth:`blocks` as a frame (columns ``sum``, ``count``, index the block id)."""
        ids, sums, counts = self.blocks(axis)
        return pd.DataFrame({"sum": sums, "count": counts}, index=pd.Index(ids, name="id"))

    def levels(self, axis: str) -> tuple[np.ndarray, np.ndarray]:
        """Block centres (epoch seconds) and mean residuals of ``axis``: the stored blocks of
        earlier runs and this history's own, a block spanning both joined."""
        ids, sums, counts = self._stored.get(axis, (np.empty(0), np.empty(0), np.empty(0)))
        own = self.blocks(axis)
        joined = _sum_by_block(
            np.concatenate([ids, own[0]]),
            np.concatenate([sums, own[1]]),
            np.concatenate([counts, own[2]]),
        )
        keep = joined[2] > 0
        centres = (joined[0][keep].astype(np.float64) + 0.5) * self.block_seconds
        return centres, joined[1][keep] / joined[2][keep]

    def project(
        self,
        rules: Mapping[str, Any],
        *,
        window_seconds: float,
        confidence: float,
        min_blocks: int,
        scales: Mapping[str, float] | None = None,
        isolate_ratio: float | None = None,
    ) -> dict[str, TrendProjection]:
        """The axes of ``rules`` (``AxisRule`` per axis) with a significant trend towards an
        error threshold, over their last ``window_seconds`` of blocks.

        With ``scales`` (each axis's residual σ) and ``isolate_ratio``, an axis is kept only
        when its trend in σ per day is at least that share of the steepest significant trend
        of any axis (projected or not, e.g. towards a side without a threshold), or when it
        reaches its threshold no later than the steepest axis does: a degrading axis also tilts
        the residuals of the axes predicted from it (``cross``, ``pca``), more weakly, and
        those echoes are not projected (as the drift charts' rule), but an axis that would
        fail first is never hidden.
        """
        fits: dict[str, _Fit] = {}
        found: dict[str, TrendProjection] = {}
        for axis, rule in rules.items():
            centres, means = self.levels(axis)
            if not centres.size:
                continue
            recent = centres > centres[-1] - window_seconds
            fit = _significant(centres[recent], means[recent], confidence, min_blocks)
            if fit is None:
                continue
            fits[axis] = fit
            projection = _projected(
                fit,
                rule.max_c if rule.upper else None,
                rule.max_c_low if rule.lower else None,
            )
            if projection is not None:
                found[axis] = projection
        if scales is None or isolate_ratio is None:
            return found
        steepness = {
            axis: abs(fit.slope) / scales[axis]
            for axis, fit in fits.items()
            if scales.get(axis, 0.0) > 0.0
        }
        if not steepness:
            return found
        top = max(steepness, key=lambda axis: steepness[axis])
        top_days = found[top].days if top in found else None
        return {
            axis: p
            for axis, p in found.items()
            if axis not in steepness
            or steepness[axis] >= isolate_ratio * steepness[top]
            or (top_days is not None and p.days <= top_days)
        }
