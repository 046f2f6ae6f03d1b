"""The default thresholds: pooled across axes, both sides, the machine channel, alarm rates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from Thresholding import (
    MACHINE_CHANNEL,
    CalibrationError,
    SmoothingConfig,
    ThresholdCalibrator,
    ThresholdPolicy,
    alarm_mask,
    robust_scale,
    smooth,
)


def _calibrate(residuals, dt_seconds=1.0, machine="none", scores=None, **policy):
    calibrator = ThresholdCalibrator(ThresholdPolicy(**policy))
    return calibrator.fit(residuals, dt_seconds, machine=machine, machine_scores=scores)


def test_robust_scale_is_the_tail_percentile_over_1_96():
    center, scale = robust_scale(np.array([-2.0, -1.0, 0.0, 1.0, 2.0, np.nan]))
    # |dev| = 2, 1, 0, 1, 2; their 95th percentile (linear) is 2.
    assert (center, scale) == (0.0, pytest.approx(2.0 / 1.959964))
    assert robust_scale(np.full(4, 3.0)) == (3.0, pytest.approx(3e-12))


def test_one_axis_pooled_thresholds_are_its_own_percentiles_of_the_deviation():
    rng = np.random.default_rng(0)
    r = rng.normal(1.0, 2.0, 10_000)
    record = _calibrate({"a": r}).thresholds_["a"]
    center, scale = robust_scale(r)
    k_alert, k_error = np.percentile(np.abs(r - center) / scale, [99.0, 99.9])
    assert record.minc == pytest.approx(center + k_alert * scale)
    assert record.minc_low == pytest.approx(center - k_alert * scale)
    assert record.maxc == pytest.approx(center + k_error * scale)
    assert record.maxc_low == pytest.approx(center - k_error * scale)
    assert (record.method, record.side, record.calibration) == ("pooled", "both", "holdout")


def test_pooled_axes_share_one_multiplier_so_one_percent_of_samples_cross():
    rng = np.random.default_rng(1)
    residuals = {"a": rng.normal(0, 1, 20_000), "b": rng.normal(5, 30, 20_000)}
    records = _calibrate(residuals).thresholds_
    k = {axis: (r.minc - r.center) / r.scale for axis, r in records.items()}
    assert k["a"] == pytest.approx(k["b"])
    z = np.column_stack(
        [np.abs(residuals[a] - records[a].center) / records[a].scale for a in ("a", "b")]
    )
    assert np.mean(z.max(axis=1) > k["a"]) == pytest.approx(0.01, abs=1e-4)
    assert k["a"] == pytest.approx(np.percentile(z.max(axis=1), 99.0))


def test_the_lower_side_alarms_on_drops_and_the_upper_on_rises():
    r = np.concatenate([np.tile([0.1, -0.1], 500), [-9.0] * 4, np.tile([0.1, -0.1], 50), [9.0] * 4])
    # At 2 s sampling the 5 s default is 3 samples: 4-sample excursions are events.
    both = _calibrate({"a": r}, 2.0).thresholds_["a"]
    upper = _calibrate({"a": r}, 2.0, side="upper").thresholds_["a"]
    flagged_both = alarm_mask(r, both)
    assert flagged_both[1000:1004].all() and flagged_both[-4:].all()
    assert flagged_both.sum() == 8
    flagged_upper = alarm_mask(r, upper)
    assert not flagged_upper[1000:1004].any() and flagged_upper[-4:].all()
    assert upper.minc_low is None


def test_sustain_steps_have_a_floor_in_samples():
    r = np.concatenate([np.tile([0.1, -0.1], 500), [9.0, 9.0]])
    record = _calibrate({"a": r}, dt_seconds=180.0).thresholds_["a"]
    # 5 s at 180 s sampling is one sample; the floors are alert_min_steps and error_min_steps.
    assert (record.t_long_steps, record.t_short_steps) == (3, 2)
    assert alarm_mask(r, record)[-2:].all()  # the 2-sample excursion is an error
    assert not alarm_mask(r[:-1], record).any()  # a 1-sample one is nothing


def test_expected_events_per_day_counts_alert_episodes_per_day():
    day = 86_400
    r = np.tile([0.1, -0.1], day // 2)
    for start in (10_000, 30_000, 50_000, 70_000):
        r[start : start + 5] = 10.0
    calibrator = _calibrate({"a": r})
    assert calibrator.thresholds_["a"].expected_events_per_day == pytest.approx(4.0)
    assert calibrator.expected_events_per_day_ == pytest.approx(4.0)
    assert calibrator.budget_ == {"max_events_per_day": None, "changes": [], "met": True}


def test_an_alarm_budget_raises_the_sustain_steps_until_it_fits():
    day = 86_400
    r = np.tile([0.1, -0.1], day // 2)
    for start in (10_000, 30_000, 50_000, 70_000):
        r[start : start + 5] = 10.0
    calibrator = _calibrate({"a": r}, max_events_per_day=2.0)
    record = calibrator.thresholds_["a"]
    # 5-sample bursts (the 5 s default at 1 s sampling is 5 samples, so both rules start at
    # 5): one more sample of persistence drops all four.
    assert (record.t_long_steps, record.t_short_steps) == (6, 6)
    assert calibrator.budget_["changes"] == ["a: T_long_steps 5 -> 6, T_short_steps 5 -> 6"]
    assert record.expected_events_per_day == 0.0
    assert calibrator.budget_["met"] is True


def test_the_machine_channel_thresholds_the_mean_squared_standardised_residual():
    rng = np.random.default_rng(2)
    residuals = {"a": rng.normal(0, 1, 5_000), "b": rng.normal(0, 3, 5_000)}
    calibrator = _calibrate(residuals, machine="ssr")
    records = calibrator.thresholds_
    assert list(records) == ["a", "b", MACHINE_CHANNEL]
    z = {a: (residuals[a] - records[a].center) / records[a].scale for a in residuals}
    ssr = (z["a"] ** 2 + z["b"] ** 2) / 2
    machine = records[MACHINE_CHANNEL]
    assert machine.minc == pytest.approx(np.percentile(ssr, 99.0))
    assert machine.maxc == pytest.approx(np.percentile(ssr, 99.9))
    assert (machine.side, machine.method, machine.minc_low) == ("upper", "machine", None)


def test_one_axis_gets_no_ssr_machine_channel_that_would_repeat_it():
    rng = np.random.default_rng(2)
    calibrator = _calibrate({"a": rng.normal(0, 1, 5_000)}, machine="ssr")
    assert list(calibrator.thresholds_) == ["a"]


def test_a_machine_model_channel_uses_its_scores():
    scores = np.arange(1.0, 1001.0)
    calibrator = _calibrate({"a": np.zeros(1000) + 0.5}, machine="pca", scores=scores)
    machine = calibrator.thresholds_[MACHINE_CHANNEL]
    assert machine.minc == pytest.approx(np.percentile(scores, 99.0))
    with pytest.raises(CalibrationError, match="the pca machine channel needs its scores"):
        _calibrate({"a": np.zeros(10)}, machine="pca")


def test_records_round_trip_through_json():
    rng = np.random.default_rng(3)
    calibrator = _calibrate({"a": rng.normal(size=500), "b": rng.normal(size=500)}, machine="ssr")
    data = json.loads(json.dumps(calibrator.to_dict()))
    assert set(data["a"]) >= {"MinC", "MaxC", "MinC_low", "MaxC_low", "center", "scale", "side"}
    restored = ThresholdCalibrator.from_dict(data)
    assert restored.to_dict() == data
    assert restored.expected_events_per_day_ == pytest.approx(calibrator.expected_events_per_day_)


def test_pooled_thresholds_need_equally_long_residuals():
    with pytest.raises(CalibrationError, match="same rows, got lengths"):
        _calibrate({"a": np.ones(10), "b": np.ones(12)})


# --- smoothing ----------------------------------------------------------------------------


def test_ewma_smoothing_has_known_values_and_skips_idle_samples():
    config = SmoothingConfig(method="ewma", alpha=0.5, window=3)
    r = np.array([4.0, 0.0, np.nan, 8.0])
    # weights 0.5, 0.25, 0.125 (newest first), renormalised over the finite residuals.
    expected = [4.0, (0.5 * 0 + 0.25 * 4) / 0.75, np.nan, (0.5 * 8 + 0.25 * np.nan * 0 + 0.125 * 0)]
    expected[3] = (0.5 * 8 + 0.125 * 0.0) / (0.5 + 0.125)
    np.testing.assert_allclose(smooth(r, config), expected)
    assert config.span == 3
    assert SmoothingConfig(method="ewma", alpha=0.3).span == 20  # 99.9 % of the weight
    assert SmoothingConfig().span == 1


def test_smoothing_of_a_window_with_its_look_back_equals_the_whole():
    config = SmoothingConfig(method="ewma", alpha=0.2)
    r = np.random.default_rng(4).normal(size=1_000)
    r[[100, 500, 501]] = np.nan
    whole = smooth(r, config)
    for cut in (37, 400, 999):
        part = smooth(r[cut - (config.span - 1) :], config)[config.span - 1 :]
        np.testing.assert_array_equal(part, whole[cut:])


def test_the_expected_rate_counts_runs_within_the_merge_gap_once():
    day = 86_400
    r = np.tile([0.1, -0.1], day // 2)
    for start in (10_000, 10_008, 50_000, 70_000):  # the first two are 3 s apart
        r[start : start + 5] = 10.0
    apart = ThresholdCalibrator(ThresholdPolicy()).fit({"a": r}, 1.0)
    merged = ThresholdCalibrator(ThresholdPolicy()).fit({"a": r}, 1.0, merge_gap_seconds=4.0)
    assert apart.expected_events_per_day_ == pytest.approx(4.0)
    assert merged.expected_events_per_day_ == pytest.approx(3.0)
