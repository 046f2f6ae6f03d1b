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
from .runs import run_bounds, run_lengths, sustained
from .smoothing import smooth

__all__ = [
    "MACHINE_CHANNEL",
    "SEED_POLICY",
    "AxisThreshold",
    "CalibrationError",
    "SmoothingConfig",
    "ThresholdCalibrator",
    "ThresholdPolicy",
    "alarm_mask",
    "robust_scale",
    "run_bounds",
    "run_lengths",
    "smooth",
    "sustained",
]
