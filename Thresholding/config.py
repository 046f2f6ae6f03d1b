"""Threshold policy (the ``thresholds:`` section of the config)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SEED_POLICY", "SmoothingConfig", "ThresholdPolicy"]


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
