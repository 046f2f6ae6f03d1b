"""The ``data`` section of config.yaml: which table, columns, axes and training window."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from Database import split_table_name, validate_identifier

__all__ = [
    "DataConfig",
    "parse_duration",
    "parse_relative",
    "positive_duration",
    "resolve_bound",
]

DEFAULT_AXES = [f"axis{k}" for k in range(1, 9)]

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|m|min|h|d|w)", re.IGNORECASE)
_DATETIME = TypeAdapter(dt.datetime | None)
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta | None:
    """``30d`` → ``timedelta(days=30)``; None when ``text`` is not of that form.

    Units: ``s``, ``m`` (or ``min``), ``h``, ``d``, ``w``; the number may have decimals
    (``1.5h``).
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def positive_duration(value: Any, examples: str, *, nullable: bool = False) -> Any:
    """A config value as a positive ``timedelta`` (a pydantic ``mode="before"`` validator body).

    Args:
        value: a ``timedelta``, a :func:`parse_duration` text, or (``nullable``) None.
        examples: shown in the message, e.g. ``"15m, 1h or 1d"``.
        nullable: None is allowed (and returned).

    Raises:
        ValueError: anything else (pydantic prefixes the key path).
    """
    if isinstance(value, dt.timedelta) or (nullable and value is None):
        return value
    duration = parse_duration(value) if isinstance(value, str) else None
    if duration is None or duration <= dt.timedelta(0):
        null = " (or null)" if nullable else ""
        raise ValueError(f"must be a positive duration such as {examples}{null}, got {value!r}")
    return duration


def parse_relative(text: str) -> dt.timedelta | None:
    """``-30d`` → ``timedelta(days=-30)``: a bound relative to the newest sample.

    Returns None when ``text`` is not a minus sign and a :func:`parse_duration` duration (it
    may be a date).
    """
    stripped = text.strip()
    duration = parse_duration(stripped[1:]) if stripped.startswith("-") else None
    return None if duration is None else -duration


def resolve_bound(
    bound: dt.datetime | dt.timedelta | None, newest: dt.datetime | None
) -> dt.datetime | None:
    """A window bound as an absolute UTC datetime: relative ones count from ``newest``.

    Returns None for no bound, and for a relative bound when there is no newest sample (an
    empty table or asset: extraction then reports the empty window).
    """
    if isinstance(bound, dt.timedelta):
        return None if newest is None else newest + bound
    return bound


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
    train_start: dt.datetime | dt.timedelta | None = Field(
        None,
        description="Training window start, inclusive: ISO-8601 (UTC when no zone is given), "
        "or relative to the newest sample (of each asset), e.g. -30d, -12h, -90m, -2w. "
        "null = from the first sample.",
    )
    train_end: dt.datetime | dt.timedelta | None = Field(
        None,
        description="Training window end, exclusive: ISO-8601 or relative like train_start "
        "(-1h = all but the newest hour). null = up to the last sample.",
    )
    asset_col: str | None = Field(
        None,
        description="Column holding the machine (asset) id when one table holds a fleet: every "
        "asset gets its own window, models, thresholds, registry folder and events. null = "
        "the table is one machine.",
    )
    assets: Literal["all"] | list[str] = Field(
        "all",
        description="With asset_col: 'all' (every distinct id in the table) or a list of ids "
        "to train and score (numbers are compared as text, e.g. ['7', '12']).",
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description="Unit of each axis for plots and reports, e.g. {axis1: A, axis2: A} "
        "(LONG layout: keys axis1, axis2, ... for ids 1, 2); axes not named show no unit.",
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

    @model_validator(mode="after")
    def _units_of_known_axes(self) -> DataConfig:
        unknown = sorted(set(self.units) - set(self.axis_columns))
        if unknown:
            raise ValueError(
                f"data.units names axes that data.axes does not have: {unknown}; "
                f"the axes are {self.axis_columns}"
            )
        return self

    @field_validator("train_start", "train_end", mode="before")
    @classmethod
    def _relative(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("-"):
            relative = parse_relative(value)
            if relative is None:
                raise ValueError(
                    f"{value!r} is not a relative time; write e.g. -30d, -12h, -90m or -2w "
                    "(relative to the newest sample), or an ISO-8601 date"
                )
            return relative
        if isinstance(value, dt.timedelta):
            raise ValueError("write a relative bound as text, e.g. -30d")
        try:  # one message for a bad date, not one per member of the union
            return _DATETIME.validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"{exc.errors()[0]['msg']}, got {value!r}") from None

    @field_validator("train_start", "train_end")
    @classmethod
    def _utc(cls, value: dt.datetime | dt.timedelta | None) -> dt.datetime | dt.timedelta | None:
        if isinstance(value, dt.datetime):
            return _as_utc(value)
        return value

    @field_validator("train_end")
    @classmethod
    def _end_after_start(
        cls, value: dt.datetime | dt.timedelta | None, info: ValidationInfo
    ) -> dt.datetime | dt.timedelta | None:
        start = info.data.get("train_start")
        if value is None or start is None or type(value) is not type(start):
            return value  # an absolute and a relative bound are compared per asset
        if value <= start:
            shown = value.isoformat() if isinstance(value, dt.datetime) else f"-{-value}"
            first = start.isoformat() if isinstance(start, dt.datetime) else f"-{-start}"
            raise ValueError(f"must be after train_start ({first}), got {shown}")
        return value

    @field_validator("asset_col")
    @classmethod
    def _safe_asset_col(cls, value: str | None) -> str | None:
        return None if value is None else validate_identifier(value, "column name")

    @field_validator("assets", mode="before")
    @classmethod
    def _asset_ids(cls, value: Any) -> Any:
        if value == "all":
            return value
        if not isinstance(value, list) or not value:
            raise ValueError("must be 'all' or a non-empty list of asset ids")
        if any(isinstance(item, bool) or not isinstance(item, (str, int)) for item in value):
            raise ValueError(f"asset ids must be text or integers, got {value!r}")
        ids = [str(item) for item in value]
        if len(set(ids)) != len(ids):
            raise ValueError(f"lists an asset twice: {value!r}")
        return ids

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
