"""Typed configuration of the registry stage (the ``registry:`` block of config.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from DataExtractionAnalysis import positive_duration

from .naming import validate_version_tag
from .registry import DEFAULT_LOCK_TIMEOUT_S

__all__ = ["RegistryConfig"]


class RegistryConfig(BaseModel):
    """Where versions are published and which tag the next one gets.

    Unknown keys are errors and instances are immutable. Validation errors are ``ValueError``
    sentences; the caller's config loader prefixes them with the key path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    root_dir: str = Field(
        default="ModelRegistry/artifacts",
        description=(
            "Folder that holds one sub-folder per published version and the `latest` pointer "
            "(the seed's location). Relative paths are resolved against the config file's folder."
        ),
    )
    version_tag: str = Field(
        default="auto",
        description=(
            "'auto' publishes the next v<N> (v1, v2, ..., v10 in numeric order); any other value "
            "is an explicit tag of 1-64 letters, digits, '.', '_', '-', not starting with '.', "
            "not 'latest'. An explicit tag that already exists is refused, never overwritten."
        ),
    )
    lock_timeout_s: float = Field(
        default=DEFAULT_LOCK_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Seconds a publish waits for the registry lock, held by another run only while it "
            "names its version and moves it into place, before failing with registry-error."
        ),
    )

    promote: Literal["auto", "gate", "manual"] = Field(
        default="gate",
        description=(
            "What a training run does with its new version: 'gate' makes it the champion (what "
            "scoring uses) only when a replay of recent data shows it raises no more than "
            "max_alarm_increase more alarm events than the champion and loses no labelled "
            "event; 'auto' always does; 'manual' never does (`registry promote V`). An "
            "asset's first version becomes champion at once under every policy."
        ),
    )
    replay_days: float = Field(
        default=7.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Days of the newest data the gate re-scores with the candidate and the champion "
            "(nothing is written)."
        ),
    )
    max_alarm_increase: float = Field(
        default=0.5,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Share by which the candidate's alert and error events on the replay may exceed "
            "the champion's (0.5: up to 1.5x; one more event is always allowed)."
        ),
    )

    max_model_age: dt.timedelta | None = Field(
        default=dt.timedelta(days=30),
        description=(
            "A version older than this (since it was published) is flagged for retraining in "
            "the score summary and in `orchestrate.py fleet`, as is one whose asset drifts. A "
            "duration such as 12h, 30d, 8w; null = never by age."
        ),
    )

    @field_validator("max_model_age", mode="before")
    @classmethod
    def _check_max_model_age(cls, value: Any) -> Any:
        return positive_duration(value, "12h, 30d or 8w", nullable=True)

    @field_validator("root_dir")
    @classmethod
    def _check_root_dir(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "root_dir is empty; set it to the folder that should hold the model versions, "
                "e.g. 'ModelRegistry/artifacts'."
            )
        return value

    @field_validator("version_tag")
    @classmethod
    def _check_version_tag(cls, value: str) -> str:
        return validate_version_tag(value, allow_auto=True)
