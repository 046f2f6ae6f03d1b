"""Typed configuration of the morning digest and the version reports (``report``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from DataExtractionAnalysis import parse_duration

__all__ = ["ReportConfig", "parse_since"]


def parse_since(value: Any) -> dt.timedelta:
    """``24h`` → ``timedelta(hours=24)``: how far the digest looks back.

    Raises:
        ValueError: not a positive duration (the message gives examples).
    """
    if isinstance(value, dt.timedelta):
        duration: dt.timedelta | None = value
    else:
        duration = parse_duration(value) if isinstance(value, str) else None
    if duration is None or duration <= dt.timedelta(0):
        raise ValueError(f"must be a positive duration such as 90m, 24h or 7d, got {value!r}")
    return duration


class ReportConfig(BaseModel):
    """What the morning digest (``orchestrate.py report``) shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: dt.timedelta = Field(
        dt.timedelta(hours=24),
        description=(
            "How far the digest looks back, counted from the newest sample scored (of any "
            "asset), so a source that stopped still shows its last day: 90m, 24h, 7d. "
            "--since overrides it."
        ),
    )
    top_events: int = Field(
        6,
        ge=1,
        le=50,
        description=(
            "Events drawn with a plot of the data around them (the worst of the period; an "
            "alert episode holding an error already drawn is not drawn twice)."
        ),
    )
    context_minutes: float = Field(
        30.0,
        gt=0,
        allow_inf_nan=False,
        description="Minutes of data shown before and after each plotted event.",
    )
    overview_assets: int = Field(
        40,
        ge=1,
        description=(
            "Rows of the fleet overview heat map: the assets with the most alert events "
            "(then the rest, by name) up to this many."
        ),
    )

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: Any) -> dt.timedelta:
        return parse_since(value)
