"""Typed configuration of score runs (``scoring``) and of event storage (``events``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from Database import split_table_name
from DataExtractionAnalysis import parse_duration

__all__ = ["EventsConfig", "ScoringConfig"]


class EventsConfig(BaseModel):
    """How maximal alert/error runs are turned into rows of the events table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(
        "anomaly_events",
        description="Name of the events table, written in the same database as the data.",
    )
    merge_gap_seconds: float = Field(
        300.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Join consecutive events of the same axis and severity whose gap (next start minus "
            "previous end) is at most this many seconds, so a residual wavering about its "
            "threshold during one incident gives one event; 0 turns merging off."
        ),
    )
    cooldown_seconds: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Suppress an event that starts at most this many seconds after the end of the "
            "previous kept event of the same axis and severity (stored with suppressed = true); "
            "0 turns the cooldown off."
        ),
    )

    @field_validator("table")
    @classmethod
    def _safe_table(cls, value: str) -> str:
        split_table_name(value)  # UnsafeIdentifierError is a ValueError: pydantic reports it
        return value


class ScoringConfig(BaseModel):
    """How a score run reads a long range: in chunks, so memory follows the chunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_rows: int = Field(
        1_000_000,
        ge=1,
        description=(
            "Score a long range in chunks of about this many samples (chunk_rows x the "
            "version's dt_seconds of time each), so memory is bounded by the chunk, not the "
            "range; the levels, CSV and events equal scoring the range in one piece."
        ),
    )
    stale_after: dt.timedelta | None = Field(
        dt.timedelta(hours=1),
        description=(
            "A run without --end that finds no new rows while the newest sample is older than "
            "this reports status stale (exit 10) instead of ok: the source stopped delivering. "
            "A duration such as 30s, 15m, 2h, 1d; null = never."
        ),
    )

    @field_validator("stale_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, dt.timedelta):
            return value
        duration = parse_duration(value) if isinstance(value, str) else None
        if duration is None or duration <= dt.timedelta(0):
            raise ValueError(
                f"must be a positive duration such as 30s, 15m, 2h or 1d (or null), got {value!r}"
            )
        return duration
