"""The alarm budget (``max_events_per_day``): sustain steps first, then the alert percentile.

One day of samples 1 s apart, so an axis's expected events per day is its number of alert
episodes. Steps learned with ``alert_quantile = error_quantile = 0`` are the shortest run
beyond the threshold, and the default steps are 1, so every answer below is counted by hand.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from Thresholding import ThresholdCalibrator, ThresholdPolicy

DAY = 86_400

# Per-axis percentiles of the positive residuals, no trimming, steps = shortest run (>= 1).
HAND_COUNTED = {
    "pooling": "axis",
    "side": "upper",
    "calibration": "in_sample",
    "trim_top_ratio": 0.0,
    "min_pos_for_percentile": 1,
    "alert_seconds_default": 0.0,
    "error_seconds_default": 0.0,
    "alert_min_steps": 1,
    "error_min_steps": 1,
    "alert_quantile": 0.0,
    "error_quantile": 0.0,
    "minc_percentile": 50.0,
    "maxc_percentile": 99.9,
}


def _fit(residuals: dict[str, np.ndarray], **policy: object) -> ThresholdCalibrator:
    calibrator = ThresholdCalibrator(ThresholdPolicy(**{**HAND_COUNTED, **policy}))
    return calibrator.fit(residuals, 1.0)


def _steps(name: str, start: int, stop: int) -> list[str]:
    return [
        f"{name}: T_long_steps {k} -> {k + 1}, T_short_steps {k} -> {k + 1}"
        for k in range(start, stop)
    ]


def _bursts_and_spikes() -> np.ndarray:
    """Ten 10-sample bursts of the values 1..10 and four single spikes of 20 on a -1 baseline.

    Positives: ten each of 1..10 and four 20s (104). The 50th percentile (position 51.5 of
    the sorted positives) is 6, the 75th (77.25) is 8, the 99.9th (102.897) is 20.
    """
    residuals = np.full(DAY, -1.0)
    for value in range(1, 11):
        residuals[1000 * value : 1000 * value + 10] = float(value)
    for spike in range(4):
        residuals[20_000 + 1000 * spike] = 20.0
    return residuals


def test_the_budget_raises_steps_then_the_alert_percentile_until_it_fits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet = np.tile([0.5, -0.5], DAY // 2)  # MinC = MaxC = 0.5: never above, 0 events
    with caplog.at_level(logging.WARNING, logger="Thresholding.calibrator"):
        calibrator = _fit({"a": _bursts_and_spikes(), "b": quiet}, max_events_per_day=2.0)
    assert caplog.messages == []  # 2 events/day: exactly the budget, met
    # At the 50th percentile (MinC 6) bursts 7..10 and the spikes alarm with T = 1: 8 events.
    # Steps 2..4 drop the spikes (4 left), 4 = 4 x 1 stops the raising; the 75th percentile
    # (MinC 8) leaves bursts 9, 10 and the spikes (6), and steps 2 drop the spikes: 2 <= 2.
    assert calibrator.budget_ == {
        "max_events_per_day": 2.0,
        "changes": [
            *_steps("a", 1, 4),
            "minc_percentile 50 -> 75 (4 events/day > 2)",
            *_steps("a", 1, 2),
        ],
        "met": True,
    }
    a, b = calibrator.thresholds_["a"], calibrator.thresholds_["b"]
    assert (a.minc, a.maxc, a.t_long_steps, a.t_short_steps) == (8.0, 20.0, 2, 2)
    assert (a.expected_events_per_day, a.policy.minc_percentile) == (2.0, 75.0)
    assert (b.minc, b.maxc, b.t_long_steps, b.expected_events_per_day) == (0.5, 0.5, 1, 0.0)
    assert calibrator.expected_events_per_day_ == 2.0


def test_the_noisiest_axis_is_raised_first() -> None:
    # On a 0.001 baseline (MinC = MaxC = 0.001), single spikes: a 2, b 6, c 3 events; 11 > 8,
    # so b's steps go to 2 (its spikes drop) and 5 <= 8.
    axes = {name: np.full(DAY, 0.001) for name in "abc"}
    axes["a"][[100, 300]] = 5.0
    axes["b"][[1000, 3000, 5000, 7000, 9000, 11000]] = 5.0
    axes["c"][[20_000, 22_000, 24_000]] = 5.0
    calibrator = _fit(axes, max_events_per_day=8.0)
    assert calibrator.budget_["changes"] == _steps("b", 1, 2)
    records = calibrator.thresholds_
    assert [(records[n].t_long_steps, records[n].expected_events_per_day) for n in "abc"] == [
        (1, 2.0),
        (2, 0.0),
        (1, 3.0),
    ]


def test_a_channel_below_one_event_per_day_is_raised_too() -> None:
    # Two days, one spike: 0.5 events per day, over a budget of 0.25.
    residuals = np.full(2 * DAY, 0.001)
    residuals[1000] = 5.0
    calibrator = _fit({"a": residuals}, max_events_per_day=0.25)
    assert calibrator.budget_["changes"] == _steps("a", 1, 2)
    assert calibrator.thresholds_["a"].expected_events_per_day == 0.0


def test_an_alert_percentile_at_99_999_is_not_raised_further() -> None:
    # 100 samples 864 s apart (one day): 0.001 except four single spikes and four 5-sample
    # bursts of 5.0, all among the 40 largest that trim_top_ratio 0.4 drops, so MinC = MaxC
    # = 0.001 even at the 99.999th percentile; steps 2..4 leave the bursts: 4 > 1 events.
    residuals = np.full(100, 0.001)
    for k in range(4):
        residuals[2 + 20 * k] = 5.0
        residuals[10 + 20 * k : 15 + 20 * k] = 5.0
    policy = {
        **HAND_COUNTED,
        "minc_percentile": 99.999,
        "maxc_percentile": 99.999,
        "trim_top_ratio": 0.4,
        "min_pos_for_trim": 0,
        "max_events_per_day": 1.0,
    }
    calibrator = ThresholdCalibrator(ThresholdPolicy(**policy)).fit({"a": residuals}, 864.0)
    assert calibrator.budget_["changes"] == _steps("a", 1, 4)
    record = calibrator.thresholds_["a"]
    assert (record.minc, record.t_long_steps, record.expected_events_per_day) == (0.001, 4, 4.0)
    assert calibrator.budget_["met"] is False


@pytest.mark.parametrize("channel", ["a", "*"])
def test_a_budget_out_of_reach_keeps_the_steps_raised_on_the_last_percentile(
    channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    # 0.001 everywhere except four single spikes and four 10-sample bursts of 5: MinC and
    # MaxC stay 0.001 at every percentile up to 99.9 (44 of 86,400 samples are higher), so
    # raising the percentile never helps and steps 2..4 leave the four bursts: 4 events.
    # The same signal as the axis "a" or as the machine channel's scores (a then never alarms).
    signal = np.full(DAY, 0.001)
    for k in range(4):
        signal[1000 + 2000 * k] = 5.0
        signal[2000 + 2000 * k : 2010 + 2000 * k] = 5.0
    quiet = np.tile([0.5, -0.5], DAY // 2)
    calibrator = ThresholdCalibrator(ThresholdPolicy(**{**HAND_COUNTED, "max_events_per_day": 1.0}))
    with caplog.at_level(logging.WARNING, logger="Thresholding.calibrator"):
        if channel == "a":
            calibrator.fit({"a": signal}, 1.0)
        else:
            calibrator.fit({"a": quiet}, 1.0, machine="pca", machine_scores=signal)
    percentiles = [50, 75, 87.5, 93.75, 96.875, 98.4375]
    expected_changes = []
    for old, new in itertools.pairwise(percentiles):
        expected_changes += [
            *_steps(channel, 1, 4),
            f"minc_percentile {old} -> {new} (4 events/day > 1)",
        ]
    expected_changes += _steps(channel, 1, 4)  # the last percentile gets its steps raised too
    assert calibrator.budget_ == {
        "max_events_per_day": 1.0,
        "changes": expected_changes,
        "met": False,
    }
    record = calibrator.thresholds_[channel]
    assert (record.minc, record.maxc, record.t_long_steps, record.t_short_steps) == (
        0.001,
        0.001,
        4,
        4,
    )
    assert (record.expected_events_per_day, record.policy.minc_percentile) == (4.0, 98.4375)
    assert calibrator.expected_events_per_day_ == 4.0
    assert caplog.messages[-1] == (
        "thresholds.max_events_per_day=1 not met: 4 expected events per day after 23 changes; "
        "the calibration residuals alarm too often, check the data"
    )


def test_the_machine_channel_counts_towards_the_budget_and_is_raised_like_an_axis() -> None:
    # The axis never alarms (MinC = MaxC = 0.5); the model's scores are 0 except two single
    # spikes and one 5-sample burst: MinC = MaxC = 0 at the 50th and 99.9th percentiles.
    scores = np.zeros(DAY)
    scores[[1000, 2000]] = 3.0
    scores[5000:5005] = 3.0
    calibrator = ThresholdCalibrator(
        ThresholdPolicy(**{**HAND_COUNTED, "max_events_per_day": 1.0})
    ).fit({"a": np.tile([0.5, -0.5], DAY // 2)}, 1.0, machine="pca", machine_scores=scores)
    assert calibrator.budget_["changes"] == _steps("*", 1, 2)
    machine = calibrator.thresholds_["*"]
    assert (machine.minc, machine.maxc, machine.t_long_steps) == (0.0, 0.0, 2)
    assert machine.expected_events_per_day == 1.0
    assert calibrator.budget_["met"] is True


def test_a_raised_alert_percentile_lifts_an_error_percentile_below_it() -> None:
    # As the first test, with the error percentile at 50 too: at 75 both levels are 8.
    calibrator = _fit({"a": _bursts_and_spikes()}, maxc_percentile=50.0, max_events_per_day=2.0)
    a = calibrator.thresholds_["a"]
    assert (a.minc, a.maxc, a.t_long_steps, a.expected_events_per_day) == (8.0, 8.0, 2, 2.0)
    assert (a.policy.minc_percentile, a.policy.maxc_percentile) == (75.0, 75.0)
