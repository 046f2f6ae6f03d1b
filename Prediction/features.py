"""Window features of one asset's telemetry, one row per time bucket, vectorised.

Samples are grouped into contiguous time buckets (``bucket``; buckets without samples are kept,
so a window of ``k`` buckets always spans the same time). Per column and bucket, the count, sum,
sum of squares, minimum and maximum are found in one pass each (``np.bincount`` and
``np.minimum.reduceat``); windows of ``k`` buckets ending at each bucket then come from
cumulative sums (count, mean, std) and pandas' rolling min/max over the bucket extremes. For each
column ``c`` and window ``w`` (``w`` its length, e.g. ``300s``):

- ``c_mean_w``, ``c_std_w`` (population), ``c_min_w``, ``c_max_w`` over the samples of the
  window's buckets (NaN samples left out; NaN when the window holds none);
- ``c_roc_w``: the rate of change, (mean of this window − mean of the window just before it) /
  the window's length in seconds;
- ``events_w``: events (alert/error) that started in the window's buckets, when event starts are
  given.

Residual columns (``{axis}_absres``: ``|residual|`` under the asset's model) are featurised
like any other column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["bucket_starts", "window_features"]


def _ns(ts: pd.Series | np.ndarray) -> np.ndarray:
    series = pd.Series(ts)
    if pd.api.types.is_numeric_dtype(series):
        series = pd.to_datetime(series.astype("float64"), unit="s", utc=True)
    return pd.to_datetime(series, utc=True).to_numpy("datetime64[ns]").view("int64")


def bucket_starts(ts: pd.Series | np.ndarray, bucket: pd.Timedelta) -> np.ndarray:
    """Start (int64 ns) of the bucket of every time, buckets aligned to multiples of ``bucket``
    since the epoch (so two runs bucket the same time alike)."""
    size = int(pd.Timedelta(bucket).value)
    ns = _ns(ts)
    return ns - ns % size


def _windowed(cumulative: np.ndarray, k: int) -> np.ndarray:
    """Sums over the last ``k`` buckets from a cumulative sum with a leading 0."""
    ends = np.arange(1, cumulative.size)
    return cumulative[ends] - cumulative[np.maximum(0, ends - k)]


def _column_features(
    ids: np.ndarray, values: np.ndarray, n_buckets: int, windows: Sequence[tuple[str, int, float]]
) -> dict[str, np.ndarray]:
    """The features of one column (see the module docstring), by bucket."""
    ok = np.isfinite(values)
    ids_ok, kept = ids[ok], values[ok]
    centre = float(kept.mean()) if kept.size else 0.0
    centred = kept - centre  # sums of squares far from the mean lose no precision
    count = np.bincount(ids_ok, minlength=n_buckets).astype(np.float64)
    total = np.bincount(ids_ok, weights=centred, minlength=n_buckets)
    squares = np.bincount(ids_ok, weights=centred * centred, minlength=n_buckets)
    low = np.full(n_buckets, np.nan)
    high = np.full(n_buckets, np.nan)
    if kept.size:
        first = np.concatenate(([0], np.flatnonzero(np.diff(ids_ok)) + 1))
        low[ids_ok[first]] = np.minimum.reduceat(kept, first)
        high[ids_ok[first]] = np.maximum.reduceat(kept, first)
    sums = [np.concatenate(([0.0], np.cumsum(x))) for x in (count, total, squares)]
    features: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for label, k, seconds in windows:
            n, s, s2 = (_windowed(c, k) for c in sums)
            mean = np.where(n > 0, s / n, np.nan)
            variance = np.maximum(s2 / n - mean * mean, 0.0)
            previous = np.full(n_buckets, np.nan)
            if k < n_buckets:
                previous[k:] = mean[:-k]
            features[f"mean_{label}"] = mean + centre
            features[f"std_{label}"] = np.where(n > 0, np.sqrt(variance), np.nan)
            features[f"min_{label}"] = pd.Series(low).rolling(k, min_periods=1).min().to_numpy()
            features[f"max_{label}"] = pd.Series(high).rolling(k, min_periods=1).max().to_numpy()
            features[f"roc_{label}"] = (mean - previous) / seconds
    return features


def window_features(
    ts: pd.Series | np.ndarray,
    columns: Mapping[str, np.ndarray],
    bucket: pd.Timedelta,
    windows: Sequence[pd.Timedelta],
    event_starts: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """Features of every bucket from the first sample's to the last's.

    Args:
        ts: sorted sample times (UTC timestamps or epoch seconds).
        columns: name → values aligned with ``ts`` (NaN = missing).
        bucket: the bucket length.
        windows: window lengths; each is rounded to a whole number of buckets (at least 1).
        event_starts: start times of the asset's events, or None (no ``events_*`` columns).

    Returns:
        Indexed by ``bucket_start`` (UTC); ``samples`` (rows in the bucket) and
        ``{column}_{stat}_{window}`` (see the module docstring), ``events_{window}``.
    """
    size = int(pd.Timedelta(bucket).value)
    starts = bucket_starts(ts, bucket)
    if starts.size == 0:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="bucket_start"))
    origin = int(starts[0])
    ids = (starts - origin) // size
    n_buckets = int(ids[-1]) + 1
    spans = [
        (f"{int(k * pd.Timedelta(bucket).total_seconds())}s", k, k * size / 1e9)
        for k in (max(1, round(pd.Timedelta(w) / pd.Timedelta(bucket))) for w in windows)
    ]
    data: dict[str, np.ndarray] = {"samples": np.bincount(ids, minlength=n_buckets)}
    for name, values in columns.items():
        per_column = _column_features(ids, np.asarray(values, dtype=np.float64), n_buckets, spans)
        data.update({f"{name}_{feature}": array for feature, array in per_column.items()})
    if event_starts is not None:
        event_ids = (bucket_starts(event_starts, bucket) - origin) // size
        inside = (event_ids >= 0) & (event_ids < n_buckets)
        counts = np.bincount(event_ids[inside], minlength=n_buckets).astype(np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(counts)))
        for label, k, _ in spans:
            data[f"events_{label}"] = _windowed(cumulative, k)
    index = pd.DatetimeIndex(
        pd.to_datetime(origin + np.arange(n_buckets, dtype=np.int64) * size, utc=True),
        name="bucket_start",
    )
    return pd.DataFrame(data, index=index)
