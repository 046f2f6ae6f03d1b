"""Data extraction (SQL → time-ordered frame) and profiling of the extracted window."""

from .analyzer import GAP_FACTOR, AxisProfile, Profile, ProfileError, median_interval, profile
from .config import DataConfig, parse_duration, parse_relative, resolve_bound
from .extractor import (
    EmptyWindowError,
    Extraction,
    ExtractionError,
    SourceInfo,
    expect_windows,
    extract_window,
    list_assets,
    lookahead_end,
    lookback_start,
    newest_time,
    newest_times,
    reusing_connections,
)

__all__ = [
    "GAP_FACTOR",
    "AxisProfile",
    "DataConfig",
    "EmptyWindowError",
    "Extraction",
    "ExtractionError",
    "Profile",
    "ProfileError",
    "SourceInfo",
    "expect_windows",
    "extract_window",
    "list_assets",
    "lookahead_end",
    "lookback_start",
    "median_interval",
    "newest_time",
    "newest_times",
    "parse_duration",
    "parse_relative",
    "profile",
    "resolve_bound",
    "reusing_connections",
]
