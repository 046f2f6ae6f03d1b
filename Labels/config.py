"""Configuration of the labels table (the ``labels:`` section of the config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from Database import split_table_name

__all__ = ["LabelsConfig"]


class LabelsConfig(BaseModel):
    """Where labelled anomalies (ground truth) live, and what training does with them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str | None = Field(
        None,
        description="Table of labelled anomaly windows (start_ts, end_ts, axis, kind, "
        "severity), in the data's database; null = no labels.",
    )
    mask_training: bool = Field(
        True,
        description="Leave labelled windows out of model fits and threshold calibration (a "
        "known incident is not learned as normal).",
    )

    @field_validator("table")
    @classmethod
    def _safe_table(cls, value: str | None) -> str | None:
        if value is not None:
            split_table_name(value)  # UnsafeIdentifierError is a ValueError: pydantic reports it
        return value
