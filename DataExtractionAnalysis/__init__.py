"""Data extraction (SQL → time-ordered frame) and profiling of the extracted window."""

from .analyzer import GAP_FACTOR, AxisProfile, Profile, ProfileError, median_interval, profile
from .config import DataConfig, parse_duration, parse_relative, resolve_bound
from .extractor import (
    EmptyWindowError,
    Extraction,
    ExtractionError,
    SourceInfo,
    extract_window,
    list_assets,
    lookahead_end,
    lookback_start,
    newest_time,
    reusing_connections,
)
from .health import (
    AxisHealth,
    Finding,
    HealthPolicy,
    ScoredHealth,
    UnhealthySensorError,
    count_out_of_range,
    epoch_seconds,
    grade_axes,
    out_of_range,
)

__all__ = [
    "GAP_FACTOR",
    "AxisHealth",
    "AxisProfile",
    "DataConfig",
    "EmptyWindowError",
    "Extraction",
    "ExtractionError",
    "Finding",
    "HealthPolicy",
    "Profile",
    "ProfileError",
    "ScoredHealth",
    "SourceInfo",
    "UnhealthySensorError",
    "count_out_of_range",
    "epoch_seconds",
    "extract_window",
    "grade_axes",
    "list_assets",
    "lookahead_end",
    "lookback_start",
    "median_interval",
    "newest_time",
    "out_of_range",
    "parse_duration",
    "parse_relative",
    "profile",
    "resolve_bound",
    "reusing_connections",
]
