"""A score run's drift: the state loaded on the run's transaction, folded window by window,
saved with the events; and the time to threshold of the run's residual levels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from Database import database_errors
from DataExtractionAnalysis import epoch_seconds
from Scoring import MACHINE_CHANNEL, EventStore, EventWriter, ScoreResult
from Scoring.drift import DriftBaselines, DriftStateStore, DriftTracker
from Scoring.trend import LevelHistory

from .config import LoadedConfig

__all__ = ["DriftRun"]

logger = logging.getLogger(__name__)


@dataclass
class DriftRun:
    """A score run's drift state: loaded on the run's transaction, folded chunk by chunk,
    saved with the events."""

    store: DriftStateStore
    baselines: DriftBaselines
    version: str
    window_seconds: float
    history: LevelHistory | None = None
    tracker: DriftTracker | None = None
    started: int = 0
    stored: tuple[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] | None = None
    """The first block and the blocks read by :meth:`_stored_history` (on the run's
    transaction): what :meth:`save` adds to, without reading them again."""

    @classmethod
    def open(
        cls,
        loaded: LoadedConfig,
        events: EventStore,
        baselines: DriftBaselines | None,
        version: str,
        asset: str | None,
    ) -> DriftRun | None:
        """None when drift is off or the version has no baselines (trained before them)."""
        config = loaded.config.drift
        if not config.enabled or baselines is None:
            return None
        table = config.table_for(loaded.config.events.table)
        store = DriftStateStore(table, events.events, events.source_table, asset or "")
        with database_errors(events.target, f"creating the drift state table {table!r}"):
            store.prepare(events.engine)
        return cls(store, baselines, version, config.trend_window.total_seconds())

    def fold(self, writer: EventWriter, result: ScoreResult) -> None:
        if self.tracker is None or self.history is None:
            self.tracker = self.store.load(writer.connection, self.baselines, self.version)
            self.history = self._stored_history(writer)
        # Idle (0) and missing samples are no evidence of the residual level; samples folded
        # by an earlier run are in the stored levels already.
        seconds = epoch_seconds(result.frame["ts"])
        last = self.tracker.last_sample
        new = 0 if last is None else int(np.searchsorted(seconds, last, side="right"))
        self.tracker.fold(seconds, result.raw_residuals, result.values)
        self.history.add(
            seconds[new:],
            {axis: r[new:] for axis, r in result.raw_residuals.items()},
            {axis: v[new:] for axis, v in result.values.items()},
        )

    def _stored_history(self, writer: EventWriter) -> LevelHistory:
        """The levels earlier runs of this version stored over the trend window before the
        newest folded sample."""
        assert self.tracker is not None
        block = self.baselines.params.block_seconds
        last = self.tracker.last_sample
        since = 0 if last is None else int((last - self.window_seconds) // block)
        stored = self.store.load_levels(writer.connection, self.version, since)
        self.stored = (since, stored)
        return LevelHistory(block, stored)

    def time_to_threshold(self, loaded: LoadedConfig, rules: Any) -> dict[str, Any]:
        """Axis → its projection (logged as a sentence) where the trend is significant."""
        config = loaded.config.drift
        if self.history is None:
            return {}
        found = self.history.project(
            {axis: rule for axis, rule in rules.items() if axis != MACHINE_CHANNEL},
            window_seconds=config.trend_window.total_seconds(),
            confidence=config.trend_confidence,
            min_blocks=config.trend_min_blocks,
            scales={axis: base.scale for axis, base in self.baselines.axes.items()},
            isolate_ratio=self.baselines.params.isolate_ratio,
        )
        for axis, projection in found.items():
            logger.info("time to threshold: %s", projection.sentence(axis))
        return {axis: p.to_dict() for axis, p in found.items()}

    def save(self, writer: EventWriter, run_id: str) -> None:
        if self.tracker is not None:
            self.started = self.store.save(writer.connection, self.tracker, self.version, run_id)
        if self.history is not None:
            added = {axis: self.history.blocks(axis) for axis in self.baselines.axes}
            self.store.save_levels(writer.connection, self.version, added, known=self.stored)

    def summary(self) -> dict[str, Any]:
        """Drift events started by the run, and the axes drifting after it."""
        if self.tracker is None:
            return {"started": 0, "drifting": {}}
        drifting = {
            axis: {
                "direction": state.drift_direction,
                "since": None
                if state.drifting_since is None
                else pd.Timestamp(state.drifting_since, unit="s", tz="UTC").isoformat(),
            }
            for axis, state in self.tracker.axes.items()
            if state.is_drifting
        }
        return {"started": self.started, "drifting": drifting}
