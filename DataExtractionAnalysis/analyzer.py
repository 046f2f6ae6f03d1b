"""Profile of an extracted window: size, time range, sampling interval, gaps, per-axis stats."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = ["GAP_FACTOR", "AxisProfile", "Profile", "ProfileError", "median_interval", "profile"]

GAP_FACTOR = 5.0  # an interval longer than GAP_FACTOR * dt_seconds counts as a gap


class ProfileError(ValueError):
    """The frame cannot be profiled (too few samples, missing columns)."""


@dataclass(frozen=True)
class AxisProfile:
    """Statistics of one axis; min/max/mean/std are over non-NaN values, zeros included."""

    count: int
    nan: int
    zero_share: float
    min: float | None
    max: float | None
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class Profile:
    """What a window holds. ``dt_seconds`` is the median sampling interval (µs-rounded)."""

    rows: int
    start: str | float
    end: str | float
    dt_seconds: float
    gaps: int
    gap_factor: float
    axes: dict[str, AxisProfile] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict (NaN statistics become ``None``)."""
        return asdict(self)


def _seconds(ts: pd.Series) -> np.ndarray:
    """Sample times as float seconds (epoch seconds stay as they are)."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        return (
            ts.astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]").astype("int64") / 1e9
        )
    return ts.to_numpy(dtype="float64")


def median_interval(ts: pd.Series) -> float:
    """Median interval between consecutive samples in seconds, rounded to the microsecond.

    Rounding removes float noise, so data logged every 1.891 s reports exactly 1.891.

    Raises:
        ProfileError: fewer than 2 samples.
    """
    if len(ts) < 2:
        raise ProfileError(
            f"need at least 2 samples to measure the sampling interval, got {len(ts)}"
        )
    return round(float(np.median(np.diff(_seconds(ts)))), 6)


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _axis_profile(values: pd.Series) -> AxisProfile:
    present = values.dropna()
    count = int(present.size)
    return AxisProfile(
        count=count,
        nan=int(values.size - count),
        zero_share=float((present == 0).sum() / count) if count else 0.0,
        min=_finite_or_none(present.min()) if count else None,
        max=_finite_or_none(present.max()) if count else None,
        mean=_finite_or_none(present.mean()) if count else None,
        std=_finite_or_none(present.std()) if count > 1 else None,
    )


def _render_time(value: object) -> str | float:
    return value.isoformat() if isinstance(value, pd.Timestamp) else float(value)


def profile(frame: pd.DataFrame, axes: list[str]) -> Profile:
    """Profile a time-sorted frame with a ``ts`` column and the given axis columns.

    Returns:
        The profile; ``gaps`` counts intervals longer than ``GAP_FACTOR * dt_seconds``.

    Raises:
        ProfileError: a column is missing or there are fewer than 2 samples.
    """
    missing = [col for col in ["ts", *axes] if col not in frame.columns]
    if missing:
        raise ProfileError(
            f"cannot profile: columns {missing} missing; available: {list(frame.columns)}"
        )
    dt_seconds = median_interval(frame["ts"])
    intervals = np.diff(_seconds(frame["ts"]))
    return Profile(
        rows=len(frame),
        start=_render_time(frame["ts"].iloc[0]),
        end=_render_time(frame["ts"].iloc[-1]),
        dt_seconds=dt_seconds,
        gaps=int((intervals > GAP_FACTOR * dt_seconds).sum()),
        gap_factor=GAP_FACTOR,
        axes={axis: _axis_profile(frame[axis]) for axis in axes},
    )
