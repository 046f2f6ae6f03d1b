"""Plot settings (the ``plots:`` section of the config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
