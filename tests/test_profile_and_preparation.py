"""Profile (analyzer) and preparation (validation, interpolation, time origin)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from DataExtractionAnalysis import ProfileError, median_interval, profile
from DataPreparation import (
    PreparationError,
    PrepConfig,
    prepare,
    t0_from_stats,
    time_since,
    validate_frame,
)

T0 = pd.Timestamp("2026-01-05 00:00:00", tz="UTC")


def _frame(offsets_s: list[float], **axes: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame({"ts": T0 + pd.to_timedelta(offsets_s, unit="s")})
    for name, values in axes.items():
        frame[name] = np.asarray(values, dtype="float64")
    return frame.astype({"ts": "datetime64[ns, UTC]"})


def test_profile_values_are_exact() -> None:
    frame = _frame([0, 2, 4, 6, 20, 22], a=[0, 1, 2, np.nan, 4, 0], b=[1, 1, 1, 1, 1, 1])
    result = profile(frame, ["a", "b"]).to_dict()
    assert result["rows"] == 6
    assert result["start"] == "2026-01-05T00:00:00+00:00"
    assert result["end"] == "2026-01-05T00:00:22+00:00"
    assert result["dt_seconds"] == 2.0
    assert result["gaps"] == 1  # 14 s > 5 * 2 s
    assert result["axes"]["a"] == {
        "count": 5,
        "nan": 1,
        "zero_share": 0.4,
        "min": 0.0,
        "max": 4.0,
        "mean": 1.4,
        "std": pytest.approx(np.std([0, 1, 2, 4, 0], ddof=1)),
    }
    assert result["axes"]["b"]["std"] == 0.0


def test_profile_over_many_blocks_matches_closed_form_and_a_float64_reference() -> None:
    # Several 32,768-row blocks and a partial one, two axes (the threaded path). Axis "a" is
    # 0, 1, ..., N-1: mean (N-1)/2, sample std sqrt(N (N+1) / 12). Axis "b" is far from zero
    # with NaN stretches across block edges, against NumPy's two-pass float64 result.
    n = 3 * 32_768 + 12_345
    rng = np.random.default_rng(11)
    b = 5e6 + rng.normal(0, 2, n)
    b[32_000:34_000] = np.nan
    b[-100:] = np.nan
    frame = _frame(list(np.arange(n) * 2.0), a=list(np.arange(n, dtype=float)), b=list(b))
    axes = profile(frame, ["a", "b"]).to_dict()["axes"]
    assert axes["a"] == {
        "count": n,
        "nan": 0,
        "zero_share": pytest.approx(1 / n, rel=1e-12),
        "min": 0.0,
        "max": n - 1.0,
        "mean": pytest.approx((n - 1) / 2, rel=1e-12),
        "std": pytest.approx(np.sqrt(n * (n + 1) / 12), rel=1e-12),
    }
    assert axes["b"]["count"] == n - 2_100
    assert axes["b"]["mean"] == pytest.approx(np.nanmean(b), rel=1e-12)
    assert axes["b"]["std"] == pytest.approx(np.nanstd(b, ddof=1), rel=1e-9)


def test_median_interval_of_robot_sampling_is_1_891() -> None:
    rng = np.random.default_rng(1)
    steps_ms = 1891 + rng.integers(-30, 31, 40_000)
    ts = pd.Series(T0 + pd.to_timedelta(np.concatenate(([0], np.cumsum(steps_ms))), unit="ms"))
    assert median_interval(ts) == 1.891


def test_median_interval_of_epoch_seconds() -> None:
    assert median_interval(pd.Series([10.0, 10.5, 11.0, 13.0])) == 0.5


def test_profile_needs_two_samples() -> None:
    with pytest.raises(ProfileError, match=r"at least 2 samples .* got 1"):
        profile(_frame([0], a=[1]), ["a"])


@pytest.mark.parametrize(
    ("offsets", "values", "message"),
    [
        ([0], [1.0], r"holds 1 samples; at least 2 are needed"),
        ([0, 2, 1], [1.0, 2.0, 3.0], r"not sorted: row 2 \(2026-01-05 00:00:01\+00:00\)"),
        ([0, 2, 2, 4], [1.0, 2.0, 3.0, 4.0], r"1 duplicated timestamps .* data.duplicates"),
        (
            [0, 2, 4],
            [1.0, np.inf, 3.0],
            r"axis 'a' holds 1 infinite values \(first at "
            r"2026-01-05 00:00:02",
        ),
        (
            [0, 2, 4, 6],
            [np.nan, -np.inf, np.nan, np.inf],
            r"axis 'a' holds 2 infinite values \(first at 2026-01-05 00:00:02",
        ),
        ([0, 2, 4], [np.nan, np.nan, np.nan], r"axis 'a' has no values in the window"),
    ],
)
def test_bad_frames_are_refused(offsets: list[float], values: list[float], message: str) -> None:
    with pytest.raises(PreparationError, match=message):
        validate_frame(_frame(offsets, a=values), ["a"])


def test_nan_values_are_neither_infinite_nor_empty() -> None:
    # NaN at both ends is neither an infinite value (the NaN-skipping min/max) nor an empty
    # axis (its first value is NaN, the rest is not): preparation keeps the values as they are.
    prepared = prepare(
        _frame([0, 2, 4], a=[np.nan, 1.0, np.nan]), ["a"], PrepConfig(), dt_seconds=2.0
    )
    assert prepared.frame["a"].tolist()[1] == 1.0
    assert prepared.frame["a"].isna().tolist() == [True, False, True]
    with pytest.raises(PreparationError, match="axis 'a' has no values in the window"):
        validate_frame(_frame([0, 2], a=[np.nan, np.nan]), ["a"])
    # Scoring a short window accepts an axis without values.
    assert validate_frame(_frame([0, 2], a=[np.nan, np.nan]), ["a"], allow_empty_axes=True) is None


def test_missing_and_non_numeric_columns() -> None:
    frame = _frame([0, 2], a=[1, 2])
    with pytest.raises(PreparationError, match=r"columns \['b'\] are missing; available"):
        validate_frame(frame, ["a", "b"])
    with pytest.raises(PreparationError, match="axis 'a' is not numeric"):
        validate_frame(frame.assign(a=["x", "y"]), ["a"])


def test_prepare_without_interpolation_keeps_values_exactly() -> None:
    frame = _frame([0, 2, 4, 7], a=[0.0, np.nan, 3.25, 0.1])
    prepared = prepare(frame, ["a"], PrepConfig(), dt_seconds=2.0)
    pd.testing.assert_frame_equal(prepared.frame.drop(columns="time_s"), frame)
    assert prepared.frame["time_s"].tolist() == [0.0, 2.0, 4.0, 7.0]
    assert "time_s" not in frame.columns  # input untouched


def test_prepare_interpolates_interior_gaps_linearly_in_time() -> None:
    frame = _frame([0, 1, 4, 6, 8], a=[np.nan, 1.0, np.nan, 7.0, np.nan])
    prepared = prepare(frame, ["a"], PrepConfig(interpolate=True), dt_seconds=2.0)
    got = prepared.frame["a"].tolist()
    assert np.isnan(got[0]) and np.isnan(got[4])  # edges are not extrapolated
    # t=4 lies 3/5 of the way from (t=1, 1.0) to (t=6, 7.0); by row index it would be 4.0
    assert got[1:4] == [1.0, pytest.approx(4.6), 7.0]
    assert prepared.interpolated == {"a": 1}


def test_t0_round_trips_through_prep_stats() -> None:
    frame = _frame([0, 2, 4], a=[1, 2, 3])
    prepared = prepare(frame, ["a"], PrepConfig(), dt_seconds=2.0)
    stats = prepared.stats()
    assert stats == {
        "t0": "2026-01-05T00:00:00+00:00",
        "t0_kind": "datetime",
        "dt_seconds": 2.0,
        "rows": 3,
        "interpolated": {},
    }
    later = _frame([10, 12], a=[1, 2])
    assert time_since(later["ts"], t0_from_stats(stats)).tolist() == [10.0, 12.0]


def test_epoch_time_origin() -> None:
    frame = pd.DataFrame({"ts": [100.0, 101.5, 103.0], "a": [1.0, 2.0, 3.0]})
    prepared = prepare(frame, ["a"], PrepConfig(), dt_seconds=1.5)
    assert prepared.stats()["t0_kind"] == "epoch"
    assert t0_from_stats(prepared.stats()) == 100.0
    assert prepared.frame["time_s"].tolist() == [0.0, 1.5, 3.0]
