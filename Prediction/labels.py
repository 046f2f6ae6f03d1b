"""The label of a bucket: does a confirmed incident start within the forewarning horizon?

For a bucket ``[b, b + bucket)``: *positive* when an incident starts in ``[b + bucket,
b + bucket + horizon)`` (after the bucket, within ``horizon``), weighted by that incident's
severity (the heaviest when several); *negative* otherwise, weight 1. Buckets that overlap an
incident are left out (``NaN``): the incident is already there, so they can give no warning and
would teach the model the incident itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["horizon_labels"]


def _ns(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).to_numpy("datetime64[ns]").view("int64")


def horizon_labels(
    buckets: pd.DatetimeIndex,
    bucket: pd.Timedelta,
    incidents: pd.DataFrame,
    horizon: pd.Timedelta,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """``label`` (1.0, 0.0, or NaN for buckets inside an incident) and ``weight`` per bucket.

    Args:
        buckets: bucket starts (UTC), sorted.
        bucket: the bucket length.
        incidents: ``start_ts``, ``end_ts`` (inclusive) and optionally ``severity``.
        horizon: the forewarning horizon.
        weights: severity → weight of a positive bucket (default 1 each).
    """
    start = buckets.to_numpy("datetime64[ns]").view("int64")
    end = start + int(pd.Timedelta(bucket).value)  # exclusive
    heaviest = np.zeros(start.size)  # the weight of the heaviest incident ahead; 0: none
    inside = np.zeros(start.size, dtype=bool)
    if len(incidents):
        first, last = _ns(incidents["start_ts"]), _ns(incidents["end_ts"])
        severity = incidents["severity"] if "severity" in incidents else [None] * len(first)
        table = weights or {}
        reach = int(pd.Timedelta(horizon).value)
        # A loop over incidents (a handful), each step vectorised over the buckets.
        for when, until, level in zip(first, last, severity, strict=True):
            ahead = (end <= when) & (when < end + reach)
            heaviest[ahead] = np.maximum(heaviest[ahead], table.get(str(level), 1.0))
            inside |= (start <= until) & (end > when)
    label = np.where(inside, np.nan, (heaviest > 0).astype(np.float64))
    weight = np.where(inside, np.nan, np.where(heaviest > 0, heaviest, 1.0))
    return pd.DataFrame({"label": label, "weight": weight}, index=buckets)
