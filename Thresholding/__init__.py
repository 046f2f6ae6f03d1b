"""Thresholding stage: MinC/MaxC (both sides), sustain steps, the machine channel, alarm rates."""

from .calibrator import (
    MACHINE_CHANNEL,
    AxisThreshold,
    CalibrationError,
    ThresholdCalibrator,
    alarm_mask,
    robust_scale,
)
from .config import SEED_POLICY, LearnedPolicy, SmoothingConfig, ThresholdPolicy
from .learned import LearnedRule, Outcomes, apply_learned, outcome_rows, search_rule
from .runs import row_runs, run_bounds, run_lengths, sustained, sustained_rows
from .selection import (
    domain_median,
    domain_percentiles,
    median_of,
    percentiles_of,
    quantiles_of,
)
from .smoothing import smooth
from .ssr import ssr_score, ssr_shares

__all__ = [
    "MACHINE_CHANNEL",
    "SEED_POLICY",
    "AxisThreshold",
    "CalibrationError",
    "LearnedPolicy",
    "LearnedRule",
    "Outcomes",
    "SmoothingConfig",
    "ThresholdCalibrator",
    "ThresholdPolicy",
    "alarm_mask",
    "apply_learned",
    "domain_median",
    "domain_percentiles",
    "median_of",
    "outcome_rows",
    "percentiles_of",
    "quantiles_of",
    "robust_scale",
    "row_runs",
    "run_bounds",
    "run_lengths",
    "search_rule",
    "smooth",
    "ssr_score",
    "ssr_shares",
    "sustained",
    "sustained_rows",
]
