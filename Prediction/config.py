"""Configuration of the failure predictor (the ``predictor:`` section of the config)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from Database import split_table_name
from DataExtractionAnalysis import parse_duration

__all__ = ["PredictorConfig", "PredictorTuning"]


def _positive_duration(value: Any) -> Any:
    if isinstance(value, dt.timedelta):
        duration = value
    else:
        duration = parse_duration(value) if isinstance(value, str) else None
    if duration is None or duration <= dt.timedelta(0):
        raise ValueError(f"must be a positive duration such as 30s, 5m, 1h or 1d, got {value!r}")
    return duration


class PredictorTuning(BaseModel):
    """Optuna search of the forest's hyperparameters (maximising the cross-validated F1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(0, ge=0, description="Optuna trials; 0 = the configured forest as is.")
    seed: int = Field(0, description="Seed of the search and of the forest.")


class PredictorConfig(BaseModel):
    """Per-asset failure predictor: window features, horizon label, forest, apply table."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    bucket: dt.timedelta = Field(
        dt.timedelta(minutes=1),
        description="Time bucket: one feature row, one label and one failure probability per "
        "asset and bucket (a duration such as 30s, 1m, 5m).",
    )
    windows: list[dt.timedelta] = Field(
        [dt.timedelta(minutes=5), dt.timedelta(minutes=30)],
        min_length=1,
        description="Rolling windows of the features (each a whole number of buckets): mean, "
        "std, min, max and rate of change of every axis, and the events started, over each.",
    )
    horizon: dt.timedelta = Field(
        dt.timedelta(hours=1),
        description="Forewarning horizon H: a bucket is positive when a confirmed incident "
        "starts within H after it.",
    )
    residuals: bool = Field(
        False,
        description="Also featurise |residual| of every axis under the asset's latest "
        "registered model (when one exists). Off by default: on a historical window that model "
        "was fitted on the buckets' future (and without the incidents), so the validation "
        "metrics would be optimistic; see docs/prediction.md.",
    )
    min_incidents: int = Field(
        3,
        ge=1,
        description="Confirmed incidents an asset needs in its window to train a predictor; "
        "fewer: status needs-labels (with how many more).",
    )
    folds: int = Field(
        4, ge=2, description="Time-ordered cross-validation folds (each tests on later data)."
    )
    n_estimators: int = Field(200, ge=1, description="Trees of the random forest.")
    max_depth: int | None = Field(8, ge=1, description="Depth of each tree; null = unlimited.")
    min_samples_leaf: int = Field(5, ge=1, description="Buckets at least in a leaf.")
    probability_threshold: float = Field(
        0.5, gt=0, lt=1, description="Probability from which a bucket counts as a warning."
    )
    tuning: PredictorTuning = Field(default_factory=PredictorTuning)
    table: str = Field(
        "failure_risk",
        description="Table apply writes (asset, bucket_start, probability, model_version), in "
        "the data's database.",
    )
    root_dir: str = Field(
        "ModelRegistry/predictors",
        description="Registry of the predictors (versions with the forest, metrics and plots; "
        "a fleet: one folder per asset), relative to the config file.",
    )
    feature_dir: str = Field(
        "out/features",
        description="Feature store: one Parquet file per asset (features of its last training "
        "or apply run), relative to the config file.",
    )
    apply_on_score: bool = Field(
        False,
        description="score also applies the failure predictors (as apply does, the assets "
        "scored) and reports them under failure_risk.",
    )
    batch_rows: int = Field(
        5000, ge=1, description="Probabilities written per transaction by apply."
    )

    @field_validator("bucket", "horizon", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _positive_duration(value)

    @field_validator("windows", mode="before")
    @classmethod
    def _durations(cls, values: Any) -> Any:
        if not isinstance(values, list):
            raise ValueError(f"must be a list of durations such as [5m, 30m], got {values!r}")
        return [_positive_duration(v) for v in values]

    @field_validator("table")
    @classmethod
    def _safe_table(cls, value: str) -> str:
        split_table_name(value)
        return value

    def window_buckets(self) -> list[int]:
        """Each window as a whole number of buckets (at least one)."""
        return [max(1, round(w / self.bucket)) for w in self.windows]
