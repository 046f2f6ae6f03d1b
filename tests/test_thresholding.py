"""Thresholding, seed mode: per-axis percentiles of positives, MAD fallback, run-length steps.

These known-answer tests pin the seed's policy (``SEED_POLICY``: in-sample, upper side,
per-axis pooling, 1-sample minimum steps); the pooled, two-sided default is tested in
``test_thresholds_pooled.py``. ``BASE`` also turns trimming off so the expected
percentiles stay the plain ones unless a test asks for trimming.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.exceptions import NotFittedError

from Thresholding import (
    SEED_POLICY,
    CalibrationError,
    ThresholdCalibrator,
    ThresholdPolicy,
    run_bounds,
    run_lengths,
)

ONE_TO_HUNDRED = np.arange(1.0, 101.0)
BASE = {**SEED_POLICY, "trim_top_ratio": 0.0, "min_pos_for_trim": 100}


def _fit(residuals, dt_seconds=1.0, **policy):
    return ThresholdCalibrator(ThresholdPolicy(**{**BASE, **policy})).fit(
        {"a": residuals}, dt_seconds
    )


def _record(residuals, dt_seconds=1.0, **policy):
    return _fit(residuals, dt_seconds, **policy).to_dict()["a"]


def _isolated(values):
    """Interleave ``values`` with -1 so every run above any positive threshold has length 1."""
    return np.column_stack([values, -np.ones(len(values))]).ravel()


def _runs_signal(runs):
    """Residuals whose samples > 1 form exactly the given runs, with >= 10 positives of 1."""
    parts = [np.ones(10)]
    for length in runs:
        parts += [np.full(length, 10.0), [-1.0]]
    return np.concatenate(parts)


# --- policy -----------------------------------------------------------------------------


def test_policy_defaults_and_descriptions():
    policy = ThresholdPolicy()
    assert policy.model_dump() == {
        "calibration": "holdout",
        "side": "both",
        "pooling": "machine",
        "minc_percentile": 99.0,
        "maxc_percentile": 99.9,
        "trim_top_ratio": 0.02,
        "min_pos_for_trim": 20,
        "min_pos_for_percentile": 10,
        "use_mad_fallback": True,
        "mad_k_minc": 3.0,
        "mad_k_maxc": 5.0,
        "alert_seconds_default": 5.0,
        "error_seconds_default": 3.0,
        "alert_min_steps": 3,
        "error_min_steps": 2,
        "alert_quantile": 0.8,
        "error_quantile": 0.5,
        "smoothing": {"method": "none", "alpha": 0.3, "window": None},
        "mode": "percentile",
        "learned": {
            "multipliers": [0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0],
            "sustains": [1, 2, 3, 5, 8, 13, 21],
            "false_alarm_cost": 1.0,
            "severity_weights": {
                "alert": 1.0,
                "error": 2.0,
                "low": 1.0,
                "medium": 2.0,
                "high": 3.0,
            },
            "min_labels": 5,
            "min_confidence": 0.5,
        },
        "max_events_per_day": None,
    }
    assert all(field.description for field in ThresholdPolicy.model_fields.values())


def test_seed_policy_trims_the_seeds_share_of_positives():
    # The seed's 0.02 of 100 positives: the top 2 are dropped, percentiles of 1..98.
    record = (
        ThresholdCalibrator(ThresholdPolicy(**SEED_POLICY))
        .fit({"a": np.concatenate([ONE_TO_HUNDRED, -ONE_TO_HUNDRED])}, 1.891)
        .to_dict()["a"]
    )
    assert record["counts"]["trimmed"] == 2
    assert record["MinC"] == pytest.approx(np.percentile(np.arange(1.0, 99.0), 75))
    assert record["MaxC"] == pytest.approx(np.percentile(np.arange(1.0, 99.0), 95))
    assert "MinC_low" not in record
    assert (record["side"], record["calibration"], record["method"]) == (
        "upper",
        "in_sample",
        "percentile",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minc_percentile": 120}, "minc_percentile\n.*less than or equal to 100"),
        ({"maxc_percentile": -1}, "maxc_percentile\n.*greater than or equal to 0"),
        ({"minc_percentile": 90, "maxc_percentile": 80}, r"maxc_percentile \(80.0\) must be"),
        ({"trim_top_ratio": 0.5}, "trim_top_ratio\n.*less than 0.5"),
        ({"min_pos_for_percentile": 0}, "greater than or equal to 1"),
        ({"min_pos_for_trim": -1}, "greater than or equal to 0"),
        ({"mad_k_minc": 0}, "mad_k_minc\n.*greater than 0"),
        ({"mad_k_minc": 6, "mad_k_maxc": 5}, r"mad_k_maxc \(5.0\) must be greater than or equal"),
        ({"alert_quantile": 1.5}, "alert_quantile\n.*less than or equal to 1"),
        ({"error_seconds_default": -3}, "error_seconds_default\n.*greater than or equal to 0"),
        ({"mad_k_maxc": float("inf")}, "finite number"),
        ({"percentile": 75}, "Extra inputs are not permitted"),
    ],
)
def test_policy_rejects_bad_values(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        ThresholdPolicy(**kwargs)


# --- MinC / MaxC ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("positives", "policy", "minc", "maxc", "trimmed"),
    [
        # np.percentile(1..100, 75) = 75.25, (.., 95) = 95.05
        (ONE_TO_HUNDRED, {}, 75.25, 95.05, 0),
        # top floor(0.1 * 100) = 10 dropped: percentiles of 1..90
        (ONE_TO_HUNDRED, {"trim_top_ratio": 0.1}, 67.75, 85.55, 10),
        # 0.29 * 100 is 28.999999999999996 in floating point; floor still counts 29
        (ONE_TO_HUNDRED, {"trim_top_ratio": 0.29}, 53.5, 67.5, 29),
        # fewer positives than min_pos_for_trim: no trimming
        (ONE_TO_HUNDRED[:99], {"trim_top_ratio": 0.1}, 74.5, 94.1, 0),
        # floor(0.15 * 99) = 14 dropped: percentiles of 1..85
        (ONE_TO_HUNDRED[:99], {"trim_top_ratio": 0.15, "min_pos_for_trim": 0}, 64.0, 80.8, 14),
        (ONE_TO_HUNDRED, {"minc_percentile": 50, "maxc_percentile": 100}, 50.5, 100.0, 0),
        (np.arange(1.0, 11.0), {}, 7.75, 9.55, 0),
    ],
)
def test_percentile_thresholds(positives, policy, minc, maxc, trimmed):
    rng = np.random.default_rng(3)
    residuals = np.concatenate([rng.permutation(positives), -positives, [0.0, np.nan]])
    record = _record(residuals, **policy)
    assert record["method"] == "percentile"
    assert record["MinC"] == pytest.approx(minc, abs=1e-12)
    assert record["MaxC"] == pytest.approx(maxc, abs=1e-12)
    assert record["counts"]["trimmed"] == trimmed
    assert record["counts"]["positives"] == positives.size
    assert record["counts"]["residuals"] == 2 * positives.size + 1


def test_trimming_with_partition_equals_sorting():
    rng = np.random.default_rng(11)
    residuals = rng.standard_t(3, 200_001)
    positives = residuals[residuals > 0]
    kept = np.sort(positives)[: positives.size - int(np.floor(0.05 * positives.size))]
    record = _record(residuals, trim_top_ratio=0.05)
    assert record["MinC"] == np.percentile(kept, 75)
    assert record["MaxC"] == np.percentile(kept, 95)


def test_mad_fallback_exact_values():
    # median 2.5, |r - 2.5| = [1.5, 0.5, 0.5, 1.5, 97.5, 3.5] -> median 1.5
    record = _record(np.array([1.0, 2.0, 3.0, 4.0, 100.0, -1.0, np.nan]))
    assert record["method"] == "mad"
    assert record["MinC"] == pytest.approx(2.5 + 3.0 * 1.4826 * 1.5)
    assert record["MaxC"] == pytest.approx(2.5 + 5.0 * 1.4826 * 1.5)
    assert record["counts"] == {
        "residuals": 6,
        "positives": 5,
        "trimmed": 0,
        "alert_runs": 1,
        "error_runs": 1,
    }


def test_mad_fallback_uses_policy_k_and_all_residuals():
    residuals = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])  # median 0, MAD = 1.4826 * 2
    record = _record(residuals, mad_k_minc=1.0, mad_k_maxc=2.0)
    assert (record["MinC"], record["MaxC"]) == pytest.approx((2.9652, 5.9304))


def test_too_few_positives_without_fallback_is_an_error():
    with pytest.raises(
        CalibrationError,
        match=r"axis 'a' has 2 positive residual\(s\), fewer than "
        r"thresholds.min_pos_for_percentile=10; train on more data, lower "
        r"thresholds.min_pos_for_percentile, or set thresholds.use_mad_fallback: true",
    ):
        _fit(np.array([1.0, 2.0, -1.0]), use_mad_fallback=False)


@pytest.mark.parametrize("residuals", [np.array([]), np.array([np.nan, np.nan])])
def test_no_finite_residuals_is_an_error(residuals):
    with pytest.raises(CalibrationError, match="axis 'a' has no finite residuals"):
        _fit(residuals)


# --- steps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt_seconds", "alert_s", "error_s", "t_long", "t_short"),
    [
        (1.891, 5.0, 3.0, 3, 2),
        (1.0, 5.0, 3.0, 5, 3),
        (2.0, 6.0, 3.0, 3, 2),
        (0.1, 0.3, 0.7, 3, 7),
        (10.0, 0.0, 0.0, 1, 1),
    ],
)
def test_default_steps(dt_seconds, alert_s, error_s, t_long, t_short):
    record = _record(
        _isolated(ONE_TO_HUNDRED),
        dt_seconds,
        alert_seconds_default=alert_s,
        error_seconds_default=error_s,
    )
    assert (record["T_long_steps"], record["T_short_steps"]) == (t_long, t_short)


@pytest.mark.parametrize(
    ("runs", "quantile", "default_s", "steps"),
    [
        ([1, 2, 3, 4, 10], 0.8, 1.0, 6),  # quantile 5.2 -> 6
        ([1, 2, 3, 4, 10], 0.5, 1.0, 3),  # quantile 3.0 -> 3
        ([1, 2, 3, 4, 10], 0.5, 5.0, 5),  # default 5 is longer
        ([1, 2, 3, 4, 10], 1.0, 1.0, 10),
        ([2, 2, 2], 0.8, 1.0, 2),
        ([], 0.8, 4.0, 4),  # no runs: default
    ],
)
def test_steps_follow_observed_run_quantiles(runs, quantile, default_s, steps):
    # minc = maxc = smallest positive (1.0), so the 10.0 samples form both kinds of run.
    record = _record(
        _runs_signal(runs),
        minc_percentile=0,
        maxc_percentile=0,
        alert_quantile=quantile,
        error_quantile=quantile,
        alert_seconds_default=default_s,
        error_seconds_default=default_s,
    )
    assert (record["MinC"], record["MaxC"]) == (1.0, 1.0)
    assert record["T_long_steps"] == steps
    assert record["T_short_steps"] == steps
    assert record["counts"]["alert_runs"] == len(runs)


def test_nan_residuals_break_runs():
    residuals = np.concatenate([np.ones(10), [5.0, 5.0, np.nan, 5.0, 5.0, 5.0]])
    record = _record(residuals, minc_percentile=0, maxc_percentile=0, alert_quantile=1.0)
    assert record["counts"]["alert_runs"] == 2
    assert record["T_long_steps"] == 5  # default ceil(5 / 1) beats the longest run of 3


def test_run_helpers_are_reexported():
    mask = np.array([True, True, False, True])
    np.testing.assert_array_equal(run_lengths(mask), [2, 1])
    starts, ends = run_bounds(mask)
    np.testing.assert_array_equal(starts, [0, 3])
    np.testing.assert_array_equal(ends, [2, 4])


def _runs_by_loop(mask: list[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, flag in enumerate([*mask, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


@pytest.mark.parametrize(
    "mask",
    [
        [],
        [True],
        [False],
        [True, True, True],
        [False, False],
        [True, False, True],
        [False, True, True, False],
        *(list(np.random.default_rng(seed).random(57) < 0.6) for seed in range(5)),
    ],
)
def test_run_bounds_match_a_plain_loop(mask):
    starts, ends = run_bounds(np.array(mask, dtype=bool))
    assert starts.dtype == ends.dtype == np.int64
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == _runs_by_loop(mask)


# --- input checks -----------------------------------------------------------------------


@pytest.mark.parametrize("dt_seconds", [0.0, -1.891, float("nan"), float("inf"), "1.891", None])
def test_bad_dt_seconds(dt_seconds):
    with pytest.raises(CalibrationError, match="dt_seconds must be"):
        _fit(ONE_TO_HUNDRED, dt_seconds)


@pytest.mark.parametrize(
    ("residuals", "message"),
    [
        ({}, "residuals is empty"),
        ([1.0, 2.0], "residuals must be a mapping of axis name to residual array, got list"),
        ({"a": np.ones((2, 2))}, r"residuals of axis 'a' must be a 1-D array"),
        ({"a": ["x", "y"]}, "residuals of axis 'a' must be numeric"),
    ],
)
def test_bad_residuals(residuals, message):
    with pytest.raises(CalibrationError, match=message):
        ThresholdCalibrator(ThresholdPolicy(**BASE)).fit(residuals, 1.0)


def test_policy_must_be_a_threshold_policy():
    with pytest.raises(CalibrationError, match="policy must be a ThresholdPolicy, got dict"):
        ThresholdCalibrator({"minc_percentile": 50}).fit({"a": ONE_TO_HUNDRED}, 1.0)


def test_fit_does_not_mutate_residuals():
    residuals = np.array([3.0, np.nan, 1.0, 2.0] * 5)
    before = residuals.copy()
    _fit(residuals, trim_top_ratio=0.2, min_pos_for_trim=0)
    np.testing.assert_array_equal(residuals, before)


def test_to_dict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="ThresholdCalibrator is not fitted yet"):
        ThresholdCalibrator().to_dict()


# --- thresholds.json --------------------------------------------------------------------


def test_thresholds_json_shape():
    calibrator = ThresholdCalibrator(ThresholdPolicy(**BASE)).fit(
        {"axis1": _isolated(ONE_TO_HUNDRED), "Axis #2": np.array([1.0, 2.0, 3.0, 100.0])},
        1.891,
    )
    data = calibrator.to_dict()
    assert list(data) == ["axis1", "Axis #2"]
    record = data["axis1"]
    assert list(record) == [
        "MinC",
        "MaxC",
        "T_long_steps",
        "T_short_steps",
        "dt_seconds",
        "method",
        "calibration",
        "side",
        "center",
        "scale",
        "smoothing",
        "expected_events_per_day",
        "policy",
        "counts",
    ]
    assert record["policy"] == ThresholdPolicy(**BASE).model_dump(mode="json")
    assert record["dt_seconds"] == 1.891
    assert (record["T_long_steps"], record["T_short_steps"]) == (3, 2)
    assert record["counts"] == {
        "residuals": 200,
        "positives": 100,
        "trimmed": 0,
        "alert_runs": 25,
        "error_runs": 5,
    }
    assert type(record["MinC"]) is float
    assert type(record["T_long_steps"]) is int
    assert data["Axis #2"]["method"] == "mad"
    assert json.loads(json.dumps(data)) == data


def test_json_round_trip():
    calibrator = _fit(ONE_TO_HUNDRED, 1.891, trim_top_ratio=0.1)
    data = json.loads(json.dumps(calibrator.to_dict()))
    restored = ThresholdCalibrator.from_dict(data)
    assert restored.to_dict() == data
    assert restored.policy == calibrator.policy
    assert restored.dt_seconds_ == 1.891
    assert restored.thresholds_["a"].minc == data["a"]["MinC"]


def test_from_dict_reads_a_record_written_before_the_lower_side_existed():
    # thresholds.json of the first versions: no side, calibration or centre, a short echo.
    record = {
        "MinC": 75.25,
        "MaxC": 95.05,
        "T_long_steps": 3,
        "T_short_steps": 2,
        "dt_seconds": 1.891,
        "method": "percentile",
        "policy": {"minc_percentile": 75.0, "maxc_percentile": 95.0},
    }
    restored = ThresholdCalibrator.from_dict({"a": record})
    assert restored.policy == ThresholdPolicy(**SEED_POLICY)
    entry = restored.thresholds_["a"]
    assert (entry.side, entry.calibration, entry.minc_low, entry.center) == (
        "upper",
        "in_sample",
        None,
        0.0,
    )
    # Nor counts, scale or expected rate: zero counts, unit scale, no rate (and none written).
    assert (entry.n_residuals, entry.n_positives, entry.n_trimmed) == (0, 0, 0)
    assert (entry.n_alert_runs, entry.n_error_runs) == (0, 0)
    assert (entry.scale, entry.expected_events_per_day) == (1.0, None)
    assert entry.to_dict()["expected_events_per_day"] is None
    assert restored.budget_ == {"max_events_per_day": None}
    assert restored.expected_events_per_day_ == 0.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "non-empty mapping"),
        ({"a": {"MinC": 1.0}}, r"thresholds for axis 'a' are malformed \(KeyError"),
        ({"a": None}, r"thresholds for axis 'a' are malformed"),
    ],
)
def test_from_dict_rejects_malformed(data, message):
    with pytest.raises(CalibrationError, match=message):
        ThresholdCalibrator.from_dict(data)


def test_from_dict_rejects_bad_policy():
    record = _record(ONE_TO_HUNDRED)
    record["policy"] = {**record["policy"], "minc_percentile": 120}
    with pytest.raises(CalibrationError, match=r"(?s)axis 'a' are malformed.*minc_percentile"):
        ThresholdCalibrator.from_dict({"a": record})


def test_from_dict_rejects_mixed_policies():
    first = _record(ONE_TO_HUNDRED)
    second = _record(ONE_TO_HUNDRED, minc_percentile=50)
    with pytest.raises(CalibrationError, match="axis 'b' were learned with a different policy"):
        ThresholdCalibrator.from_dict({"a": first, "b": second})


def test_residual_medians_are_the_medians_of_unsmoothed_finite_residuals() -> None:
    # The orchestrator hands them to the drift baselines and insights (no second median).
    rng = np.random.default_rng(5)
    a = rng.standard_t(3, 4_001)
    a[rng.random(a.size) < 0.2] = np.nan
    b = rng.normal(size=4_000)
    plain = ThresholdCalibrator(ThresholdPolicy(**BASE)).fit({"a": a, "b": b}, 1.0)
    assert plain.residual_medians_ == {
        "a": float(np.median(a[np.isfinite(a)])),
        "b": float(np.median(b)),
    }
    smoothed = ThresholdCalibrator(
        ThresholdPolicy(**{**BASE, "smoothing": {"method": "ewma", "alpha": 0.3}})
    ).fit({"a": a}, 1.0)
    assert smoothed.residual_medians_ == {}
