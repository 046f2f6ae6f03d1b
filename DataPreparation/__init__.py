"""Preparation stage: validation, optional interpolation and the time origin ``t0``."""

from .preprocessor import (
    FIT_VALUE_LIMIT,
    PreparationError,
    PreparedData,
    PrepConfig,
    prepare,
    t0_from_stats,
    time_since,
    validate_frame,
)

__all__ = [
    "FIT_VALUE_LIMIT",
    "PrepConfig",
    "PreparationError",
    "PreparedData",
    "prepare",
    "t0_from_stats",
    "time_since",
    "validate_frame",
]
