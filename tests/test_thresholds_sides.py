"""Both sides of the per-axis (seed) and pooled thresholds, the machine channel's input
checks, and the thresholds.json records of older versions: hand-computed answers."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from Thresholding import CalibrationError, ThresholdCalibrator, ThresholdPolicy, robust_scale

# Per-axis percentiles, no trimming, steps from the runs (defaults 1).
AXIS_POOLING = {
    "pooling": "axis",
    "calibration": "in_sample",
    "trim_top_ratio": 0.0,
    "min_pos_for_percentile": 5,
    "minc_percentile": 50.0,
    "maxc_percentile": 90.0,
    "alert_seconds_default": 0.0,
    "error_seconds_default": 0.0,
    "alert_min_steps": 1,
    "error_min_steps": 1,
}


def _alternating() -> np.ndarray:
    """1, -2, 2, -4, ..., 10, -20: positives 1..10, negatives -2, -4, ..., -20."""
    residuals = np.empty(20)
    residuals[0::2] = np.arange(1.0, 11.0)
    residuals[1::2] = -2.0 * np.arange(1.0, 11.0)
    return residuals


def _fit(residuals: np.ndarray, dt_seconds: float = 1.0, **policy: object) -> ThresholdCalibrator:
    return ThresholdCalibrator(ThresholdPolicy(**policy)).fit({"a": residuals}, dt_seconds)


# ------------------------------------------------------------------ pooling axis: both sides


def test_per_axis_both_sides_take_the_percentiles_of_each_sign() -> None:
    policy = {**AXIS_POOLING, "calibration": "holdout"}
    record = _fit(_alternating(), side="both", **policy).thresholds_["a"]
    assert record.calibration == "holdout"
    # Positives 1..10: 50th percentile at position 4.5 -> 5.5, 90th at 8.1 -> 9.1.
    # Negatives mirrored, 2..20: 50th -> 11, 90th -> 18.2; negated back.
    assert (record.minc, record.maxc) == (5.5, pytest.approx(9.1))
    assert (record.minc_low, record.maxc_low) == (-11.0, pytest.approx(-18.2))
    assert (record.method, record.side, record.n_positives) == ("percentile", "both", 10)
    # Median of all 20 is (-2 + 1) / 2; the 95th percentile of |r + 0.5| is 17.6.
    assert (record.center, record.scale) == (-0.5, pytest.approx(17.6 / 1.959964))
    # From sample 10 on every sample is beyond one side (6 > 5.5, -12 < -11, ...): 1 episode
    # in 20 s of data.
    assert record.expected_events_per_day == pytest.approx(86_400 / 20)


def test_per_axis_lower_side_only_mirrors_its_levels_into_minc_and_maxc() -> None:
    record = _fit(_alternating(), side="lower", **AXIS_POOLING).thresholds_["a"]
    assert (record.minc_low, record.maxc_low) == (-11.0, pytest.approx(-18.2))
    assert (record.minc, record.maxc) == (-11.0, pytest.approx(-18.2))
    assert (record.method, record.side, record.n_positives) == ("percentile", "lower", 10)
    data = record.to_dict()
    assert (data["MinC_low"], data["side"]) == (-11.0, "lower")


def test_per_axis_upper_side_only_has_no_lower_levels() -> None:
    record = _fit(_alternating(), side="upper", **AXIS_POOLING).thresholds_["a"]
    assert (record.minc, record.maxc) == (5.5, pytest.approx(9.1))
    assert (record.minc_low, record.maxc_low) == (None, None)
    assert "MinC_low" not in record.to_dict()


def test_a_side_with_too_few_residuals_falls_back_to_mad_and_says_which_sign(
    caplog: pytest.LogCaptureFixture,
) -> None:
    residuals = np.concatenate([np.arange(1.0, 11.0), [-1.0, -3.0]])
    with caplog.at_level(logging.WARNING, logger="Thresholding.calibrator"):
        record = _fit(residuals, side="both", **AXIS_POOLING).thresholds_["a"]
    # Mirrored: -1..-10, 1, 3; median -4.5, |dev| median 3, MAD = 1.4826 * 3 = 4.4478;
    # MinC_low = -(-4.5 + 3 * 4.4478), MaxC_low = -(-4.5 + 5 * 4.4478).
    assert (record.minc, record.maxc) == (5.5, pytest.approx(9.1))
    assert record.minc_low == pytest.approx(-8.8434)
    assert record.maxc_low == pytest.approx(-17.739)
    assert record.method == "mad"
    assert caplog.messages == [
        "axis 'a': only 2 negative residual(s) (< min_pos_for_percentile=5); using median + "
        "k*MAD of 12 residuals (MinC=8.8434, MaxC=17.739)"
    ]


def test_trimming_exactly_one_positive_drops_the_largest() -> None:
    # 20 positives 1..20 at ratio 0.05: floor(1.0) = 1 dropped, the percentiles of 1..19.
    record = _fit(
        np.arange(20.0, 0.0, -1.0),
        side="upper",
        **{**AXIS_POOLING, "trim_top_ratio": 0.05, "min_pos_for_trim": 20},
    ).thresholds_["a"]
    assert (record.minc, record.maxc, record.n_trimmed) == (10.0, pytest.approx(17.2), 1)


def test_min_steps_are_the_floor_of_the_sustain_steps() -> None:
    # Every run beyond MinC or MaxC is 1 sample long; the policy asks for 4 and 3 at least.
    policy = {**AXIS_POOLING, "alert_min_steps": 4, "error_min_steps": 3}
    record = _fit(_alternating(), side="upper", **policy).thresholds_["a"]
    assert (record.t_long_steps, record.t_short_steps) == (4, 3)


def test_robust_scale_of_one_value_and_of_none() -> None:
    # One value: no spread at all, so the scale is 1e-12 of its size; no value: NaN, NaN.
    assert robust_scale(np.array([np.nan, 5.0])) == (5.0, pytest.approx(5e-12))
    center, scale = robust_scale(np.array([np.nan, np.inf]))
    assert np.isnan(center) and np.isnan(scale)


# ------------------------------------------------------------------ pooling machine (default)

# center 0; the 95th percentile of |r| is 6, so scale = 6 / 1.959964.
SKEWED = np.array([-9.0, -1.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 3.0])
SKEWED_PERCENTILES = {"minc_percentile": 25.0, "maxc_percentile": 90.0}


def test_pooled_upper_side_clamps_a_negative_multiplier_to_the_center() -> None:
    record = _fit(SKEWED, side="upper", **SKEWED_PERCENTILES).thresholds_["a"]
    # z = r / scale: its 25th percentile is -1 / scale (< 0, so k_alert = 0), its 90th 2/scale.
    assert (record.minc, record.maxc) == (0.0, pytest.approx(2.0))
    assert (record.minc_low, record.maxc_low) == (None, None)
    assert (record.n_positives, record.n_trimmed) == (5, 0)  # above the center 0: 1, 1, 1, 2, 3


def test_pooled_lower_side_uses_the_negated_deviations() -> None:
    record = _fit(SKEWED, side="lower", **SKEWED_PERCENTILES).thresholds_["a"]
    # -z: its 25th percentile is -1/scale (k_alert = 0), its 90th 1/scale (not 2/scale).
    assert (record.minc_low, record.maxc_low) == (0.0, pytest.approx(-1.0))
    assert (record.minc, record.maxc) == (0.0, pytest.approx(1.0))


def test_pooled_both_sides_use_the_absolute_deviations() -> None:
    record = _fit(SKEWED, side="both", **SKEWED_PERCENTILES).thresholds_["a"]
    assert (record.minc, record.maxc) == (pytest.approx(1.0), pytest.approx(3.0))
    assert (record.minc_low, record.maxc_low) == (pytest.approx(-1.0), pytest.approx(-3.0))


def test_expected_events_per_day_is_rounded_to_six_decimals_in_the_json() -> None:
    # Nine samples 8 h apart (3 days); only the last (5.0) is above MinC (90th pct: 1.64).
    residuals = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 5.0])
    policy = {**AXIS_POOLING, "min_pos_for_percentile": 1, "minc_percentile": 90.0}
    record = _fit(residuals, 28_800.0, side="upper", **policy).thresholds_["a"]
    assert record.expected_events_per_day == pytest.approx(1 / 3)
    assert record.to_dict()["expected_events_per_day"] == 0.333333


# ------------------------------------------------------------------ the machine channel's input


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (None, r"^the pca machine channel needs its scores$"),
        (np.zeros(3), r"^machine scores have 3 samples, the residuals 4$"),
        (np.full(4, np.nan), r"^the machine channel has no finite score; check the axes$"),
        (["x"] * 4, r"^residuals of axis '\*' must be numeric; could not convert them: "),
    ],
)
def test_machine_scores_that_cannot_be_used_are_refused(scores: object, message: str) -> None:
    calibrator = ThresholdCalibrator(ThresholdPolicy())
    with pytest.raises(CalibrationError, match=message):
        calibrator.fit({"a": np.arange(4.0)}, 1.0, machine="pca", machine_scores=scores)


def test_the_machine_channel_record_is_upper_side_with_the_policys_calibration() -> None:
    residuals = {"a": np.tile([1.0, -1.0, 2.0, -2.0], 50), "b": np.tile([3.0, -3.0], 100)}
    calibrator = ThresholdCalibrator(ThresholdPolicy(calibration="holdout"))
    record = calibrator.fit(residuals, 1.0, machine="ssr").thresholds_["*"]
    assert (record.side, record.method, record.calibration) == ("upper", "machine", "holdout")


# ------------------------------------------------------------------ thresholds.json records


def test_messages_of_unusable_thresholds_say_how_to_fix_them() -> None:
    with pytest.raises(
        CalibrationError,
        match=r"^thresholds for axis 'a' are malformed \(KeyError: 'MaxC'\); re-train to write "
        r"a current thresholds\.json$",
    ):
        ThresholdCalibrator.from_dict({"a": {"MinC": 1.0}})
    with pytest.raises(
        CalibrationError,
        match=r"^thresholds data must be a non-empty mapping of axis name to record$",
    ):
        ThresholdCalibrator.from_dict({})
    first = _fit(np.arange(1.0, 30.0), side="upper", **AXIS_POOLING).to_dict()["a"]
    second = {**first, "dt_seconds": 2.0}
    with pytest.raises(
        CalibrationError,
        match=r"^thresholds for axis 'b' were learned with a different policy or dt_seconds "
        r"than axis 'a'; re-train to write a consistent thresholds\.json$",
    ):
        ThresholdCalibrator.from_dict({"a": first, "b": second})
    with pytest.raises(
        NotFittedError,
        match=r"^this ThresholdCalibrator is not fitted yet; call fit\(residuals, dt_seconds\) "
        r"or ThresholdCalibrator\.from_dict\(\.\.\.\) first$",
    ):
        ThresholdCalibrator().to_dict()
