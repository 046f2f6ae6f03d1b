"""The ``data`` section of config.yaml: which table, columns, axes and training window."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from Database import split_table_name, validate_identifier

__all__ = ["DataConfig"]

DEFAULT_AXES = [f"axis{k}" for k in range(1, 9)]


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


class DataConfig(BaseModel):
    """Where the samples are and which part of them is the training window.

    ``axes`` decides the layout: strings are WIDE column names (``ts, axis1, ..., axisN``);
    integers are LONG axis ids (``ts, axis_id, value``), which become columns ``axis{k}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field("robot_samples", description="Table name, or schema.table.")
    time_col: str = Field(
        "ts",
        description="Time column: TIMESTAMP (with or without time zone), ISO-8601 text "
        "(SQLite) or float epoch seconds.",
    )
    axes: list[str] | list[int] = Field(
        default_factory=lambda: list(DEFAULT_AXES),
        description="WIDE: axis column names; LONG: integer axis ids. Not mixed, not empty.",
    )
    axis_id_col: str = Field("axis_id", description="LONG layout: the axis id column.")
    value_col: str = Field("value", description="LONG layout: the value column.")
    train_start: dt.datetime | None = Field(
        None,
        description="Training window start, inclusive (UTC when no zone is given). "
        "null = from the first sample.",
    )
    train_end: dt.datetime | None = Field(
        None, description="Training window end, exclusive. null = up to the last sample."
    )
    duplicates: Literal["error", "first", "last", "mean"] = Field(
        "error",
        description="Rows sharing a timestamp: 'error' refuses them; 'first'/'last' keep one; "
        "'mean' averages them per axis.",
    )

    @field_validator("axes", mode="before")
    @classmethod
    def _homogeneous_axes(cls, value: object) -> object:
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of column names or of integer axis ids")
        kinds = {type(item) for item in value}
        if bool in kinds or not (kinds <= {str} or kinds <= {int}):
            raise ValueError(
                "must be all strings (WIDE column names) or all integers (LONG axis ids), "
                f"got {value!r}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"lists an axis twice: {value!r}")
        return value

    @field_validator("axes")
    @classmethod
    def _safe_axis_names(cls, value: list[str] | list[int]) -> list[str] | list[int]:
        for axis in value:
            if isinstance(axis, str):
                validate_identifier(axis, "axis column name")
        return value

    @field_validator("train_start", "train_end")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else _as_utc(value)  # type: ignore[return-value]

    @field_validator("train_end")
    @classmethod
    def _end_after_start(
        cls, value: dt.datetime | None, info: ValidationInfo
    ) -> dt.datetime | None:
        start = info.data.get("train_start")
        if value is not None and start is not None and value <= start:
            raise ValueError(
                f"must be after train_start ({start.isoformat()}), got {value.isoformat()}"
            )
        return value

    @field_validator("table")
    @classmethod
    def _safe_table(cls, value: str) -> str:
        split_table_name(value)  # UnsafeIdentifierError is a ValueError: pydantic reports it
        return value

    @field_validator("time_col", "axis_id_col", "value_col")
    @classmethod
    def _safe_column(cls, value: str) -> str:
        return validate_identifier(value, "column name")

    @property
    def layout(self) -> Literal["wide", "long"]:
        """``wide`` when axes are column names, ``long`` when they are integer ids."""
        return "long" if isinstance(self.axes[0], int) else "wide"

    @property
    def axis_columns(self) -> list[str]:
        """Axis column names of the extracted frame (LONG id ``k`` becomes ``axis{k}``)."""
        if self.layout == "long":
            return [f"axis{k}" for k in self.axes]
        return [str(axis) for axis in self.axes]
