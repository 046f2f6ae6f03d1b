"""Configuration of model selection (the ``model:`` section of the config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .machine import machine_model
from .selector import MODEL_FAMILIES, build_model, select_model

__all__ = ["DEFAULT_CANDIDATES", "ModelConfig", "TuningConfig"]

DEFAULT_CANDIDATES = ("constant", "linear", "spline", "ar", "cross", "pca")
"""Families ``auto`` compares, simplest first."""


class TuningConfig(BaseModel):
    """Optuna tuning of the families' hyperparameters (``model.tuning``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(
        0,
        ge=0,
        description="Optuna trials per family and axis; 0 tries each family's small fixed grid.",
    )
    seed: int = Field(
        0, ge=0, description="Seed of the sampler: the same data give the same choice."
    )


class ModelConfig(BaseModel):
    """Which model family to fit per axis, how to choose it, and the machine channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(
        "auto",
        description=(
            "'auto' chooses a family per axis by validation on the held-out tail of the "
            "training window; a family name (one of MODEL_FAMILIES) fits that family to every "
            "axis."
        ),
    )
    candidates: tuple[str, ...] = Field(
        DEFAULT_CANDIDATES,
        min_length=1,
        description="Families 'auto' compares, simplest first (a family must beat the ones "
        "before it by 2 %).",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Fixed hyperparameters per family instead of the grid or tuning, e.g. "
        "{ar: {lags: 4}}.",
    )
    validation_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of the training window's running rows (some axis not idle or missing, "
        "outside labelled incidents) held out at its end to choose families.",
    )
    folds: int = Field(
        5,
        ge=2,
        le=20,
        description="Contiguous time folds for the out-of-sample residuals the thresholds are "
        "calibrated on (thresholds.calibration: holdout).",
    )
    max_rows: int = Field(
        500_000,
        ge=1_000,
        description="Most recent rows used for selection and fold fits (the final fit uses "
        "the whole window); bounds their time on long windows.",
    )
    machine: Literal["ssr", "pca", "iforest", "none"] = Field(
        "ssr",
        description="Machine-level channel (events on axis '*'): ssr = mean squared "
        "standardised axis residual, pca = Hotelling's T2, iforest = Isolation Forest score, "
        "none = off.",
    )
    tuning: TuningConfig = Field(
        default_factory=TuningConfig,
        description="Optuna tuning of the families' hyperparameters (trials, seed).",
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
        if value != "auto":
            select_model(value)
        return value

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            select_model(name)
        if len(set(value)) != len(value):
            raise ValueError(f"candidates lists a family more than once: {list(value)}")
        return value

    @field_validator("machine")
    @classmethod
    def _known_machine(cls, value: str) -> str:
        machine_model(value)
        return value

    @model_validator(mode="after")
    def _valid_params(self) -> ModelConfig:
        for family, params in self.params.items():
            if family not in MODEL_FAMILIES:
                valid = ", ".join(sorted(MODEL_FAMILIES))
                raise ValueError(f"params: unknown family {family!r}; valid families: {valid}")
            build_model(family, params)
        return self
