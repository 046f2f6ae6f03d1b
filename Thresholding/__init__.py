"""Thresholding stage: MinC/MaxC (both sides), sustain steps, the machine channel, alarm rates."""

from .calibrator import (
    MACHINE_CHANNEL,
    AxisThreshold,
    CalibrationError,
    ThresholdCalibrator,
    alarm_mask,
    robust_scale,
)
from .config import SEED_POLICY, SmoothingConfig, ThresholdPolicy
from .runs import row_runs, run_bounds, run_lengths, sustained, sustained_rows
from .selection import domain_median, domain_percentiles
from .smoothing import smooth
from .ssr import ssr_score, ssr_shares

__all__ = [
    "MACHINE_CHANNEL",
    "SEED_POLICY",
    "AxisThreshold",
    "CalibrationError",
    "SmoothingConfig",
    "ThresholdCalibrator",
    "ThresholdPolicy",
    "alarm_mask",
    "domain_median",
    "domain_percentiles",
    "robust_scale",
    "row_runs",
    "run_bounds",
    "run_lengths",
    "smooth",
    "ssr_score",
    "ssr_shares",
    "sustained",
    "sustained_rows",
]
