"""Data extraction (SQL → time-ordered frame) and profiling of the extracted window."""

from .analyzer import GAP_FACTOR, AxisProfile, Profile, ProfileError, median_interval, profile
from .config import DataConfig
from .extractor import (
    EmptyWindowError,
    Extraction,
    ExtractionError,
    SourceInfo,
    extract_window,
    lookahead_end,
    lookback_start,
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
    "extract_window",
    "lookahead_end",
    "lookback_start",
    "median_interval",
    "profile",
]
