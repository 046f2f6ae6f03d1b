"""A score run's drift: the state loaded on the run's transaction, folded window by window,
saved with the events; and the time to threshold of the run's residual levels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

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
    history: LevelHistory
    tracker: DriftTracker | None = None
    started: int = 0

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
        return cls(store, baselines, version, LevelHistory(baselines.params.block_seconds))

    def fold(self, writer: EventWriter, result: ScoreResult) -> None:
        if self.tracker is None:
            self.tracker = self.store.load(writer.connection, self.baselines, self.version)
        # Idle (0) and missing samples are no evidence of the residual level.
        seconds = epoch_seconds(result.frame["ts"])
        self.tracker.fold(seconds, result.raw_residuals, result.values)
        self.history.add(seconds, result.raw_residuals, result.values)

    def time_to_threshold(self, loaded: LoadedConfig, rules: Any) -> dict[str, Any]:
        """Axis → its projection (logged as a sentence) where the trend is significant."""
        config = loaded.config.drift
        found = self.history.project(
            {axis: rule for axis, rule in rules.items() if axis != MACHINE_CHANNEL},
            window_seconds=config.trend_window.total_seconds(),
            confidence=config.trend_confidence,
            min_blocks=config.trend_min_blocks,
        )
        for axis, projection in found.items():
            logger.info("time to threshold: %s", projection.sentence(axis))
        return {axis: p.to_dict() for axis, p in found.items()}

    def save(self, writer: EventWriter, run_id: str) -> None:
        if self.tracker is not None:
            self.started = self.store.save(writer.connection, self.tracker, self.version, run_id)

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
