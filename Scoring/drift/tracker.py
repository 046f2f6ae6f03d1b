"""Drift baselines learned at training, and the running drift state of one asset.

:func:`fit_drift_baselines` learns each axis's residual centre and σ from the calibration
residuals (held-out ones with ``thresholds.calibration: holdout``); the version stores them in
``drift.json``. :class:`DriftTracker` folds the samples of score runs, in time order, into the
charts of :mod:`Scoring.drift.stats` and collects the drift episodes (a drift start and its
end) they produce. A sample is folded once: samples at or before the newest folded one are
skipped, so re-scored (provisional) rows and backfills of earlier ranges change nothing, and
back-to-back windows give the state and episodes of their union.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from Thresholding import median_of

from .stats import (
    BlockSums,
    DriftParameters,
    block_sums,
    cusum_path,
    drift_strength,
    ewma_path,
    standardise,
)

__all__ = [
    "AxisBaseline",
    "AxisDriftState",
    "DriftBaselines",
    "DriftEpisode",
    "DriftTracker",
    "fit_drift_baselines",
]

logger = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.482602218505602
"""σ of a normal distribution over its median absolute deviation."""


@dataclass(frozen=True)
class AxisBaseline:
    """An axis's residual centre (median) and σ (1.4826 · MAD, else the standard deviation)."""

    center: float
    scale: float
    samples: int


@dataclass(frozen=True)
class DriftBaselines:
    """The drift charts' parameters and each axis's baseline: the content of ``drift.json``."""

    params: DriftParameters
    axes: dict[str, AxisBaseline]

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": asdict(self.params),
            "axes": {axis: asdict(base) for axis, base in self.axes.items()},
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> DriftBaselines:
        """Read ``drift.json``.

        Raises:
            ValueError: a key is missing or a value is not usable (names the key).
        """
        try:
            params = DriftParameters(**record["parameters"])
            axes = {
                str(axis): AxisBaseline(
                    float(base["center"]), float(base["scale"]), int(base["samples"])
                )
                for axis, base in record["axes"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"drift.json is not a drift baseline record ({exc!r}); retrain the version"
            ) from exc
        bad = [a for a, b in axes.items() if not (np.isfinite(b.scale) and b.scale > 0)]
        if bad:
            raise ValueError(f"drift.json: axes {bad} have no positive finite scale")
        return cls(params, axes)


_MAX_BASELINE_ROWS = 200_000
"""Residuals a baseline's median and MAD are taken over, evenly spaced (a 10 M-row window's
medians to three digits at a fiftieth of the cost)."""


def fit_drift_baselines(
    residuals: Mapping[str, np.ndarray],
    params: DriftParameters,
    medians: Mapping[str, float] | None = None,
) -> DriftBaselines:
    """Each axis's residual centre and σ from its calibration residuals (NaN = left out).

    An axis without two distinct finite residuals gets no baseline (it is not followed).
    ``medians``: the median of an axis's finite residuals where already known (the
    calibrator's), taken as its centre when every residual is used (not computed again).
    """
    axes: dict[str, AxisBaseline] = {}
    for axis, values in residuals.items():
        finite = np.asarray(values, dtype=np.float64)
        known = None if medians is None or finite.size > _MAX_BASELINE_ROWS else medians.get(axis)
        if finite.size > _MAX_BASELINE_ROWS:  # evenly spaced: the same centre and σ, cheaper
            finite = finite[np.linspace(0, finite.size - 1, _MAX_BASELINE_ROWS).astype(np.intp)]
        finite = finite[np.isfinite(finite)]
        if finite.size < 2:
            logger.info("drift: axis %s has fewer than 2 residuals, not followed", axis)
            continue
        center = median_of(finite) if known is None else known
        scale = _MAD_TO_SIGMA * median_of(np.abs(finite - center))
        if not scale > 0:
            scale = float(np.std(finite))
        if not scale > 0:
            logger.info("drift: axis %s has constant residuals, not followed", axis)
            continue
        axes[axis] = AxisBaseline(center, scale, int(finite.size))
    return DriftBaselines(params, axes)


@dataclass
class AxisDriftState:
    """The running values of one axis (see ``Scoring.drift.stats``).

    ``open_sum``/``open_count``: the standardised residuals of the block still open.
    ``drifting_since``: epoch seconds of the first sample of the drift's first block.
    """

    cusum_pos: float = 0.0
    cusum_neg: float = 0.0
    ewma_value: float = 0.0
    is_drifting: bool = False
    drift_direction: str | None = None
    drifting_since: float | None = None
    open_sum: float = 0.0
    open_count: int = 0


@dataclass
class DriftEpisode:
    """A drift of one axis: from ``start`` to ``end`` (epoch seconds of its blocks' first and
    last samples), with the samples folded in this run and its strongest block.

    ``stored``: the episode began before this run (the events table has its row, keyed by
    ``start``); ``open``: still drifting after the newest folded sample.
    """

    axis: str
    start: float
    end: float
    samples: int
    direction: str
    peak_strength: float
    peak_z: float
    peak_ts: float
    stored: bool = False
    open: bool = True


@dataclass
class DriftTracker:
    """The drift state of one asset, advanced by :meth:`fold` (one call per scored window).

    Attributes:
        baselines: the version's baselines (only their axes are followed).
        axes: axis → running values.
        open_block, open_first, open_last: id and first/last sample time of the open block.
        last_sample: epoch seconds of the newest folded sample (None: nothing folded yet).
        episodes: the drift episodes of the folds so far, by axis and start.
    """

    baselines: DriftBaselines
    axes: dict[str, AxisDriftState] = field(default_factory=dict)
    open_block: int | None = None
    open_first: float | None = None
    open_last: float | None = None
    last_sample: float | None = None
    episodes: list[DriftEpisode] = field(default_factory=list)

    def __post_init__(self) -> None:
        for axis in self.baselines.axes:
            self.axes.setdefault(axis, AxisDriftState())
        self._current: dict[str, DriftEpisode] = {}

    @property
    def params(self) -> DriftParameters:
        return self.baselines.params

    def fold(
        self,
        seconds: np.ndarray,
        residuals: Mapping[str, np.ndarray],
        values: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Fold the samples after :attr:`last_sample` in.

        Args:
            seconds: epoch seconds of the samples, sorted.
            residuals: axis → residual per sample; NaN = no evidence (axes without a baseline
                are ignored).
            values: axis → actual value per sample: where it is 0 (idle) or NaN (missing) the
                residual is left out too.
        """
        seconds = np.asarray(seconds, dtype=np.float64)
        first = (
            0
            if self.last_sample is None
            else int(np.searchsorted(seconds, self.last_sample, side="right"))
        )
        if first >= seconds.size:
            return
        seconds = seconds[first:]
        z = {
            axis: self._standardised(axis, residuals, values, first) for axis in self.baselines.axes
        }
        blocks = self._with_open_block(block_sums(seconds, z, self.params.block_seconds))
        self.last_sample = float(seconds[-1])
        closed = len(blocks) - 1
        self.open_block = int(blocks.ids[closed])
        self.open_first, self.open_last = float(blocks.first[closed]), float(blocks.last[closed])
        for axis, state in self.axes.items():
            state.open_sum = float(blocks.sums[axis][closed])
            state.open_count = int(blocks.counts[axis][closed])
        if closed:
            self._close_blocks(blocks, closed)

    def _standardised(
        self,
        axis: str,
        residuals: Mapping[str, np.ndarray],
        values: Mapping[str, np.ndarray] | None,
        first: int,
    ) -> Callable[[int, int], np.ndarray]:
        """The axis's standardised residuals of rows ``first + lo`` to ``first + hi``, computed
        piece by piece by :func:`block_sums` (never a full-length array)."""
        base = self.baselines.axes[axis]
        clip = self.params.clip
        if axis not in residuals:
            len(residuals[next(iter(residuals))])  # no residuals at all: fails as it always did
            return lambda lo, hi: np.full(hi - lo, np.nan)
        residual = np.asarray(residuals[axis])[first:]
        value = None if values is None or axis not in values else np.asarray(values[axis])[first:]

        def rows(lo: int, hi: int) -> np.ndarray:
            return standardise(
                residual[lo:hi],
                base.center,
                base.scale,
                clip,
                None if value is None else value[lo:hi],
            )

        return rows

    def _with_open_block(self, blocks: BlockSums) -> BlockSums:
        """The new blocks with the stored open block in front (joined to the first new block
        when it is the same block)."""
        if self.open_block is None:
            return blocks
        sums = {a: np.r_[s.open_sum, 0.0] for a, s in self.axes.items()}
        counts = {a: np.r_[s.open_count, 0] for a, s in self.axes.items()}
        if blocks.ids[0] == self.open_block:
            joined = {a: blocks.sums[a].copy() for a in blocks.sums}
            tally = {a: blocks.counts[a].copy() for a in blocks.counts}
            for axis in self.axes:
                joined[axis][0] += sums[axis][0]
                tally[axis][0] += counts[axis][0]
            first = blocks.first.copy()
            first[0] = self.open_first
            return BlockSums(blocks.ids, first, blocks.last, joined, tally)
        return BlockSums(
            np.r_[self.open_block, blocks.ids],
            np.r_[self.open_first, blocks.first],
            np.r_[self.open_last, blocks.last],
            {a: np.r_[sums[a][0], blocks.sums[a]] for a in self.axes},
            {a: np.r_[counts[a][0], blocks.counts[a]] for a in self.axes},
        )

    def _close_blocks(self, blocks: BlockSums, closed: int) -> None:
        """Update the charts with the first ``closed`` blocks and find the drift episodes."""
        names = list(self.axes)
        strength = np.empty((closed, len(names)))
        direction = np.empty((closed, len(names)), dtype=np.int8)
        means = np.full((closed, len(names)), np.nan)
        for column, axis in enumerate(names):
            counts = blocks.counts[axis][:closed]
            seen = np.flatnonzero(counts > 0)
            means[seen, column] = blocks.sums[axis][:closed][seen] / counts[seen]
            strength[:, column], direction[:, column] = self._chart(
                self.axes[axis], means[seen, column], seen, closed
            )
        flagged = strength > 1.0
        ratio = self.params.isolate_ratio
        if ratio is not None and len(names) > 1:
            flagged &= strength >= ratio * strength.max(axis=1, keepdims=True)
        for column, axis in enumerate(names):
            self._episodes(
                axis,
                blocks,
                closed,
                flagged[:, column],
                strength[:, column],
                direction[:, column],
                means[:, column],
            )

    def _chart(
        self, state: AxisDriftState, means: np.ndarray, seen: np.ndarray, closed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance one axis's CUSUM and EWMA over its block means; strength and direction per
        closed block (a block without samples keeps the values before it)."""
        params = self.params
        pos, neg = cusum_path(means, params.cusum_k, state.cusum_pos, state.cusum_neg)
        ewma = ewma_path(means, params.ewma_lambda, state.ewma_value)
        latest = np.searchsorted(seen, np.arange(closed), side="right") - 1
        before = latest < 0
        take = np.maximum(latest, 0)

        def spread(path: np.ndarray, initial: float) -> np.ndarray:
            return np.where(before, initial, path[take] if path.size else initial)

        full = (
            spread(pos, state.cusum_pos),
            spread(neg, state.cusum_neg),
            spread(ewma, state.ewma_value),
        )
        if seen.size:
            state.cusum_pos, state.cusum_neg = float(pos[-1]), float(neg[-1])
            state.ewma_value = float(ewma[-1])
        return drift_strength(*full, params)

    def _episodes(
        self,
        axis: str,
        blocks: BlockSums,
        closed: int,
        flagged: np.ndarray,
        strength: np.ndarray,
        direction: np.ndarray,
        means: np.ndarray,
    ) -> None:
        """Turn an axis's flagged blocks into episodes and update its drifting state."""
        state = self.axes[axis]
        edges = np.diff(np.r_[state.is_drifting, flagged, False].astype(np.int8))
        starts = np.flatnonzero(edges == 1)
        stops = np.flatnonzero(edges == -1)  # one past each run's last block
        if state.is_drifting:  # the stored drift goes on at block 0 (or ends there: 0 to 0)
            starts = np.r_[0, starts]
        counts = blocks.counts[axis][:closed]
        for begin, stop in zip(starts, stops, strict=True):
            end = int(stop) - 1
            if begin > end:  # the drift open before these blocks ended at the first one
                self._close_current(axis)
                continue
            run = slice(int(begin), int(stop))
            peak = int(begin) + int(np.argmax(strength[run]))
            episode = self._current.get(axis)
            if begin == 0 and state.is_drifting:
                if episode is None:
                    episode = self._stored_episode(axis, state)
            else:
                episode = DriftEpisode(
                    axis=axis,
                    start=float(blocks.first[begin]),
                    end=float(blocks.first[begin]),
                    samples=0,
                    direction="up" if direction[begin] > 0 else "down",
                    peak_strength=-np.inf,
                    peak_z=float("nan"),
                    peak_ts=float(blocks.first[begin]),
                )
                self.episodes.append(episode)
            episode.end = float(blocks.last[end])
            episode.samples += int(counts[run].sum())
            if strength[peak] > episode.peak_strength:
                episode.peak_strength = float(strength[peak])
                episode.peak_z = float(means[peak])
                episode.peak_ts = float(blocks.first[peak])
            episode.open = end == closed - 1
            self._current[axis] = episode
            if not episode.open:
                self._close_current(axis)
        state.is_drifting = bool(flagged[-1])
        if state.is_drifting:
            current = self._current[axis]
            state.drifting_since = current.start
            state.drift_direction = "up" if direction[-1] > 0 else "down"
        else:
            state.drifting_since = None
            state.drift_direction = None

    def _stored_episode(self, axis: str, state: AxisDriftState) -> DriftEpisode:
        """The episode that was open when this run began (its row is in the events table)."""
        assert state.drifting_since is not None
        episode = DriftEpisode(
            axis=axis,
            start=state.drifting_since,
            end=state.drifting_since,
            samples=0,
            direction=state.drift_direction or "up",
            peak_strength=-np.inf,
            peak_z=float("nan"),
            peak_ts=state.drifting_since,
            stored=True,
        )
        self.episodes.append(episode)
        return episode

    def _close_current(self, axis: str) -> None:
        """End the axis's episode of this run that was still open (a stored one keeps its row)."""
        episode = self._current.pop(axis, None)
        if episode is not None:
            episode.open = False

    def reset(self) -> None:
        """Forget the charts, the open block and drifts (a new version, new baselines);
        samples already folded stay folded."""
        for axis in self.axes:
            self._close_current(axis)
            self.axes[axis] = AxisDriftState()
        self.open_block = self.open_first = self.open_last = None
