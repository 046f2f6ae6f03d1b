"""Scoring stage: per-sample levels, the worst level across axes, events, and their storage.

Levels follow the rules in ``thresholds.json`` (``MinC``/``MaxC`` with ``T_long_steps`` /
``T_short_steps``); windows are scored with :func:`lookback_samples` rows of look-back so that
runs crossing a window start keep their full length. The core (levels, events, scorer) touches
no database; :class:`EventStore` writes the events table and the scoring state.
"""

from ._lock import locked_transaction
from .config import DriftConfig, EventsConfig, ScoringConfig
from .drift import DriftBaselines, DriftTracker, read_drift_state
from .errors import ScoringInputError
from .events import EVENT_COLUMNS, SENSOR_SEVERITY, SEVERITIES, extract_events, sensor_events
from .levels import (
    LEVEL_DTYPE,
    LEVEL_NAMES,
    Level,
    assign_levels,
    level_labels,
    mark_sensor_faults,
)
from .ranking import EVENT_RECORD_FIELDS, event_records, format_duration, worst_first, worst_records
from .rules import MACHINE_CHANNEL, AxisRule, parse_thresholds
from .scorer import ScoreResult, lookahead_samples, lookback_samples, score_frame
from .store import Continuation, EventStore, EventWriter, WriteSummary

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_RECORD_FIELDS",
    "LEVEL_DTYPE",
    "LEVEL_NAMES",
    "MACHINE_CHANNEL",
    "SENSOR_SEVERITY",
    "SEVERITIES",
    "AxisRule",
    "Continuation",
    "DriftBaselines",
    "DriftConfig",
    "DriftTracker",
    "EventStore",
    "EventWriter",
    "EventsConfig",
    "Level",
    "ScoreResult",
    "ScoringConfig",
    "ScoringInputError",
    "WriteSummary",
    "assign_levels",
    "event_records",
    "extract_events",
    "format_duration",
    "level_labels",
    "locked_transaction",
    "lookahead_samples",
    "lookback_samples",
    "mark_sensor_faults",
    "parse_thresholds",
    "read_drift_state",
    "score_frame",
    "sensor_events",
    "worst_first",
    "worst_records",
]
