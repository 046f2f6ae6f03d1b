"""Configuration of model selection (the ``model:`` section of the config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .selector import select_model

__all__ = ["ModelConfig"]


class ModelConfig(BaseModel):
    """Which model family to fit per axis, and what to do with axes that lack data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(
        "linear",
        description="Model family fitted to every axis; one of the names in MODEL_FAMILIES.",
    )
    on_short_axis: Literal["error", "skip"] = Field(
        "error",
        description=(
            "What to do with an axis that has fewer than min_rows usable (non-zero, non-NaN) "
            "rows: 'error' stops training, 'skip' logs a warning and leaves the axis out."
        ),
    )
    min_rows: int = Field(
        2,
        ge=2,
        description="Minimum number of usable rows an axis needs to be fitted.",
    )

    @field_validator("type")
    @classmethod
    def _known_family(cls, value: str) -> str:
        select_model(value)
        return value
