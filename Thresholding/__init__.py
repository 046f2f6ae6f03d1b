"""Thresholding stage: MinC/MaxC from positive residuals and run-length steps."""

from .calibrator import AxisThreshold, CalibrationError, ThresholdCalibrator
from .config import ThresholdPolicy
from .runs import run_bounds, run_lengths

__all__ = [
    "AxisThreshold",
    "CalibrationError",
    "ThresholdCalibrator",
    "ThresholdPolicy",
    "run_bounds",
    "run_lengths",
]
