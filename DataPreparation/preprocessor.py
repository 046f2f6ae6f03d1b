"""Preparation: validate a window, optionally interpolate gaps, add ``time_s`` since ``t0``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FIT_VALUE_LIMIT",
    "PrepConfig",
    "PreparationError",
    "PreparedData",
    "prepare",
    "t0_from_stats",
    "time_since",
    "validate_frame",
]

logger = logging.getLogger(__name__)

FIT_VALUE_LIMIT = 1e150
"""Largest magnitude of a value that training accepts. Fits and metrics square and sum the
values: beyond ~1.3e154 a square overflows float64, so 1e150 leaves room for sums of up to
10^8 squares. Sensors never read this much; such values are sentinels or corrupt rows."""


class PrepConfig(BaseModel):
    """The ``prep`` section of config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interpolate: bool = Field(
        False,
        description="false: values exactly as extracted (NaN stays NaN and is left out of "
        "fits); true: interior NaN gaps are filled linearly in time (leading/trailing NaN stay).",
    )


class PreparationError(ValueError):
    """The window is not usable: too short, unsorted, duplicated, non-finite or empty axes."""


@dataclass(frozen=True)
class PreparedData:
    """The prepared frame (input columns + ``time_s``) and what scoring needs to repeat it."""

    frame: pd.DataFrame
    t0: pd.Timestamp | float
    dt_seconds: float
    interpolated: dict[str, int] = field(default_factory=dict)

    def stats(self) -> dict[str, object]:
        """Contents of ``prep_stats.json``: the time origin and sampling interval."""
        is_time = isinstance(self.t0, pd.Timestamp)
        return {
            "t0": self.t0.isoformat() if is_time else float(self.t0),
            "t0_kind": "datetime" if is_time else "epoch",
            "dt_seconds": self.dt_seconds,
            "rows": len(self.frame),
            "interpolated": dict(self.interpolated),
        }


def t0_from_stats(stats: Mapping[str, object]) -> pd.Timestamp | float:
    """Rebuild ``t0`` from ``prep_stats.json`` (inverse of :meth:`PreparedData.stats`)."""
    if stats.get("t0_kind") == "epoch":
        return float(stats["t0"])  # type: ignore[arg-type]
    return pd.Timestamp(str(stats["t0"])).tz_convert("UTC")


def _ticks(ts: pd.Series) -> np.ndarray:
    """UTC instants of a datetime column as int64 nanoseconds (no copy for ``datetime64[ns]``).

    A column without a time zone is taken as UTC, as extraction does.
    """
    if isinstance(ts.dtype, pd.DatetimeTZDtype) and ts.dtype.unit == "ns":
        values = ts.array.asi8.view()  # the instants as they are: no converted column
        values.flags.writeable = False  # as the converted column's would be
        return values
    naive = ts.dt.tz_convert(None) if getattr(ts.dtype, "tz", None) is not None else ts
    values = naive.to_numpy()
    if np.datetime_data(values.dtype)[0] != "ns":
        values = values.astype("datetime64[ns]")
    return values.view("int64")


def time_since(ts: pd.Series, t0: pd.Timestamp | float) -> np.ndarray:
    """Seconds from ``t0`` to each sample, float64 (negative before ``t0``).

    For datetimes: the exact integer nanoseconds from ``t0``, divided by 1e9.

    Raises:
        PreparationError: ``t0`` and ``ts`` are of different kinds (timestamp vs epoch).
    """
    if isinstance(t0, pd.Timestamp):
        if not pd.api.types.is_datetime64_any_dtype(ts):
            raise PreparationError("t0 is a timestamp but the ts column holds numbers")
        origin = t0.tz_convert("UTC").tz_localize(None).to_datetime64()
        origin_ns = origin.astype("datetime64[ns]").view("int64")
        return (_ticks(ts) - origin_ns) / 1e9
    if pd.api.types.is_datetime64_any_dtype(ts):
        raise PreparationError("t0 is epoch seconds but the ts column holds timestamps")
    return ts.to_numpy(dtype="float64") - float(t0)


def validate_frame(
    frame: pd.DataFrame,
    axes: list[str],
    *,
    min_samples: int = 2,
    allow_empty_axes: bool = False,
    value_limit: float = np.inf,
) -> None:
    """Check the frame contract; every problem names the column and the fix.

    Args:
        frame: ``ts`` plus the axis columns.
        axes: axis columns to check.
        min_samples: fewest rows accepted.
        allow_empty_axes: accept an axis whose values are all NaN (scoring a short window).
        value_limit: largest magnitude accepted (training passes :data:`FIT_VALUE_LIMIT`);
            default: any finite value.

    Raises:
        PreparationError: a missing column, too few samples, a sample without a usable
            time, unsorted or duplicated timestamps, non-numeric or infinite values, values
            beyond ``value_limit``, or an all-NaN axis.
    """
    missing = [col for col in ["ts", *axes] if col not in frame.columns]
    if missing:
        raise PreparationError(
            f"columns {missing} are missing; available columns: {list(frame.columns)}"
        )
    if len(frame) < min_samples:
        raise PreparationError(
            f"the window holds {len(frame)} samples; at least {min_samples} are needed. "
            "Widen the window (data.train_start/data.train_end)"
        )
    ts = frame["ts"]
    is_time = pd.api.types.is_datetime64_any_dtype(ts)
    unusable = ts.isna().to_numpy() if is_time else ~np.isfinite(ts.to_numpy(dtype="float64"))
    if unusable.any():
        raise PreparationError(
            f"ts has {int(unusable.sum())} samples without a usable time (missing, NaN or "
            "infinite); every sample needs one: drop those rows or fix them in the source"
        )
    steps = np.diff(_ticks(ts) if is_time else ts.to_numpy(dtype="float64"))
    if not (steps > 0).all():
        if (steps < 0).any():
            position = int(np.argmax(steps < 0)) + 1
            raise PreparationError(
                f"timestamps are not sorted: row {position} ({ts.iloc[position]}) comes before "
                "the row above it; sort the frame by ts"
            )
        position = int(np.argmax(steps == 0)) + 1
        raise PreparationError(
            f"{int((steps == 0).sum())} duplicated timestamps (first: {ts.iloc[position]}); "
            "set data.duplicates to 'first', 'last' or 'mean', or de-duplicate the source"
        )
    for axis in axes:
        values = frame[axis]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise PreparationError(f"axis {axis!r} is not numeric (dtype {values.dtype})")
        array = values.to_numpy(dtype="float64")
        # fmin/fmax skip NaN and allocate nothing: ±inf shows as an extreme; the full-length
        # masks are only built to report a problem.
        lowest = np.fmin.reduce(array, initial=np.inf)  # +inf when every value is NaN
        highest = np.fmax.reduce(array, initial=-np.inf)
        if lowest == -np.inf or highest == np.inf:
            infinite = np.isinf(array)
            raise PreparationError(
                f"axis {axis!r} holds {int(infinite.sum())} infinite values (first at "
                f"{ts.iloc[int(np.argmax(infinite))]}); clean the source or store NULL instead"
            )
        if lowest < -value_limit or highest > value_limit:
            huge = np.abs(array) > value_limit
            raise PreparationError(
                f"axis {axis!r} holds {int(huge.sum())} values beyond ±{value_limit:g} "
                f"(largest {max(-lowest, highest):g}, first at {ts.iloc[int(np.argmax(huge))]}): "
                "squares and sums of values this large overflow float64, so no baseline can be "
                "fitted; such values are sentinels or corrupt readings: clean the source or "
                "store NULL instead"
            )
        if not allow_empty_axes and array.size and np.isnan(array[0]) and np.isnan(array).all():
            raise PreparationError(
                f"axis {axis!r} has no values in the window (all NaN); remove it from data.axes "
                "or choose a window where it was recorded"
            )


def _interpolate(frame: pd.DataFrame, axes: list[str], time_s: np.ndarray) -> dict[str, int]:
    """Fill interior NaN linearly in time, in place on ``frame`` (a copy owned by the caller)."""
    filled: dict[str, int] = {}
    for axis in axes:
        values = frame[axis].to_numpy(dtype="float64", copy=True)
        present = ~np.isnan(values)
        if present.all() or present.sum() < 2:
            continue
        first, last = np.flatnonzero(present)[[0, -1]]
        interior = ~present
        interior[:first] = False
        interior[last + 1 :] = False
        values[interior] = np.interp(time_s[interior], time_s[present], values[present])
        frame[axis] = values
        filled[axis] = int(interior.sum())
    return filled


def _column_frame(name: str, values: np.ndarray, like: pd.DataFrame) -> pd.DataFrame:
    """A one-column frame on ``like``'s index that owns ``values`` without copying them."""
    return pd.DataFrame({name: values}, index=like.index, copy=False)


def prepare(
    frame: pd.DataFrame,
    axes: list[str],
    config: PrepConfig,
    *,
    dt_seconds: float,
    t0: pd.Timestamp | float | None = None,
) -> PreparedData:
    """Validate the window and add ``time_s``; the input frame is not modified.

    Args:
        frame: extracted window (``ts`` + axes).
        axes: axis columns.
        config: the ``prep`` section.
        dt_seconds: the median sampling interval from the profile.
        t0: time origin; None = the first sample (training). Scoring passes the trained t0.

    Returns:
        The prepared data with ``t0`` and ``dt_seconds`` for ``prep_stats.json``.

    Raises:
        PreparationError: see :func:`validate_frame` (with ``value_limit`` =
            :data:`FIT_VALUE_LIMIT`).
    """
    validate_frame(frame, axes, value_limit=FIT_VALUE_LIMIT)
    origin = frame["ts"].iloc[0] if t0 is None else t0
    time_s = time_since(frame["ts"], origin)
    # A shallow copy: with pandas' copy-on-write the input still cannot change, and the
    # columns are shared instead of duplicated; time_s joins without a copy too.
    prepared = frame.copy(deep=False)
    filled = _interpolate(prepared, axes, time_s) if config.interpolate else {}
    if filled:
        logger.info("interpolated NaN gaps: %s", filled)
    if "time_s" in prepared.columns:  # a frame prepared before: time_s is made anew
        prepared = prepared.drop(columns="time_s")
    prepared = pd.concat([prepared, _column_frame("time_s", time_s, prepared)], axis=1)
    origin_value = origin if isinstance(origin, pd.Timestamp) else float(origin)
    return PreparedData(
        frame=prepared, t0=origin_value, dt_seconds=float(dt_seconds), interpolated=filled
    )
