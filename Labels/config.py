"""Configuration of the labels table (the ``labels:`` section of the config)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from Database import split_table_name
from DataExtractionAnalysis import parse_duration

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
        description="Leave known incidents (the windows of labels.table and the events "
        "confirmed with 'events label --as confirmed') and maintenance windows "
        "(labels.calendar_table) out of model fits and threshold calibration (an incident is "
        "not learned as normal).",
    )
    mask_margin: dt.timedelta = Field(
        dt.timedelta(0),
        description="Widen every known incident by this much on both sides when masking "
        "training (a machine misbehaves before an incident is noticed and until it is "
        "repaired): a duration such as 0s, 10m, 1h.",
    )
    calendar_table: str | None = Field(
        None,
        description="Table of maintenance windows (start_ts, end_ts; with data.asset_col, "
        "optionally that column: NULL = every asset), in the data's database, left out of "
        "training when mask_training; null = none.",
    )

    @field_validator("table", "calendar_table")
    @classmethod
    def _safe_table(cls, value: str | None) -> str | None:
        if value is not None:
            split_table_name(value)  # UnsafeIdentifierError is a ValueError: pydantic reports it
        return value

    @field_validator("mask_margin", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, dt.timedelta):
            return value
        duration = parse_duration(value) if isinstance(value, str) else None
        if duration is None or duration < dt.timedelta(0):
            raise ValueError(f"must be a duration such as 0s, 10m, 1h or 1d, got {value!r}")
        return duration
