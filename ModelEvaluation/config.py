"""Plot settings (the ``plots:`` section of the config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PlotConfig"]


class PlotConfig(BaseModel):
    """Where and how the per-axis fit and residual plots are drawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str = Field(
        "out/plots",
        description="Directory for ad-hoc plots; the registry stores its copies under plots/.",
    )
    enabled: bool = Field(True, description="Draw the fit and residual plots at all.")
    max_points: int = Field(
        20000,
        ge=100,
        description=(
            "Most points drawn per series; longer series are subsampled keeping each "
            "time bucket's min, max, first and middle sample."
        ),
    )
    assets: Literal["attention", "all"] | list[str] = Field(
        "attention",
        description=(
            "Fleets (data.asset_col): whose plots a training run draws. attention = only "
            "assets whose MinC or MaxC moved by more than fleet.attention_change; all = every "
            "trained asset; a list of ids = those and the ones needing attention."
        ),
    )

    @field_validator("assets", mode="before")
    @classmethod
    def _asset_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            if any(isinstance(item, bool) or not isinstance(item, (str, int)) for item in value):
                raise ValueError(f"asset ids must be text or integers, got {value!r}")
            return [str(item) for item in value]
        return value
