"""Threshold policy (the ``thresholds:`` section of the config)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SEED_POLICY", "LearnedPolicy", "SmoothingConfig", "ThresholdPolicy"]


class SmoothingConfig(BaseModel):
    """Optional smoothing of the residuals before they are compared with the thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: Literal["none", "ewma"] = Field(
        "none", description="none, or ewma: an exponentially weighted mean of recent residuals."
    )
    alpha: float = Field(
        0.3, gt=0, le=1, description="EWMA weight of the newest residual (0 < alpha <= 1)."
    )
    window: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Residuals the EWMA spans (its weights are cut there and renormalised, so "
        "scoring back-to-back windows equals scoring their union exactly); null = the span "
        "holding 99.9 % of the weight, ceil(log(0.001) / log(1 - alpha)).",
    )

    @property
    def span(self) -> int:
        """Residuals in the smoothing window (1 when smoothing is off)."""
        if self.method == "none":
            return 1
        if self.window is not None:
            return self.window
        if self.alpha >= 1:
            return 1
        return max(1, math.ceil(math.log(0.001) / math.log(1.0 - self.alpha)))


class LearnedPolicy(BaseModel):
    """How ``mode: learned`` searches thresholds from labelled outcomes (Thresholding.learned)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    multipliers: list[float] = Field(
        [0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0],
        min_length=1,
        description="Multipliers of the percentile thresholds searched (MinC, MaxC and their "
        "lower-side twins scale together).",
    )
    sustains: list[int] = Field(
        [1, 2, 3, 5, 8, 13, 21],
        min_length=1,
        description="Alert sustains (T_long_steps) searched, besides the percentile policy's.",
    )
    false_alarm_cost: float = Field(
        1.0,
        gt=0,
        description="Cost of one alarm run overlapping no known incident (nor an event "
        "labelled ignore), against up to a severity weight for each incident found.",
    )
    severity_weights: dict[str, float] = Field(
        {"alert": 1.0, "error": 2.0, "low": 1.0, "medium": 2.0, "high": 3.0},
        description="Weight of an incident by its severity (labels.table severity, or the "
        "confirmed event's alert/error); other severities weigh 1.",
    )
    min_labels: int = Field(
        5,
        ge=1,
        description="Labels of an axis (incidents + false positives) for full confidence; "
        "fewer scale the confidence down.",
    )
    min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Below this confidence an axis keeps its percentile thresholds.",
    )

    @field_validator("multipliers")
    @classmethod
    def _positive(cls, values: list[float]) -> list[float]:
        if any(not v > 0 for v in values):
            raise ValueError(f"every multiplier must be > 0, got {values}")
        return values

    @field_validator("sustains")
    @classmethod
    def _at_least_one(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError(f"every sustain must be >= 1 sample, got {values}")
        return values


class ThresholdPolicy(BaseModel):
    """How MinC/MaxC (both sides) and the alert/error step counts are learned."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    calibration: Literal["holdout", "in_sample"] = Field(
        "holdout",
        description="holdout: residuals of rows each model was not fitted to (contiguous time "
        "folds, model.folds); in_sample: residuals of the final model on its own training rows "
        "(the seed).",
    )
    side: Literal["upper", "lower", "both"] = Field(
        "both",
        description="Which residuals can alarm: upper (actual above expected, the seed), lower "
        "(below), or both.",
    )
    pooling: Literal["machine", "axis"] = Field(
        "machine",
        description="machine: one multiplier k for every axis, the percentile of the largest "
        "standardised residual across axes, so the percentile is the share of samples on which "
        "any axis alarms; axis: percentiles of each axis's own residuals of one sign (the "
        "seed).",
    )
    minc_percentile: float = Field(
        99.0,
        ge=0,
        le=100,
        description="Percentile giving MinC (alert). pooling machine: of the largest "
        "standardised residual per sample; pooling axis: of the axis's positive residuals "
        "(negatives, mirrored, for the lower side).",
    )
    maxc_percentile: float = Field(
        99.9,
        ge=0,
        le=100,
        description="Percentile giving MaxC (error), >= minc_percentile.",
    )
    trim_top_ratio: float = Field(
        0.02,
        ge=0,
        lt=0.5,
        description="pooling axis: share of the largest residuals dropped before the "
        "percentiles (floor(ratio * count) values); 0 disables trimming.",
    )
    min_pos_for_trim: int = Field(
        20, ge=0, description="pooling axis: trim only with at least this many residuals."
    )
    min_pos_for_percentile: int = Field(
        10,
        ge=1,
        description="pooling axis: fewer residuals of a sign than this are too few for "
        "percentiles.",
    )
    use_mad_fallback: bool = Field(
        True,
        description="With too few residuals, use median + k * MAD of all residuals instead of "
        "failing.",
    )
    mad_k_minc: float = Field(3.0, gt=0, description="k for MinC in the MAD fallback.")
    mad_k_maxc: float = Field(
        5.0, gt=0, description="k for MaxC in the MAD fallback (>= mad_k_minc)."
    )
    alert_seconds_default: float = Field(
        5.0,
        ge=0,
        description="Minimum alert duration in seconds; T_long_steps is at least this long.",
    )
    error_seconds_default: float = Field(
        3.0,
        ge=0,
        description="Minimum error duration in seconds; T_short_steps is at least this long.",
    )
    alert_min_steps: int = Field(
        3,
        ge=1,
        description="Minimum consecutive samples beyond MinC for an alert, whatever the "
        "sampling interval (noise rarely stays out for several samples in a row).",
    )
    error_min_steps: int = Field(
        2, ge=1, description="Minimum consecutive samples beyond MaxC for an error."
    )
    alert_quantile: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Quantile of the observed runs beyond MinC that can raise T_long_steps.",
    )
    error_quantile: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Quantile of the observed runs beyond MaxC that can raise T_short_steps.",
    )
    smoothing: SmoothingConfig = Field(
        default_factory=SmoothingConfig,
        description="Residual smoothing before the comparison (method, alpha, window).",
    )
    mode: Literal["percentile", "learned"] = Field(
        "percentile",
        description="percentile: thresholds from the percentiles above; learned: where labelled "
        "outcomes (labels.table, confirmed and false-positive events) give enough confidence, "
        "the percentile thresholds scaled and the alert sustain chosen to find incidents early "
        "with few false alarms (thresholds.learned); other axes keep the percentile ones, and "
        "thresholds.json says per axis which is used.",
    )
    learned: LearnedPolicy = Field(
        default_factory=LearnedPolicy, description="The search of mode: learned."
    )
    max_events_per_day: float | None = Field(
        None,
        gt=0,
        description="Budget of false alert events per day for the whole machine, estimated on "
        "the calibration residuals; when exceeded, sustain steps and then the alert percentile "
        "are raised until it fits (the changes are reported). null = no budget.",
    )

    @model_validator(mode="after")
    def _ordered_pairs(self) -> ThresholdPolicy:
        if self.maxc_percentile < self.minc_percentile:
            raise ValueError(
                f"maxc_percentile ({self.maxc_percentile}) must be greater than or equal to "
                f"minc_percentile ({self.minc_percentile})"
            )
        if self.mad_k_maxc < self.mad_k_minc:
            raise ValueError(
                f"mad_k_maxc ({self.mad_k_maxc}) must be greater than or equal to "
                f"mad_k_minc ({self.mad_k_minc})"
            )
        return self


SEED_POLICY: dict[str, Any] = {
    "calibration": "in_sample",
    "side": "upper",
    "pooling": "axis",
    "minc_percentile": 75.0,
    "maxc_percentile": 95.0,
    "trim_top_ratio": 0.02,
    "min_pos_for_trim": 20,
    "alert_min_steps": 1,
    "error_min_steps": 1,
}
"""The seed's threshold policy (with ``model.type: linear`` it reproduces the seed's numbers);
``configs/seed.yaml`` ships it. Thresholds written before these keys existed were learned
with it."""
