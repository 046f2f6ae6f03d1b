"""Edges of the fit metrics and the window profile: one usable row, no usable row, two
samples, and the exact messages and warnings."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from DataExtractionAnalysis import ProfileError, median_interval, profile
from ModelEvaluation import EvaluationError, axis_metrics, evaluate


def test_metrics_of_one_usable_row_have_no_r2_and_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ModelEvaluation.evaluator"):
        axis, n, r2, mae, rmse = axis_metrics("a", [0.0, 5.0, 7.0], [np.nan, np.nan, -2.0])
    assert (axis, n, mae, rmse) == ("a", 1, 2.0, 2.0)
    assert np.isnan(r2)
    assert caplog.messages == []


def test_two_usable_rows_are_enough_for_r2() -> None:
    # ss_res = 0.25 + 0.25, ss_tot = 1 + 1 around the mean 2: R² = 1 - 0.5 / 2.
    assert axis_metrics("a", [1.0, 3.0], [0.5, -0.5]) == ("a", 2, 0.75, 0.5, 0.5)


def test_a_block_without_usable_rows_does_not_end_the_metrics() -> None:
    # The first 32,768-row block has no residual; the 7,232 rows after it alternate +1 / -3.
    n = 40_000
    actual = np.arange(n, dtype=float)
    residual = np.full(n, np.nan)
    residual[32_768:] = np.where(np.arange(n - 32_768) % 2 == 0, 1.0, -3.0)
    axis, rows, r2, mae, rmse = axis_metrics("a", actual, residual)
    k = n - 32_768
    # Consecutive integers: sum of squared deviations k (k² - 1) / 12; ss_res = k/2 (1 + 9).
    assert (axis, rows, mae) == ("a", k, 2.0)
    assert rmse == pytest.approx(np.sqrt(5.0), rel=1e-15)
    assert r2 == pytest.approx(1 - (k / 2 * 10) / (k * (k * k - 1) / 12), rel=1e-12)


def test_metrics_without_usable_rows_are_nan_and_the_axis_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    frame = pd.DataFrame({"a": [0.0, 3.0], "a_pred": [1.0, 1.0], "a_res": [np.nan, np.nan]})
    with caplog.at_level(logging.WARNING, logger="ModelEvaluation.evaluator"):
        axis, n, *metrics = axis_metrics("a", frame["a"], frame["a_res"])
        row = evaluate(frame, ["a"]).iloc[0]
    assert (axis, n, row["n"]) == ("a", 0, 0)
    assert np.isnan([*metrics, row["r2"], row["mae"], row["rmse"]]).all()
    assert caplog.messages == ["axis 'a' has no finite residuals; its metrics are NaN"] * 2


def test_evaluate_says_which_columns_are_missing_and_what_to_pass() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "a_res": [0.0, 0.0]})
    with pytest.raises(
        EvaluationError,
        match=r"^evaluation needs column\(s\) 'a_pred', missing from the frame; available "
        r"columns: 'a', 'a_res'\. Pass the frame returned by AxisModelSet\.predict and only "
        r"axes that were fitted$",
    ):
        evaluate(frame, ["a"])


def test_two_samples_are_enough_for_a_sampling_interval() -> None:
    assert median_interval(pd.Series([10.0, 11.5])) == 1.5
    with pytest.raises(
        ProfileError, match=r"^need at least 2 samples to measure the sampling interval, got 1$"
    ):
        median_interval(pd.Series([10.0]))


def test_an_axis_with_one_reading_has_a_mean_but_no_std() -> None:
    frame = pd.DataFrame(
        {"ts": pd.to_datetime(["2026-01-05 00:00:00", "2026-01-05 00:00:02"], utc=True)}
    )
    frame["a"] = [np.nan, 4.0]
    stats = profile(frame, ["a"]).to_dict()["axes"]["a"]
    assert stats == {
        "count": 1,
        "nan": 1,
        "zero_share": 0.0,
        "min": 4.0,
        "max": 4.0,
        "mean": 4.0,
        "std": None,
    }


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"a": [1.0]}, r"^evaluation expects a pandas DataFrame, got dict$"),
        (
            pd.DataFrame(),
            r"^evaluation needs column\(s\) 'a', 'a_pred', 'a_res', missing from the frame; "
            r"available columns: \(none\)\. ",
        ),
    ],
)
def test_evaluate_refuses_what_is_not_a_predicted_frame(frame: object, message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        evaluate(frame, ["a"])  # type: ignore[arg-type]


def test_profile_of_an_empty_first_block_an_all_missing_axis_and_two_readings() -> None:
    n = 40_000  # a full 32,768-row block and a partial one
    a = np.full(n, np.nan)
    a[32_768:] = np.arange(n - 32_768, dtype=float)  # missing in the whole first block
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=n, freq="1s", tz="UTC"),
            "a": a,
            "b": np.full(n, np.nan),
            "c": np.r_[[1.0, 3.0], np.full(n - 2, np.nan)],
        }
    )
    axes = profile(frame, ["a", "b", "c"]).to_dict()["axes"]
    k = n - 32_768  # 0, 1, ..., k-1: mean (k-1)/2, sample std sqrt(k (k+1) / 12)
    assert axes["a"] == {
        "count": k,
        "nan": 32_768,
        "zero_share": 1 / k,
        "min": 0.0,
        "max": k - 1.0,
        "mean": (k - 1) / 2,
        "std": pytest.approx(np.sqrt(k * (k + 1) / 12), rel=1e-12),
    }
    assert axes["b"] == {
        "count": 0,
        "nan": n,
        "zero_share": 0.0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
    }
    assert axes["c"] == {
        "count": 2,
        "nan": n - 2,
        "zero_share": 0.0,
        "min": 1.0,
        "max": 3.0,
        "mean": 2.0,
        "std": pytest.approx(np.sqrt(2.0), rel=1e-15),
    }


def test_gaps_are_intervals_longer_than_five_sampling_intervals() -> None:
    # Epoch seconds, intervals 2, 2, 2, 10, 12: dt 2, and only 12 > 5 x 2 is a gap.
    frame = pd.DataFrame({"ts": [0.0, 2.0, 4.0, 6.0, 16.0, 28.0], "a": [1.0] * 6})
    result = profile(frame, ["a"])
    assert (result.dt_seconds, result.gaps, result.gap_factor) == (2.0, 1, 5.0)
    assert (result.start, result.end) == (0.0, 28.0)


def test_the_sampling_interval_is_rounded_to_the_microsecond() -> None:
    assert median_interval(pd.Series([0.0, 1.0000004, 2.0000008])) == 1.0


def test_timestamps_without_zone_and_in_microseconds_give_the_interval_in_seconds() -> None:
    ts = pd.Series(pd.to_datetime(["2026-01-05 00:00:00.0", "2026-01-05 00:00:02.5"]))
    assert ts.dt.tz is None
    assert median_interval(ts.astype("datetime64[us]")) == 2.5


def test_profile_names_the_missing_columns_and_the_available_ones() -> None:
    frame = pd.DataFrame({"ts": [0.0, 1.0], "a": [1.0, 2.0]})
    with pytest.raises(
        ProfileError, match=r"^cannot profile: columns \['b'\] missing; available: \['ts', 'a'\]$"
    ):
        profile(frame, ["a", "b"])
