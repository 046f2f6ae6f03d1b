"""Window features against hand-computed rolling windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from Prediction.features import bucket_starts, window_features

T0 = pd.Timestamp("2026-01-05", tz="UTC")
S = pd.Timedelta(seconds=1)


def _ts(seconds: list[float]) -> pd.Series:
    return pd.Series([T0 + s * S for s in seconds])


def test_rolling_features_equal_the_hand_computed_windows() -> None:
    # Buckets of 10 s: bucket 0 holds 1, 3 (t = 0, 5); bucket 1 holds 5, NaN (t = 10, 12);
    # bucket 2 is empty; bucket 3 holds 2, 4, 9 (t = 30, 31, 39).
    ts = _ts([0, 5, 10, 12, 30, 31, 39])
    values = np.array([1.0, 3.0, 5.0, np.nan, 2.0, 4.0, 9.0])

    features = window_features(
        ts, {"a": values}, 10 * S, [10 * S, 20 * S], event_starts=_ts([1, 11, 11.5, 38, 100])
    )

    assert list(features.index) == [T0, T0 + 10 * S, T0 + 20 * S, T0 + 30 * S]
    assert features["samples"].tolist() == [2, 2, 0, 3]
    nan = np.nan
    expected = {
        # one bucket
        "a_mean_10s": [2.0, 5.0, nan, 5.0],
        "a_std_10s": [1.0, 0.0, nan, np.std([2.0, 4.0, 9.0])],
        "a_min_10s": [1.0, 5.0, nan, 2.0],
        "a_max_10s": [3.0, 5.0, nan, 9.0],
        "a_roc_10s": [nan, 0.3, nan, nan],  # (5 - 2) / 10 s; bucket 2 has no mean
        # two buckets: {1, 3}, {1, 3, 5}, {5}, {2, 4, 9}
        "a_mean_20s": [2.0, 3.0, 5.0, 5.0],
        "a_std_20s": [1.0, np.std([1.0, 3.0, 5.0]), 0.0, np.std([2.0, 4.0, 9.0])],
        "a_min_20s": [1.0, 1.0, 5.0, 2.0],
        "a_max_20s": [3.0, 5.0, 5.0, 9.0],
        "a_roc_20s": [nan, nan, 3.0 / 20, 2.0 / 20],  # 5 - 2 over 20 s; 5 - 3 over 20 s
        "events_10s": [1.0, 2.0, 0.0, 1.0],  # the event at 100 s is after the last bucket
        "events_20s": [1.0, 3.0, 2.0, 1.0],
    }
    for column, values_expected in expected.items():
        np.testing.assert_allclose(
            features[column].to_numpy(), values_expected, rtol=1e-12, err_msg=column
        )


def test_buckets_align_to_the_epoch_and_epoch_seconds_work_alike() -> None:
    epoch = T0.timestamp()
    seconds = pd.Series([epoch + 7.0, epoch + 13.0])
    assert (bucket_starts(seconds, 10 * S) == bucket_starts(_ts([7, 13]), 10 * S)).all()
    features = window_features(seconds, {"a": np.array([1.0, 2.0])}, 10 * S, [10 * S])
    assert list(features.index) == [T0, T0 + 10 * S]


def test_large_offsets_keep_the_std_exact() -> None:
    values = 1e9 + np.array([1.0, 2.0, 3.0, 4.0])
    features = window_features(_ts([0, 1, 2, 3]), {"a": values}, 10 * S, [10 * S])
    assert features["a_std_10s"].iloc[0] == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0]))
    assert features["a_mean_10s"].iloc[0] == pytest.approx(1e9 + 2.5)


def test_no_samples_give_no_rows() -> None:
    assert window_features(_ts([]), {"a": np.array([])}, 10 * S, [10 * S]).empty
