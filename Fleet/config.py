"""Typed configuration of fleet runs (the ``fleet:`` block of config.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from Database import split_table_name

__all__ = ["DEFAULT_MIN_SAMPLES", "FleetConfig"]

DEFAULT_MIN_SAMPLES = 1000
"""Usable samples an asset needs before it is trained (about 30 minutes at ~1.9 s)."""


class FleetConfig(BaseModel):
    """How the assets of a fleet table (``data.asset_col``) are trained and scored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_samples: int = Field(
        DEFAULT_MIN_SAMPLES,
        ge=2,
        description=(
            "Usable samples (rows where some axis is neither 0 nor missing) an asset needs in "
            "its training window to be trained; with fewer it is not trained, its status is "
            "needs-data with the number missing, and it keeps its last good version."
        ),
    )
    executor: Literal["local", "dask"] = Field(
        "local",
        description=(
            "local: a process pool on this machine (fleet.workers processes); dask: the Dask "
            "cluster at fleet.scheduler_address."
        ),
    )
    workers: int | None = Field(
        None,
        ge=1,
        description=(
            "local executor: worker processes (null = one per core); 1 runs every asset in "
            "this process."
        ),
    )
    scheduler_address: str | None = Field(
        None,
        description="dask executor: the scheduler, e.g. tcp://scheduler:8786.",
    )
    scheduler_timeout_s: float = Field(
        30.0,
        gt=0,
        description=(
            "dask executor: seconds to keep trying to reach the scheduler before the run "
            "fails with a clear error (Dask retries a refused connection until then)."
        ),
    )
    batch_assets: int | None = Field(
        None,
        ge=1,
        description=(
            "Assets per task (each task reads and trains its assets one after the other). "
            "null = about four tasks per worker, at most 50 assets each."
        ),
    )
    selection: Literal["shared", "per-asset"] = Field(
        "shared",
        description=(
            "model.type auto: shared = choose each axis's family once per run, on "
            "fleet.selection_assets assets spread over the fleet (the choice most of them "
            "make), then fit it to every asset with its own parameters and thresholds; "
            "per-asset = choose for every asset (several times slower)."
        ),
    )
    selection_assets: int = Field(
        8,
        ge=1,
        description="shared selection: how many assets (evenly spread over the fleet) vote.",
    )
    table: str = Field(
        "fleet_state",
        description=(
            "Table of the per-asset state (status, version, samples, missing, reason, "
            "families, thresholds), in the data's database, written at the end of every "
            "training run."
        ),
    )
    attention_change: float = Field(
        0.5,
        gt=0,
        allow_inf_nan=False,
        description=(
            "A trained asset needs attention (and gets its plots drawn) when a MinC or MaxC "
            "moved by more than this share of its previous version's value."
        ),
    )

    @field_validator("table")
    @classmethod
    def _safe_table(cls, value: str) -> str:
        split_table_name(value)  # UnsafeIdentifierError is a ValueError: pydantic reports it
        return value

    @field_validator("scheduler_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(
                f"must be a Dask scheduler address like tcp://host:8786, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _dask_needs_an_address(self) -> FleetConfig:
        if self.executor == "dask" and self.scheduler_address is None:
            raise ValueError(
                "fleet.executor dask needs fleet.scheduler_address (e.g. tcp://scheduler:8786; "
                "start one with `dask scheduler` and `dask worker tcp://scheduler:8786`)"
            )
        return self
