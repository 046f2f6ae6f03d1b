"""Threshold policy (the ``thresholds:`` section of the config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ThresholdPolicy"]


class ThresholdPolicy(BaseModel):
    """How MinC/MaxC and the alert/error step counts are learned from training residuals."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    minc_percentile: float = Field(
        75.0, ge=0, le=100, description="Percentile of the positive residuals used as MinC."
    )
    maxc_percentile: float = Field(
        95.0,
        ge=0,
        le=100,
        description="Percentile of the positive residuals used as MaxC (>= minc_percentile).",
    )
    trim_top_ratio: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description=(
            "Share of the largest positive residuals dropped before the percentiles "
            "(floor(ratio * positives) values); 0 disables trimming."
        ),
    )
    min_pos_for_trim: int = Field(
        100, ge=0, description="Trim only when an axis has at least this many positives."
    )
    min_pos_for_percentile: int = Field(
        10,
        ge=1,
        description="Fewer positive residuals than this are too few for percentiles.",
    )
    use_mad_fallback: bool = Field(
        True,
        description=(
            "With too few positives, use median + k * MAD of all residuals instead of failing."
        ),
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
    alert_quantile: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Quantile of the residual > MinC run lengths that can raise T_long_steps.",
    )
    error_quantile: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Quantile of the residual > MaxC run lengths that can raise T_short_steps.",
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
