"""Typed configuration of the optional MLflow tracking (the ``tracking:`` block)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["TrackingConfig"]


class TrackingConfig(BaseModel):
    """Where training runs are tracked; off unless ``mlflow_uri`` is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mlflow_uri: str | None = Field(
        default=None,
        description=(
            "MLflow tracking URI (e.g. sqlite:///mlflow.db or http://mlflow:5000); null (default) "
            "tracks nothing. Needs the optional package (pip install mlflow-skinny); without "
            "it the run goes on and reports missing-ml-extras."
        ),
    )
    experiment: str = Field(
        default="mlbox",
        min_length=1,
        description="MLflow experiment that holds the runs (created when missing).",
    )
    registered_model: str = Field(
        default="mlbox",
        min_length=1,
        description=(
            "Registered model a single machine's versions are registered under, with the "
            "registry's champion and previous mirrored as MLflow aliases (fleets register none: "
            "one child run per asset, tagged mlbox.asset)."
        ),
    )

    @field_validator("mlflow_uri")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "mlflow_uri is empty; set it to a tracking URI such as sqlite:///mlflow.db, or "
                "to null to track nothing."
            )
        return value
