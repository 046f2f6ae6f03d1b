"""Typed configuration of score runs (``scoring``), event storage (``events``) and drift
charts (``drift``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from Database import split_table_name
from DataExtractionAnalysis import positive_duration

from .drift import DriftParameters

__all__ = ["DriftConfig", "EventsConfig", "ScoringConfig"]


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
    sensor_steps: int | None = Field(
        None,
        ge=1,
        description=(
            "An axis reading 0 or nothing while another axis runs, for at least this many "
            "consecutive samples, is a dead sensor: level sensor and a sensor event (the "
            "machine at rest, every axis 0 or missing, stays idle); null = off (the shipped "
            "config.yaml sets 60)."
        ),
    )
    off_axis: str | None = Field(
        None,
        description=(
            "The machine is off (every axis idle, no alarm, no sensor fault) where this axis "
            "(one of data.axes) reads at most off_below in absolute value or nothing; null = "
            "off only where every axis reads 0 or nothing."
        ),
    )
    off_below: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="With off_axis: the largest absolute value of that axis that means off.",
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
        return positive_duration(value, "30s, 15m, 2h or 1d", nullable=True)


class DriftConfig(BaseModel):
    """Drift charts per axis: CUSUM and EWMA of the mean standardised residual per time block.

    The parameters are stored with each version at training (``drift.json``); scoring uses the
    version's, so changing them takes effect with the next training run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True,
        description=(
            "Learn drift baselines at training and follow drift in every score run (state "
            "table, drift events)."
        ),
    )
    table: str | None = Field(
        None,
        description=(
            "Drift state table (one row per source table, asset and axis), in the data's "
            "database; null = <events.table>_drift."
        ),
    )
    block: dt.timedelta = Field(
        dt.timedelta(hours=1),
        description=(
            "Time block whose mean standardised residual the charts follow (blocks start at "
            "multiples of it since the epoch; a block counts once a later sample is seen). A "
            "duration such as 15m, 1h, 1d."
        ),
    )
    cusum_k: float = Field(
        0.5,
        ge=0,
        allow_inf_nan=False,
        description="CUSUM slack k, in residual sigma: shifts smaller than k do not accumulate.",
    )
    cusum_h: float = Field(
        5.0,
        gt=0,
        allow_inf_nan=False,
        description="CUSUM decision threshold h, in residual sigma.",
    )
    ewma_lambda: float = Field(
        0.2,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="EWMA weight of the newest block (lambda, 0 < lambda <= 1).",
    )
    ewma_l: float = Field(
        3.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "EWMA control limit width L: the limit is L * sqrt(lambda / (2 - lambda)) sigma."
        ),
    )
    clip: float = Field(
        3.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Standardised residuals are clipped to +-clip before averaging, so a spike or a "
            "short incident moves a block by a bounded amount."
        ),
    )
    isolate_ratio: float | None = Field(
        0.75,
        gt=0,
        le=1,
        description=(
            "An axis drifts only while its drift strength is at least this share of the "
            "asset's strongest axis in the same block (multivariate families pass a degrading "
            "axis's shift into the residuals of the axes predicted from it); null = each axis "
            "on its own."
        ),
    )

    trend_window: dt.timedelta = Field(
        dt.timedelta(days=7),
        description=(
            "Time to threshold: the Theil-Sen trend of the mean residual per block over the "
            "newest this-long stretch of a score run's window (a duration such as 2d, 7d)."
        ),
    )
    trend_confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        description=(
            "Confidence of the trend's slope interval; a trend counts only when the interval "
            "excludes 0, and its ends give the earliest and latest crossing."
        ),
    )
    trend_min_blocks: int = Field(
        24, ge=3, description="Blocks with samples a trend needs (fewer: no projection)."
    )

    @field_validator("table")
    @classmethod
    def _safe_table(cls, value: str | None) -> str | None:
        if value is not None:
            split_table_name(value)
        return value

    @field_validator("block", "trend_window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return positive_duration(value, "15m, 1h or 1d")

    def parameters(self) -> DriftParameters:
        """The charts' parameters as stored with a version."""
        return DriftParameters(
            block_seconds=self.block.total_seconds(),
            cusum_k=self.cusum_k,
            cusum_h=self.cusum_h,
            ewma_lambda=self.ewma_lambda,
            ewma_l=self.ewma_l,
            clip=self.clip,
            isolate_ratio=self.isolate_ratio,
        )

    def table_for(self, events_table: str) -> str:
        """The drift state table: :attr:`table`, or ``<events_table>_drift``."""
        return self.table or f"{events_table}_drift"
